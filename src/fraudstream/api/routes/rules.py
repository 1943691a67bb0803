"""/v1/rules and /v1/lists: read, validate, version, hot-reload and roll back the rule set; edit lists."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from fraudstream.api import examples
from fraudstream.api.deps import Caller, read_json, require, service
from fraudstream.api.models import INVALID_REQUEST
from fraudstream.api.openapi import KEYED, WITH_BODY, answer, body_example, errors, named_examples
from fraudstream.core.rules.ruleset import Rule
from fraudstream.errors import FieldError, RuleError, ValidationError
from fraudstream.runtime.embedded import ScoringService
from fraudstream.runtime.embedded.snoozing import instant_ms

router = APIRouter(tags=["rules"], responses=INVALID_REQUEST)


@router.get(
    "/v1/rules",
    operation_id="getRules",
    summary="The active rule set",
    responses={200: answer(examples.RULE_SET), **errors(*KEYED)},
)
async def get_rules(
    svc: ScoringService = Depends(service), _: Caller = Depends(require("read"))
) -> dict[str, Any]:
    return await svc.reads.rules()


#: A whole rule set, as small as one can be (the running set is longer: GET /v1/rules).
_SMALL_SET = """version: 2
description: One rule, for the example
rules:
- code: large_amount
  description: Amount {amount:,.2f} is over 10,000
  expression: amount > 10000
  action: review
  weight: 60
