"""/v1/models: the registry's versions with their metrics, the champion and challengers; promote."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from fraudstream.api.deps import Caller, require, service
from fraudstream.api.models import INVALID_REQUEST
from fraudstream.errors import ModelError
from fraudstream.ml.registry import Registry
from fraudstream.runtime.embedded import ScoringService
from fraudstream.runtime.embedded.service import now_ms

router = APIRouter(prefix="/v1/models", tags=["models"], responses=INVALID_REQUEST)


def _describe(svc: ScoringService) -> dict[str, Any]:
    registry = Registry(svc.settings.models_dir)
    roles = registry.roles()
    champion, challengers = roles.get("champion"), roles.get("challengers", [])
    versions = []
    for meta in reversed(registry.versions()):  # newest first
        versions.append(
            {
                "version": meta.version,
                "kind": meta.kind,
                "created": meta.created,
                "role": Registry.role_in(roles, meta.version),
                "metrics": meta.metrics,
                "features": len(meta.feature_names),
                "training_fingerprint": meta.training_fingerprint,
            }
        )
    active = svc.engine.model.metadata.version if svc.engine.model else None
    return {
        "champion": champion,
        "challengers": challengers,
        "scoring": active,
        "pinned": svc.settings.model_path is not None,
        "versions": versions,
    }


@router.get("", summary="Registered models, newest first, with their role and metrics")
async def list_models(
    svc: ScoringService = Depends(service), _: Caller = Depends(require("read"))
) -> dict[str, Any]:
    return await asyncio.to_thread(_describe, svc)


async def _change_role(svc: ScoringService, version: str, role: str, actor: str) -> dict[str, Any]:
    registry = Registry(svc.settings.models_dir)

    def run() -> dict[str, Any]:
        try:
            found = registry.promote(version) if role == "champion" else registry.shadow(version)
        except ModelError as exc:
            raise HTTPException(404, str(exc)) from None
        svc.refresh_model()  # the running engine follows at once, not at the next maintenance tick
        svc.store.audit(actor, f"model_{role}", found, {"version": found}, now_ms())
        return _describe(svc)

    return await asyncio.to_thread(run)


@router.post("/{version}/promote", summary="Make a model the champion: it decides from now on")
async def promote(
    version: str, svc: ScoringService = Depends(service), caller: Caller = Depends(require("admin"))
) -> dict[str, Any]:
    return await _change_role(svc, version, "champion", caller.name)


@router.post("/{version}/shadow", summary="Make a model a challenger: scored in shadow, never acting")
async def shadow(
    version: str, svc: ScoringService = Depends(service), caller: Caller = Depends(require("admin"))
) -> dict[str, Any]:
    return await _change_role(svc, version, "challenger", caller.name)
