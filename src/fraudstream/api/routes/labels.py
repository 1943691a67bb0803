"""/v1/labels: chargebacks and confirmed frauds arriving late, in bulk."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request

from fraudstream.api.deps import Caller, read_json, require, service
from fraudstream.runtime.embedded import ScoringService

router = APIRouter(prefix="/v1/labels", tags=["labels"])


@router.post("", summary="Add labels: [{transaction_id, is_fraud, label_time?}]")
async def add_labels(
    request: Request, svc: ScoringService = Depends(service), caller: Caller = Depends(require("labels"))
) -> dict[str, Any]:
    body = await read_json(request)
    records = body if isinstance(body, list) else [body]
    if len(records) > 100_000:
        raise HTTPException(413, "at most 100,000 labels per request")
    return await svc.add_labels(records, caller.name)
