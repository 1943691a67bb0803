"""/v1/webhooks: receivers of signed decision events, and what was delivered to them (admins only).

See docs/webhooks.md for the body, the signature and the retries.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fraudstream.api import examples
from fraudstream.api.deps import Caller, require, service
from fraudstream.api.models import INVALID_REQUEST
from fraudstream.api.openapi import KEYED, WITH_BODY, answer, body_example, errors
from fraudstream.runtime.embedded import ScoringService
from fraudstream.sinks.webhooks import EVENTS, url_problem

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=INVALID_REQUEST)

_ID = Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")

#: What a delivery can be (`DELIVERY_STATUSES` of the storage).
Status = Literal["pending", "delivered", "failed", "cancelled"]


class NewWebhook(BaseModel):
    """A receiver to register."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=2048,
        description="Where deliveries are POSTed: an http:// or https:// URL",
        examples=["https://hooks.example.com/fraud"],
    )
    events: list[str] = Field(
        min_length=1,
        max_length=len(EVENTS),
        description="What to deliver: `alert` (the decision raised an alert), `approve`, `challenge`, "
        "`review`, `decline` (that decision), `decision` (every decision)",
        json_schema_extra={"items": {"type": "string", "enum": list(EVENTS)}},
        examples=[["alert", "decline"]],
    )
    min_score: float | None = Field(
        None, ge=0, le=100, description="Only decisions scored at least this (0-100)", examples=[70]
    )
    format: Literal["json", "slack"] = Field(
        "json", description='`json`: the decision event; `slack`: `{"text": ...}` for a Slack webhook'
    )

    @field_validator("url")
    @classmethod
    def _receiver(cls, url: str) -> str:
        problem = url_problem(url)
        if problem is not None:
            raise ValueError(problem)
        return url

    @field_validator("events")
    @classmethod
    def _known(cls, events: list[str]) -> list[str]:
        unknown = sorted({event for event in events if event not in EVENTS})
        if unknown:
            raise ValueError(f"unknown events {unknown}; allowed: {', '.join(EVENTS)}")
        return events


class Webhook(BaseModel):
    id: str = Field(examples=["wh_3f2a9c0d1e4b5a6f"])
    url: str
    events: list[str]
    min_score: float | None
    format: Literal["json", "slack"]
    created_at_ms: int
    created_by: str | None


class CreatedWebhook(Webhook):
    secret: str = Field(
        description="Signs every delivery (X-Fraudstream-Signature). Shown only here: keep it.",
        examples=["whsec_0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978"],
    )


class Webhooks(BaseModel):
    webhooks: list[Webhook]


class Deleted(BaseModel):
    id: str
    deleted: bool
    cancelled_deliveries: int = Field(description="Pending deliveries that will not be sent")


class Delivery(BaseModel):
    id: str = Field(description="The X-Fraudstream-Delivery header the receiver got")
    transaction_id: str
    event: str
    status: Status
    attempts: int
    next_attempt_ms: int = Field(description="When a pending delivery is tried next")
    last_status_code: int | None = Field(description="The receiver's last HTTP status, if it answered")
    last_error: str | None
    created_at_ms: int
    delivered_at_ms: int | None


class Deliveries(BaseModel):
    webhook_id: str
    deliveries: list[Delivery]


def _listed(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in Webhook.model_fields}


_NO_WEBHOOK = {"error": "http_error", "detail": "no webhook 'wh_404'; GET /v1/webhooks lists them"}


@router.post(
    "",
    status_code=201,
    operation_id="createWebhook",
    summary="Register a webhook; its signing secret is shown only here",
    openapi_extra=body_example(
        {"url": "https://hooks.example.com/fraud", "events": ["alert", "decline"], "min_score": 70}
    ),
    responses={201: answer(examples.WEBHOOK_CREATED), **errors(*WITH_BODY)},
)
async def create_webhook(
    body: NewWebhook, svc: ScoringService = Depends(service), caller: Caller = Depends(require("admin"))
) -> CreatedWebhook:
    """Decisions made from now on that match `events` and `min_score` are POSTed to `url`, signed
    with the secret in this answer; see docs/webhooks.md."""
    row = await svc.create_webhook(body.url, body.events, body.min_score, body.format, caller.name)
    return CreatedWebhook(**_listed(row), secret=row["secret"])


@router.get(
    "",
    operation_id="listWebhooks",
    summary="The registered webhooks (never their secrets)",
    responses={200: answer(examples.WEBHOOKS), **errors(*KEYED)},
)
async def list_webhooks(
    svc: ScoringService = Depends(service), _: Caller = Depends(require("admin"))
) -> Webhooks:
    rows = await svc.reads.webhooks()
    return Webhooks(webhooks=[Webhook(**_listed(row)) for row in rows])


@router.delete(
    "/{webhook_id}",
    operation_id="deleteWebhook",
    summary="Delete a webhook; its pending deliveries are not sent",
    responses={200: answer(examples.WEBHOOK_DELETED), **errors(*KEYED, 404, e404=_NO_WEBHOOK)},
)
async def delete_webhook(
    webhook_id: str = _ID,
    svc: ScoringService = Depends(service),
    caller: Caller = Depends(require("admin")),
) -> Deleted:
    cancelled = await svc.delete_webhook(webhook_id, caller.name)
    if cancelled is None:
        raise HTTPException(404, f"no webhook {webhook_id!r}; GET /v1/webhooks lists them")
    return Deleted(id=webhook_id, deleted=True, cancelled_deliveries=cancelled)


@router.get(
    "/{webhook_id}/deliveries",
    operation_id="listWebhookDeliveries",
    summary="A webhook's deliveries, newest first",
    responses={200: answer(examples.DELIVERIES), **errors(*KEYED, 404, e404=_NO_WEBHOOK)},
)
async def list_deliveries(
    webhook_id: str = _ID,
    status: Status | None = Query(None, description="Only deliveries in this status"),
    limit: int = Query(100, ge=1, le=1000),
    svc: ScoringService = Depends(service),
    _: Caller = Depends(require("admin")),
) -> Deliveries:
    """Each delivery's status, attempts, the receiver's last status code or error, and its times;
    a deleted webhook still lists its deliveries."""
    rows = await svc.reads.webhook_deliveries(webhook_id, status, limit)
    if rows is None:
        raise HTTPException(404, f"no webhook {webhook_id!r}; GET /v1/webhooks lists them")
    return Deliveries(webhook_id=webhook_id, deliveries=[Delivery(**row) for row in rows])
