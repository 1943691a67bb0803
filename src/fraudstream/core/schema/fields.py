"""The transaction fields, in schema order, the channels, and the aliases other systems use."""

from __future__ import annotations

from typing import Final

__all__ = ["ALIASES", "CHANNELS", "FIELDS"]

CHANNELS: Final = frozenset({"pos", "online", "atm", "mobile", "moto", "other"})

#: The input fields, in schema order; ``card_number`` never leaves validation.
FIELDS: Final = (
    "transaction_id",
    "timestamp",
    "user_id",
    "amount",
    "currency",
    "merchant_id",
    "merchant_category",
    "terminal_id",
    "channel",
    "location",
    "lat",
    "lon",
    "country",
    "device_id",
    "ip",
    "card_number",
    "card_fingerprint",
    "card_bin",
    "card_last4",
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


#: Names of the systems users come from → canonical field names (camelCase of each field too).
ALIASES: Final[dict[str, str]] = {
    **{_camel(name): name for name in FIELDS if _camel(name) != name},
    "txn_id": "transaction_id",
    "txnId": "transaction_id",
    "tx_id": "transaction_id",
    "id": "transaction_id",
    "customer_id": "user_id",
    "customerId": "user_id",
    "account_id": "user_id",
    "accountId": "user_id",
    "time": "timestamp",
    "event_time": "timestamp",
    "eventTime": "timestamp",
    "created_at": "timestamp",
    "createdAt": "timestamp",
    "mcc": "merchant_category",
    "merchant_category_code": "merchant_category",
    "merchantCategoryCode": "merchant_category",
    "ip_address": "ip",
    "ipAddress": "ip",
    "latitude": "lat",
    "longitude": "lon",
    "card": "card_number",
}
