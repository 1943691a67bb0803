"""Rule descriptions as templates: checked once when a rule set loads, then filled for every reason.

A description names fields and features in braces, `{amount}` or `{amount:,.2f}`. What a rule author
writes there ends up in every decision, alert and stored row of the transactions the rule hits, so a
template may only name a known field or feature as it is (no `{amount.__class__}`, no `{x[0]}`, no
`!r`) and format it with the standard format mini-language, width and precision at most
`MAX_FORMAT_SIZE`.
"""

from __future__ import annotations

import difflib
import math
import re
import string
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final

from fraudstream.core.explain import clip_reason
from fraudstream.errors import RuleError

__all__ = ["MAX_FORMAT_SIZE", "Template", "compile_template"]

#: The largest width and the largest precision a placeholder may ask for: enough for any column of a
#: reason, far too little to fill a response.
MAX_FORMAT_SIZE: Final = 20

# The standard format spec, [[fill]align][sign][z][#][0][width][grouping][.precision][type], without
# nested fields.
_SPEC: Final = re.compile(
    r"(?:[^{}]?[<>=^])?[-+ ]?z?#?0?(?P<width>[0-9]+)?[,_]?(?:\.(?P<precision>[0-9]+))?[bcdeEfFgGnosxX%]?"
)
_EXAMPLE: Final = "e.g. {amount:,.2f} or {user.count_30s:.0f}"


@dataclass(frozen=True)
class _Part:
    literal: str
    name: str | None = None
    spec: str = ""


@dataclass(frozen=True)
class Template:
    """A checked description: literal text and the placeholders it fills, in order."""

    parts: tuple[_Part, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The field and feature names the template fills in, each once, in order of appearance."""
        return tuple(dict.fromkeys(p.name for p in self.parts if p.name is not None))

    def fill(self, values: Mapping[str, object]) -> str:
        """The description for one transaction, at most `MAX_REASON_CHARS` long (see `clip_reason`).

        >>> compile_template("Amount {amount:,.2f} at {merchant_id}", {"amount", "merchant_id"}).fill(
        ...     {"amount": 5000.0})
        'Amount 5,000.00 at unknown'
        """
        pieces = []
        for part in self.parts:
            pieces.append(part.literal)
            if part.name is not None:
                pieces.append(_formatted(values.get(part.name), part.spec))
        return clip_reason("".join(pieces))


def _formatted(value: object, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    try:
        return format(value, spec)
    except (TypeError, ValueError):  # a number format on a text field: the value as it is
        return str(value)


def compile_template(description: str, names: Collection[str], *, rule: str = "<rule>") -> Template:
    """Check a rule's description against the names a rule can use; a problem raises RuleError.

    >>> compile_template("{amount:,.2f} by {user_id}, {amount:.0f}", {"amount", "user_id"}).names
    ('amount', 'user_id')
    >>> compile_template("{amount:>5000000}", {"amount"}, rule="big")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fraudstream.errors.RuleError: rule 'big': description uses {amount:>5000000}: width 5000000 is over 20...
    """
    try:
        parsed = list(string.Formatter().parse(description))
    except ValueError as exc:  # a lone brace: "Single '}' encountered in format string"
        raise RuleError(
            rule, f"description is not a valid template ({exc}); write {{{{ or }}}} for a brace"
        ) from None
    parts = []
    for literal, field, spec, conversion in parsed:
        if field is None:
            parts.append(_Part(literal))
            continue
        shown = _shown(field, spec, conversion)
        _check_name(field, names, shown, rule)
        if conversion is not None:
            raise RuleError(
                rule, f"description uses {shown}: conversions (!r, !s, !a) are not allowed; write {{{field}}}"
            )
        _check_spec(spec or "", shown, rule)
        parts.append(_Part(literal, field, spec or ""))
    return Template(tuple(parts))


def _shown(field: str, spec: str | None, conversion: str | None) -> str:
    """A placeholder as the author wrote it, cut short if long, for an error message."""
    text = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
    return text if len(text) <= 60 else text[:59] + "…"


def _check_name(field: str, names: Collection[str], shown: str, rule: str) -> None:
    if field in names:
        return
    if field == "" or field.isdigit():
        raise RuleError(rule, f"description uses {shown}: a placeholder names a field or feature, {_EXAMPLE}")
    if "[" in field or any(field.startswith(name + ".") for name in names):
        raise RuleError(
            rule, f"description uses {shown}: attributes and indexes are not allowed, only a name as it is"
        )
    close = difflib.get_close_matches(field, list(names), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise RuleError(rule, f"description uses {shown}, which is not a known name{hint}")


def _check_spec(spec: str, shown: str, rule: str) -> None:
    match = _SPEC.fullmatch(spec)
    if match is None:
        raise RuleError(
            rule, f"description uses {shown}: {spec!r} is not a format a description can use, {_EXAMPLE}"
        )
    for part in ("width", "precision"):
        digits = (match.group(part) or "").lstrip("0")
        # Compared by length first: int() refuses text of more than 4,300 digits.
        if len(digits) > len(str(MAX_FORMAT_SIZE)) or (digits and int(digits) > MAX_FORMAT_SIZE):
            number = digits if len(digits) <= 12 else digits[:11] + "…"
            raise RuleError(
                rule,
                f"description uses {shown}: {part} {number} is over {MAX_FORMAT_SIZE}; "
                f"width and precision are at most {MAX_FORMAT_SIZE}, {_EXAMPLE}",
            )
