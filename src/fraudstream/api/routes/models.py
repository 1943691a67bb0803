"""/v1/models: the registry's versions with their metrics, the champion and challengers; promote."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from fraudstream.api import examples
from fraudstream.api.deps import Caller, require, service
from fraudstream.api.models import INVALID_REQUEST
from fraudstream.api.openapi import KEYED, answer, errors
from fraudstream.errors import ModelError
from fraudstream.runtime.embedded import ScoringService

router = APIRouter(prefix="/v1/models", tags=["models"], responses=INVALID_REQUEST)


_NO_VERSION = {"error": "http_error", "detail": "no model version 'v404' in data/models (known: none)"}


@router.get(
    "",
    operation_id="listModels",
    summary="Registered models, newest first, with their role and metrics",
    responses={200: answer(examples.MODELS), **errors(*KEYED)},
)
async def list_models(
    svc: ScoringService = Depends(service), _: Caller = Depends(require("read"))
) -> dict[str, Any]:
    return await svc.reads.models()


@router.post(
    "/{version}/promote",
    operation_id="promoteModel",
    summary="Make a model the champion: it decides from now on",
    responses={200: answer(examples.MODELS), **errors(*KEYED, 404, e404=_NO_VERSION)},
)
async def promote(
    version: str, svc: ScoringService = Depends(service), caller: Caller = Depends(require("admin"))
) -> dict[str, Any]:
    try:
        await svc.promote_model(version, caller.name)
    except ModelError as exc:
        raise HTTPException(404, str(exc)) from None
    return await svc.reads.models()


@router.post(
    "/{version}/shadow",
    operation_id="shadowModel",
    summary="Make a model a challenger: scored in shadow, never acting",
    responses={200: answer(examples.MODELS), **errors(*KEYED, 404, e404=_NO_VERSION)},
)
async def shadow(
    version: str, svc: ScoringService = Depends(service), caller: Caller = Depends(require("admin"))
) -> dict[str, Any]:
    try:
        await svc.shadow_model(version, caller.name)
    except ModelError as exc:
        raise HTTPException(404, str(exc)) from None
    return await svc.reads.models()