"""

#: The route reads its body itself: YAML text, or JSON {"yaml": ...}; the document says so.
_RULES_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/yaml": {"schema": {"type": "string"}, "example": _SMALL_SET},
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["yaml"],
                    "properties": {"yaml": {"type": "string"}},
                },
                "example": {"yaml": _SMALL_SET},
            },
        },
    }
}


@router.put(
    "/v1/rules",
    operation_id="replaceRules",
    openapi_extra=_RULES_DOC,
    summary="Replace the rule set (YAML body, or JSON {yaml})",
    responses={200: answer(examples.RULE_SET), **errors(*WITH_BODY, e422=examples.INVALID_RULES)},
)
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
    return await svc.reads.rules()


class RuleIn(BaseModel):
    """One rule as an analyst edits it."""

    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = Field("", max_length=500)
    expression: str = Field(min_length=1, max_length=2000)
    action: Literal["allow", "decline", "challenge", "review", "tag"]
    weight: float = Field(0.0, ge=0, le=100)
    enabled: bool = True
    shadow: bool = False


class Candidate(BaseModel):
    rule: RuleIn


@router.post(
    "/v1/rules/validate",
    operation_id="validateRule",
    summary="Check one edited rule; answers the whole candidate rule set",
    openapi_extra=body_example({"rule": examples.RULE_VALID["rule"]}),
    responses={
        200: {
            "content": {
                "application/json": {
                    "examples": named_examples(
                        valid=("A valid rule: the candidate set", examples.RULE_VALID),
                        invalid=("An invalid rule: where and why", examples.RULE_INVALID),
                    )
                }
            }
        },
        **errors(*WITH_BODY),
    },
)
async def validate_rule(
    body: Candidate, svc: ScoringService = Depends(service), _: Caller = Depends(require("review"))
) -> dict[str, Any]:
    """Answers 200 either way (checking is this route's job, not an error): ``valid: false`` with the
    rule, the 1-based column in its expression and the reason; or ``valid: true`` with the candidate set
    as YAML (the running set with this rule added or replaced), ready for a backtest
    (`POST /v1/backtests`) or to be saved (`PUT /v1/rules`). Nothing changes here."""
    try:
        candidate = svc.reads.candidate_rules(Rule(**body.rule.model_dump()))
    except RuleError as exc:
        return {
            "valid": False,
            "detail": str(exc),
            "rule": exc.rule,
            "position": exc.position,
            "reason": exc.reason,
        }
    return {"valid": True, "yaml": candidate.to_yaml(), "rule": candidate.rule(body.rule.code).as_dict()}


class Flags(BaseModel):
    enabled: bool | None = None
    shadow: bool | None = None


@router.patch(
    "/v1/rules/{code}",
    operation_id="setRuleFlags",
    summary="Enable, disable or shadow one rule (a new rule set version)",
    openapi_extra=body_example({"shadow": True}),
    responses={
        200: answer(examples.RULE_SET),
        **errors(
            *WITH_BODY, 404, e404={"error": "http_error", "detail": "no rule 'nope' in the running rule set"}
        ),
    },
)
async def set_flags(
    code: str, body: Flags, svc: ScoringService = Depends(service), caller: Caller = Depends(require("admin"))
) -> dict[str, Any]:
    try:
        await svc.set_rule_flags(code, caller.name, enabled=body.enabled, shadow=body.shadow)
    except KeyError as exc:
        raise HTTPException(404, exc.args[0]) from None
    return await svc.reads.rules()


@router.post(
    "/v1/rules/versions/{version}/activate",
    operation_id="activateRuleVersion",
    summary="Roll back: a stored rule set version becomes the active set (as the next version)",
    responses={
        200: answer(examples.RULE_ROLLBACK),
        **errors(*KEYED, 404, e404={"error": "http_error", "detail": "no stored rule set version 99"}),
    },
)
async def activate_version(
    version: int = Path(
        ge=1, le=2**31 - 1, description="A stored rule set version (GET /v1/rules: versions)"
    ),
    svc: ScoringService = Depends(service),
    caller: Caller = Depends(require("admin")),
) -> dict[str, Any]:
    """The stored YAML of ``version`` is saved as the next version and put in force at once (in
    every Kafka worker too): versions only grow, so a decision's ``ruleset_version`` always names one
    text, and the audit log says ``rollback_rules`` with the version restored."""
    try:
        await svc.activate_ruleset(version, caller.name)
    except KeyError as exc:
        raise HTTPException(404, exc.args[0]) from None
    return {**(await svc.reads.rules()), "restored": version}


@router.get(
    "/v1/rules/performance",
    operation_id="getRulePerformance",
    summary="Per rule: hits and precision from labels",
    responses={200: answer(examples.RULE_PERFORMANCE), **errors(*KEYED)},
)
async def performance(
    svc: ScoringService = Depends(service),
    _: Caller = Depends(require("read")),
    days: float = Query(7.0, gt=0, le=365),
) -> dict[str, Any]:
    """Hits over the stored decisions of the last ``days`` (acting and shadow), how many of those were
    labelled, how many confirmed fraud, and precision = fraud / labelled (null until one is labelled)."""
    return {"days": days, "rules": await svc.reads.rule_performance(days)}


_NO_LIST = {
    "error": "http_error",
    "detail": "no list 'nope'; declared lists: ['blocked_bins', 'blocked_cards', 'blocked_countries', "
    "'blocked_devices', 'blocked_ips', 'blocked_merchants', 'trusted_users']",
}


class TimedItem(BaseModel):
    """A list item that expires: it matches transactions whose time is before ``expires_at``."""

    value: str = Field(min_length=1, max_length=256)
    expires_at: str | None = Field(
        None,
        description="RFC 3339 with a zone; absent or null: never expires",
        examples=["2026-12-24T18:00:00Z"],
    )


class ListItems(BaseModel):
    items: list[str | TimedItem] = Field(
        description="Plain strings (never expire) or {value, expires_at}", max_length=100_000
    )


def _timed(items: list[str | TimedItem]) -> dict[str, int | None]:
    """Each item with its expiry (ms, None: never); ValidationError naming ``items[i].expires_at``."""
    found: dict[str, int | None] = {}
    for i, item in enumerate(items):
        if isinstance(item, str):
            found[item] = None
        else:
            expires = (
                None if item.expires_at is None else instant_ms(f"items[{i}].expires_at", item.expires_at)
            )
            found[item.value] = expires
    return found


@router.put(
    "/v1/lists/{name}",
    operation_id="replaceList",
    summary="Replace the contents of a named allow/block list",
    openapi_extra=body_example({"items": ["dev-123", "dev-456"]}),
    responses={
        200: answer(examples.LIST_REPLACED),
        **errors(*WITH_BODY, 404, e404=_NO_LIST),
    },
)
async def put_list(
    name: str,
    body: ListItems,
    svc: ScoringService = Depends(service),
    caller: Caller = Depends(require("admin")),
) -> dict[str, Any]:
    """Items are plain strings, or ``{"value": ..., "expires_at": "RFC 3339"}`` for an item that
    matches only transactions whose own time is before its expiry (items expired by now are dropped)."""
    timed = _timed(body.items)
    expiries = {item: ms for item, ms in timed.items() if ms is not None}
    try:
        await svc.update_list(name, list(timed), caller.name, expiries)
    except KeyError as exc:
        raise HTTPException(404, exc.args[0]) from None
    return {"name": name, "size": len(svc.list_contents(name)["items"])}


@router.get(
    "/v1/lists/{name}",
    operation_id="getList",
    summary="A named list's items, each with its expiry",
    responses={200: answer(examples.LIST_CONTENTS), **errors(*KEYED, 404, e404=_NO_LIST)},
)
async def get_list(
    name: str, svc: ScoringService = Depends(service), _: Caller = Depends(require("read"))
) -> dict[str, Any]:
    """``expires_at_ms`` is null for an item that never expires. An item shown with a past expiry
    matches nothing; it is dropped at the list's next change."""
    try:
        return svc.list_contents(name)
    except KeyError as exc:
        raise HTTPException(404, exc.args[0]) from None


@router.post(
    "/v1/lists/{name}/items",
    operation_id="addListItems",
    summary="Add items to a named list, each with an optional expiry",
    openapi_extra=body_example(
        {"items": [{"value": "dev-123", "expires_at": "2026-12-24T18:00:00Z"}, "dev-456"]}
    ),
    responses={200: answer(examples.LIST_CONTENTS), **errors(*WITH_BODY, 404, e404=_NO_LIST)},
)
async def add_list_items(
    name: str,
    body: ListItems,
    svc: ScoringService = Depends(service),
    caller: Caller = Depends(require("admin")),
) -> dict[str, Any]:
    """An item already in the list takes the expiry given now (none: it no longer expires)."""
    timed = _timed(body.items)
    try:
        await svc.add_list_items(name, timed, caller.name)
    except KeyError as exc:
        raise HTTPException(404, exc.args[0]) from None
    return svc.list_contents(name)


@router.delete(
    "/v1/lists/{name}/items/{value}",
    operation_id="removeListItem",
    summary="Remove one item from a named list",
    responses={
        200: answer(examples.LIST_CONTENTS),
        **errors(
            *KEYED, 404, e404={"error": "http_error", "detail": "'dev-9' is not in list 'blocked_devices'"}
        ),
    },
)
async def remove_list_item(
    name: str, value: str, svc: ScoringService = Depends(service), caller: Caller = Depends(require("admin"))
) -> dict[str, Any]:
    try:
        removed = await svc.remove_list_item(name, value, caller.name)
    except KeyError as exc:
        raise HTTPException(404, exc.args[0]) from None
    if not removed:
        raise HTTPException(404, f"{value!r} is not in list {name!r}")
    return svc.list_contents(name)
