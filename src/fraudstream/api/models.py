"""Pydantic models of the API's answers, for the OpenAPI page at /docs (the hot path writes JSON directly)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "INVALID_REQUEST",
    "Accepted",
    "BatchResult",
    "Decision",
    "ErrorBody",
    "FieldProblem",
    "ItemResult",
    "Reason",
    "TransactionPage",
]


class Reason(BaseModel):
    code: str = Field(examples=["amount_spike"])
    text: str = Field(examples=["Amount 5,000.00 is 100x this user's 30-day average"])
    contribution: float = Field(
        description="Score points (0-100): a rule's weight, or the points a feature added to the model's "
        "share of the score (100 x probability; the model's reasons together never exceed it)",
        examples=[60.0],
    )
    kind: str = Field(description="What produced it: rule, model, ...", examples=["rule"])


class Decision(BaseModel):
    """What the engine decided for one transaction, as stored (a retry gets this same body)."""

    transaction_id: str = Field(examples=["txn_fraud_002"])
    decision: Literal["approve", "challenge", "review", "decline"]
    score: int = Field(ge=0, le=100, examples=[60])
    probability: float | None = Field(None, description="The champion model's fraud probability, if any")
    is_alert: bool
    reasons: list[Reason] = Field(description="Most important first")
    rules: list[str] = Field(description="Codes of the rules that acted", examples=[["amount_spike"]])
    shadow_rules: list[str] = Field(description="Shadow rules that matched (recorded, never acting)")
    snoozes: list[str] = Field([], description="Ids of the snoozes that applied (POST /v1/snoozes)")
    features: dict[str, float | None] = Field(description="The key features behind the decision")
    model_version: str | None = None
    ruleset_version: int
    latency_ms: float | None = Field(
        description="From receipt to durable decision; null when a Kafka worker decided", examples=[3.6]
    )
    decided_at_ms: int


class FieldProblem(BaseModel):
    field: str = Field(examples=["amount"])
    problem: str = Field(examples=["must be >= 0"])
    allowed: str | None = Field(None, examples=["a finite number >= 0 and <= 1,000,000,000"])
    value: Any = None


class ErrorBody(BaseModel):
    """Every 4xx: a machine-readable error, and either a detail sentence or the fields at fault."""

    error: str = Field(examples=["invalid_transaction"])
    detail: str | None = None
    errors: list[FieldProblem] | None = None
    error_id: str | None = Field(
        None, description="A 503 storage_unavailable's id in the server's log, to quote to an operator"
    )
    retry_after_s: int | None = Field(None, description="An overloaded 503: when to send it again")


#: A router's 422, as the error handlers shape it: without it FastAPI documents its own
#: HTTPValidationError, a shape no answer of ours has.
INVALID_REQUEST: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ErrorBody,
        "description": "Invalid parameters or body: the fields at fault or the problem",
        "content": {
            "application/json": {
                "example": {
                    "error": "invalid_request",
                    "errors": [{"field": "limit", "problem": "Input should be greater than or equal to 1"}],
                }
            }
        },
    }
}


class ItemResult(BaseModel):
    """One item of a list: its status and HTTP status, then the Decision fields (scored, duplicate) or
    the error and the fields at fault (invalid, conflict)."""

    model_config = ConfigDict(extra="allow")

    status: Literal["scored", "duplicate", "conflict", "invalid", "accepted"]
    http_status: int = Field(examples=[201])
    transaction_id: str | None = None
    error: str | None = None
    errors: list[FieldProblem] | None = None


class BatchResult(BaseModel):
    results: list[ItemResult] = Field(description="One per item, in order")
    summary: dict[str, int] = Field(examples=[{"scored": 2, "duplicate": 0, "conflict": 0, "invalid": 1}])


class Accepted(BaseModel):
    """In Kafka mode (FRAUDSTREAM_KAFKA_BOOTSTRAP with the API handing off), the transaction is on the
    topic and a worker decides; the decision is read later (GET /v1/transactions/{id})."""

    transaction_id: str = Field(examples=["txn_normal_001"])
    status: Literal["accepted"]


class TransactionPage(BaseModel):
    items: list[dict[str, Any]] = Field(description="Transactions with their decision, newest first")
    next_cursor: int | None = Field(description="Pass as ?cursor= for the next page; null on the last")
