"""/v1/drift: how far the champion's features moved from its training data (PSI per feature), and
the daily score distribution and alert rate."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from fraudstream.api import examples
from fraudstream.api.deps import Caller, require, service
from fraudstream.api.models import INVALID_REQUEST
from fraudstream.api.openapi import KEYED, answer, errors
from fraudstream.runtime.embedded import ScoringService

router = APIRouter(tags=["drift"], responses=INVALID_REQUEST)


@router.get(
    "/v1/drift",
    operation_id="getDrift",
    summary="Feature drift (PSI against the training data), daily scores and alert rate",
    description=(
        "Per feature of the champion model, the population stability index of the transactions it "
        "scored in the current and the previous UTC day (the last 24 to 48 hours) against the model's "
        "training data, the most drifted first, each `stable` (PSI below `thresholds.watch`), `watch` "
        "or `drifted` (from `thresholds.drifted`); `warning` is true when a feature drifted. "
        "`status` is `no_model` (rules alone), `no_reference` (a model trained before drift "
        "references were kept: retrain it), `too_few` (fewer than `thresholds.min_transactions` "
        "scored in the window), else the worst feature's status. `daily`: the last 14 UTC days of "
        "stored decisions, oldest first: decisions, alerts, alert rate, decisions by kind and the "
        "score histogram in buckets of 10 points (0-9, ..., 90-100)."
    ),
    responses={200: answer(examples.DRIFT), **errors(*KEYED)},
)
async def drift(
    svc: ScoringService = Depends(service), _: Caller = Depends(require("read"))
) -> dict[str, Any]:
    return await svc.drift.report()
