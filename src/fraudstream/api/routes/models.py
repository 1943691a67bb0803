"""/v1/models: the registry's versions with their metrics, the champion and challengers; promote."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from fraudstream.api.deps import Caller, require, service
from fraudstream.api.models import INVALID_REQUEST
from fraudstream.errors import ModelError
from fraudstream.runtime.embedded import ScoringService

router = APIRouter(prefix="/v1/models", tags=["models"], responses=INVALID_REQUEST)


@router.get("", summary="Registered models, newest first, with their role and metrics")
async def list_models(
    svc: ScoringService = Depends(service), _: Caller = Depends(require("read"))
) -> dict[str, Any]:
    return await svc.reads.models()


@router.post("/{version}/promote", summary="Make a model the champion: it decides from now on")
async def promote(
    version: str, svc: ScoringService = Depends(service), caller: Caller = Depends(require("admin"))
) -> dict[str, Any]:
    try:
        await svc.promote_model(version, caller.name)
    except ModelError as exc:
        raise HTTPException(404, str(exc)) from None
    return await svc.reads.models()


@router.post("/{version}/shadow", summary="Make a model a challenger: scored in shadow, never acting")
async def shadow(
    version: str, svc: ScoringService = Depends(service), caller: Caller = Depends(require("admin"))
) -> dict[str, Any]:
    try:
        await svc.shadow_model(version, caller.name)
    except ModelError as exc:
        raise HTTPException(404, str(exc)) from None
    return await svc.reads.models()
