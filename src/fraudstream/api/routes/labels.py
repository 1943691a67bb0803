"""/v1/labels: chargebacks and confirmed frauds arriving late, in bulk."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from fraudstream.api import examples
from fraudstream.api.deps import Caller, read_json, require, service
from fraudstream.api.models import INVALID_REQUEST
from fraudstream.api.openapi import WITH_BODY, answer, errors, named_examples
from fraudstream.errors import FieldError, ValidationError
from fraudstream.runtime.embedded import ScoringService

_SHAPE = "a JSON list of {transaction_id, is_fraud, label_time?} objects"
_LABEL_SCHEMA = {
    "type": "object",
    "required": ["transaction_id", "is_fraud"],
    "properties": {
        "transaction_id": {"type": "string"},
        "is_fraud": {"type": "boolean"},
        "label_time": {"type": "string", "description": "RFC 3339; default: now"},
    },
}
#: The route reads its body itself (one label or a list); the document says what it is.
_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [_LABEL_SCHEMA, {"type": "array", "items": _LABEL_SCHEMA, "minItems": 1}]
                },
                "examples": named_examples(
                    chargebacks=(
                        "A list of labels",
                        [
                            {
                                "transaction_id": "txn_normal_001",
                                "is_fraud": False,
                                "label_time": "2025-08-01T00:00:00Z",
                            }
                        ],
                    ),
                    one=("One label, time now", {"transaction_id": "txn_fraud_002", "is_fraud": True}),
                ),
            }
        },
    }
}

router = APIRouter(prefix="/v1/labels", tags=["labels"], responses=INVALID_REQUEST)


@router.post(
    "",
    operation_id="addLabels",
    openapi_extra=_BODY_DOC,
    summary="Add labels: [{transaction_id, is_fraud, label_time?}]",
    responses={
        200: answer(examples.LABELS_ACCEPTED, "At least one label accepted; the invalid ones are listed"),
        **errors(*WITH_BODY, e422=examples.LABELS_INVALID),
    },
)
async def add_labels(
    request: Request, svc: ScoringService = Depends(service), caller: Caller = Depends(require("labels"))
) -> JSONResponse:
    """Answers 200 when at least one label is accepted (invalid ones are listed), 422 when none is."""
    body = await read_json(request)
    if not isinstance(body, list | dict):
        raise ValidationError([FieldError("body", f"is a {type(body).__name__}", _SHAPE)])
    records = body if isinstance(body, list) else [body]
    if not records:
        raise ValidationError([FieldError("body", "is an empty list", _SHAPE)])
    if len(records) > 100_000:
        raise HTTPException(413, "at most 100,000 labels per request")
    result = await svc.add_labels(records, caller.name)
    if result["invalid"] and len(result["invalid"]) == len(records):
        return JSONResponse({"error": "invalid_labels", **result}, 422)
    return JSONResponse(result)
