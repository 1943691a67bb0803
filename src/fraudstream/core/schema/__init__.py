"""The transaction schema: aliases, types and bounds; records or tables in, a clean batch and errors out.

Validation works a column at a time: each field is pulled out of the input once, split by the kind
of value it holds, checked with vectorized Arrow / NumPy operations, and converted. Only the rows
that fail get a detailed `FieldError` (every problem of the row, not only the first); the good rows
become one `TransactionBatch` in input order. Rules worth knowing:

- ``transaction_id`` and ``user_id`` are required, 1–128 characters after trimming spaces; integers
  are accepted as ids and become their decimal text (``1087`` → ``"1087"``). Other optional ids
  (merchant, terminal, device, category, location) follow the same rule.
- ``amount`` is a finite number >= 0 and at most ``max_amount`` (default 1e9): 0.00 is a
  card-verification request, a classic card-testing signal, so it is scored, not refused. Numeric
  strings such as ``"50.00"`` are accepted, because many payment APIs send money as text to avoid
  binary floats; ``"NaN"`` / ``"inf"`` are refused as not finite, anything else as not a number.
- ``timestamp`` is RFC 3339 **with a zone** (``2025-07-15T10:00:00Z``, ``...+05:30``); a date-time
  without one is refused (add ``Z`` or an offset), unless the caller says which zone such times are
  in (``naive_timezone``: files exported without zones; a live payment must carry its own). Then
  naive text and Arrow timestamp columns without a zone are wall-clock times there: a time that
  happens twice when clocks go back is the first of the two, a time skipped when they go forward
  moves to the end of the gap (02:30 on a spring-forward night is 03:00). A number is a Unix time:
  below 10^11 it is seconds, otherwise milliseconds (10^11 s is the year 5138 and 10^11 ms is March
  1973, so the two ranges users send never overlap); digits-only text counts as a number. Missing:
  the ``received_at_ms`` the runtime passes.
- ``currency`` is an ISO 4217 code (default USD), ``country`` ISO 3166-1 alpha-2, both trimmed and
  upper-cased; ``channel`` is one of `CHANNELS`, lower-cased.
- ``lat`` / ``lon`` are numbers in range, both or neither. ``ip`` is IPv4 or IPv6 text, stored in
  its canonical form.
- ``card_number`` (12–19 digits, spaces or dashes allowed, Luhn-valid) becomes ``card_fingerprint``
  (keyed HMAC, see `fraudstream.core.cards`), ``card_bin`` and ``card_last4``. The number itself is
  never kept, nor echoed in an error (errors show it masked, BIN and last four), and extra fields
  that hold a valid card number are masked before they are kept.
- A ``location`` name without ``lat``/``lon`` is resolved through `ReferenceData.places`; unknown
  places ("Online") have no coordinates and are not an error. A resolved place fills a missing
  ``country``.
- Unknown extra fields are kept, as compact JSON, in ``attributes``: nested at most
  `MAX_EXTRA_DEPTH` levels and `MAX_EXTRA_BYTES` in all, or the row is refused.
"""

from __future__ import annotations

from fraudstream.core.geo import DictPlaceLookup, PlaceLookup
from fraudstream.core.schema.extras import MAX_EXTRA_BYTES, MAX_EXTRA_DEPTH
from fraudstream.core.schema.fields import ALIASES, CHANNELS, FIELDS
from fraudstream.core.schema.labels import label_batch
from fraudstream.core.schema.results import RowError, ValidationResult
from fraudstream.core.schema.times import NaiveTimes, naive_times, time_zone
from fraudstream.core.schema.validator import ReferenceData, Validator

__all__ = [
    "ALIASES",
    "CHANNELS",
    "FIELDS",
    "MAX_EXTRA_BYTES",
    "MAX_EXTRA_DEPTH",
    "DictPlaceLookup",
    "NaiveTimes",
    "PlaceLookup",
    "ReferenceData",
    "RowError",
    "ValidationResult",
    "Validator",
    "label_batch",
    "naive_times",
    "time_zone",
]
