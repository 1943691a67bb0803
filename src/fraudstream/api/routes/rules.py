"""/v1/rules and /v1/lists: read, validate, version and hot-reload the rule set; edit lists."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel

from fraudstream.api.deps import Caller, read_json, require, service
from fraudstream.errors import FieldError, ValidationError
from fraudstream.runtime.embedded import ScoringService

router = APIRouter(tags=["rules"])


def _describe(svc: ScoringService) -> dict[str, Any]:
    rules = svc.engine.rules
    return {
        "version": rules.version,
        "yaml": rules.to_yaml(),
        "rules": [r.as_dict() for r in rules.rules],
        "lists": svc.engine.lists.to_dict(),
        "versions": svc.store.ruleset_versions(),
        "hits": dict(svc.metrics.rule_hits),
    }


@router.get("/v1/rules", summary="The active rule set")
async def get_rules(
    svc: ScoringService = Depends(service), _: Caller = Depends(require("read"))
) -> dict[str, Any]:
    return _describe(svc)


@router.put("/v1/rules", summary="Replace the rule set (YAML body, or JSON {yaml})")
async def put_rules(
    request: Request, svc: ScoringService = Depends(service), caller: Caller = Depends(require("admin"))
) -> dict[str, Any]:
    """Invalid rules answer 422 with the rule, the position and the reason; the running set stays."""
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await read_json(request)
        text = body.get("yaml") if isinstance(body, dict) else None
        if not isinstance(text, str):
            allowed = 'the rule set as text: send YAML as the body, or JSON {"yaml": "..."}'
            raise ValidationError([FieldError("yaml", "is missing or not text", allowed)])
    else:
        text = (await request.body()).decode("utf-8", errors="replace")
    await svc.set_rules(text, caller.name)
    return _describe(svc)


class ListItems(BaseModel):
    items: list[str]


@router.put("/v1/lists/{name}", summary="Replace the contents of a named allow/block list")
async def put_list(
    name: str,
    body: ListItems,
    svc: ScoringService = Depends(service),
    caller: Caller = Depends(require("admin")),
) -> dict[str, Any]:
    if name not in svc.engine.lists.names():
        raise HTTPException(404, f"no list {name!r}; declared lists: {sorted(svc.engine.lists.names())}")
    await svc.update_list(name, body.items, caller.name)
    return {"name": name, "size": len(set(body.items))}
