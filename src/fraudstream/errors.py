"""The one exception hierarchy of fraudstream: each message says what happened and what to do."""

from __future__ import annotations

import reprlib
from dataclasses import dataclass, field

__all__ = [
    "ConfigError",
    "FieldError",
    "FraudstreamError",
    "ModelError",
    "OverloadError",
    "RuleError",
    "RuleSetError",
    "SinkError",
    "StateError",
    "ValidationError",
]


#: Shows a bad value in an error without walking all of it: a list a thousand levels deep (valid JSON)
#: would exhaust the recursion limit of the built-in repr.
_SHOW = reprlib.Repr()
_SHOW.maxlevel = 4
_SHOW.maxstring = _SHOW.maxother = 200


class FraudstreamError(Exception):
    """Base of every error fraudstream raises on purpose."""


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of one input row, machine-readable.

    >>> print(FieldError("amount", "must be >= 0", "a finite number >= 0", -5).message)
    amount: must be >= 0 (got -5; allowed: a finite number >= 0)
    """

    field: str
    problem: str
    allowed: str
    value: object = None

    @property
    def message(self) -> str:
        return f"{self.field}: {self.problem} (got {_SHOW.repr(self.value)}; allowed: {self.allowed})"

    def as_dict(self) -> dict[str, object]:
        value = (
            self.value
            if isinstance(self.value, int | float | str | bool) or self.value is None
            else _SHOW.repr(self.value)
        )
        if isinstance(value, str) and len(value) > 200:
            value = value[:200] + "..."
        return {"field": self.field, "problem": self.problem, "allowed": self.allowed, "value": value}


class ValidationError(FraudstreamError):
    """Input that does not follow the transaction schema; `errors` names each field."""

    def __init__(self, errors: list[FieldError], index: int | None = None) -> None:
        self.errors = errors
        self.index = index
        where = f"row {index}: " if index is not None else ""
        super().__init__(where + "; ".join(e.message for e in errors))


@dataclass
class RuleErrorDetail:
    """Where a rule is wrong: its code, the 1-based column in its expression, and why."""

    rule: str
    position: int | None
    reason: str
    expression: str = field(default="")
    #: The key of the rule (or of the rule set) that is wrong: expression, action, weight, version, ...
    key: str = field(default="")


class RuleError(FraudstreamError):
    """A rule or rule set that cannot be loaded; the previous rule set stays in force."""

    def __init__(
        self, rule: str, reason: str, position: int | None = None, expression: str = "", *, key: str = ""
    ) -> None:
        self.detail = RuleErrorDetail(
            rule=rule, position=position, reason=reason, expression=expression, key=key
        )
        at = f" at column {position}" if position is not None else ""
        super().__init__(f"rule {rule!r}{at}: {reason}")

    @property
    def rule(self) -> str:
        return self.detail.rule

    @property
    def position(self) -> int | None:
        return self.detail.position

    @property
    def reason(self) -> str:
        return self.detail.reason


class RuleSetError(RuleError):
    """Every problem of a rule set at once, each a `RuleError` in ``errors``. It reads as its first
    (``rule``, ``position``, ``reason``), so an answer shaped for one problem still holds, and its
    message names them all.

    >>> str(RuleSetError([RuleError("a", "action 'x' is not one of tag, review"), RuleError("b", "bad", 3)]))
    "2 problems: rule 'a': action 'x' is not one of tag, review; rule 'b' at column 3: bad"
    """

    def __init__(self, errors: list[RuleError]) -> None:
        first = errors[0]
        super().__init__(
            first.rule, first.reason, first.position, first.detail.expression, key=first.detail.key
        )
        self.errors = errors
        self.args = (f"{len(errors)} problems: " + "; ".join(str(e) for e in errors),)


class ModelError(FraudstreamError):
    """A model artifact that cannot be loaded or does not fit the engine's features."""


class ConfigError(FraudstreamError):
    """A configuration value that is missing or out of range."""


class SinkError(FraudstreamError):
    """A sink (database, Redis, Kafka, lake, webhook) that refused a write."""


class OverloadError(FraudstreamError):
    """More work is waiting than the server admits; the request was not taken: send it again after
    ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StateError(FraudstreamError):
    """Feature state that cannot be restored (wrong format version, corrupt bytes, other config)."""
