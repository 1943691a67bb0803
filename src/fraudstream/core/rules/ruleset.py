"""Rule sets: versioned YAML of rules and lists, validated on load, evaluated over whole batches.

Actions, as payment teams know them from card-network rule engines, in precedence order:

- ``allow``: trusted (an allow-listed user, card or device); the transaction is approved whatever
  else hits.
- ``decline``: refuse the payment.
- ``challenge``: ask for step-up authentication (3-D Secure, one-time code).
- ``review``: approve or hold for an analyst, and raise an alert.
- ``tag``: only record that the rule hit.

A ``shadow`` rule is evaluated and recorded but never acts: the way to try a rule on live traffic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import yaml

from fraudstream.core.rules.language import (
    AttributeTypes,
    ColumnSource,
    Expression,
    Kind,
    ListSource,
    compile_expression,
)
from fraudstream.core.rules.program import Program
from fraudstream.core.rules.template import Template, compile_template
from fraudstream.errors import RuleError, RuleSetError

__all__ = ["ACTIONS", "ListDeclaration", "Rule", "RuleHits", "RuleSet", "load_ruleset", "ruleset_errors"]

#: Actions by index, least to most overriding; rule action codes index into this tuple.
ACTIONS: Final = ("tag", "review", "challenge", "decline", "allow")

_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_RULE_KEYS: Final = {"code", "description", "expression", "action", "weight", "enabled", "shadow"}


@dataclass(frozen=True)
class ListDeclaration:
    """A named list a rule set uses: the column it is meant for and its starting contents."""

    kind: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    """One rule: when ``expression`` holds, ``action`` applies and ``weight`` points add to the score."""

    code: str
    description: str
    expression: str
    action: str
    weight: float = 0.0
    enabled: bool = True
    shadow: bool = False
    compiled: Expression | None = field(default=None, compare=False, repr=False)
    template: Template | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "description": self.description,
            "expression": self.expression,
            "action": self.action,
            "weight": self.weight,
            "enabled": self.enabled,
            "shadow": self.shadow,
        }


@dataclass(frozen=True)
class RuleHits:
    """Which enabled rules hit which rows: ``hits`` is (rules, rows)."""

    codes: tuple[str, ...]
    hits: npt.NDArray[np.bool_]
    actions: npt.NDArray[np.int8]
    weights: npt.NDArray[np.float32]
    shadow: npt.NDArray[np.bool_]

    def counts(self) -> dict[str, int]:
        """Hits per rule code over the batch."""
        return dict(zip(self.codes, self.hits.sum(axis=1).tolist()))


@dataclass(frozen=True)
class RuleSet:
    """A versioned, validated set of rules and the lists they use."""

    version: int
    rules: tuple[Rule, ...]
    lists: Mapping[str, ListDeclaration] = field(default_factory=dict)
    description: str = ""
    #: The type each ``attributes.NAME`` its rules read has in this rule set (see ``attributes``).
    attribute_types: Mapping[str, Kind] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        enabled = [r for r in self.rules if r.enabled]
        object.__setattr__(self, "_enabled", tuple(enabled))
        object.__setattr__(self, "_by_code", {r.code: r for r in self.rules})
        object.__setattr__(
            self, "_actions", np.array([ACTIONS.index(r.action) for r in enabled], dtype=np.int8)
        )
        object.__setattr__(self, "_weights", np.array([r.weight for r in enabled], dtype=np.float32))
        object.__setattr__(self, "_shadow", np.array([r.shadow for r in enabled], dtype=np.bool_))
        # Every enabled rule in one compiled program (rules come compiled from ``load_ruleset``).
        compiled = [r.compiled for r in enabled]
        program = Program([c for c in compiled if c is not None]) if None not in compiled else None
        object.__setattr__(self, "_program", program)

    def evaluate(self, columns: ColumnSource, lists: ListSource) -> RuleHits:
        """Every enabled rule over the whole batch at once."""
        enabled: tuple[Rule, ...] = self._enabled  # type: ignore[attr-defined]
        program: Program | None = self._program  # type: ignore[attr-defined]
        assert program is not None, "a rule set's rules are compiled by load_ruleset"
        hits = program.run(columns, lists)
        return RuleHits(
            codes=tuple(r.code for r in enabled),
            hits=hits,
            actions=self._actions,  # type: ignore[attr-defined]
            weights=self._weights,  # type: ignore[attr-defined]
            shadow=self._shadow,  # type: ignore[attr-defined]
        )

    @property
    def attributes(self) -> dict[str, str]:
        """The extra fields its enabled rules read, by name, with the kind a batch reads them as:
        ``number`` or ``string`` as their use fixed it, ``present`` for one only ever tested with
        ``is_missing`` (see `fraudstream.core.attributes`).

        >>> rs = load_ruleset("version: 1\\nrules:\\n  - {code: web, action: tag, expression: "
        ...     "'attributes.channel == \\"web\\"'}", {})
        >>> rs.attributes
        {'channel': 'string'}
        """
        enabled: tuple[Rule, ...] = self._enabled  # type: ignore[attr-defined]
        used = sorted({name for r in enabled if r.compiled is not None for name in r.compiled.attributes})
        return {name: self.attribute_types.get(name, "present") for name in used}

    def rule(self, code: str) -> Rule:
        found: Rule | None = self._by_code.get(code)  # type: ignore[attr-defined]
        if found is None:
            raise RuleError(code, f"no rule with this code in rule set version {self.version}")
        return found

    def names_used(self, code: str) -> tuple[str, ...]:
        compiled = self.rule(code).compiled
        return tuple(sorted(compiled.names)) if compiled is not None else ()

    def description_names(self, code: str) -> tuple[str, ...]:
        """The feature and field names a rule's description fills in (its ``{name}`` placeholders)."""
        return self._template(code).names

    def describe(self, code: str, values: Mapping[str, object]) -> str:
        """The rule's description with ``{name}`` / ``{name:format}`` filled from ``values``, at most
        ``MAX_REASON_CHARS`` long.

        >>> rs = load_ruleset("version: 1\\nrules:\\n  - {code: big, expression: 'amount > 5',"
        ...     " action: review, description: 'Amount {amount:,.2f} is over 5'}", {"amount": "number"})
        >>> rs.describe("big", {"amount": 5000.0})
        'Amount 5,000.00 is over 5'
        """
        return self._template(code).fill(values)

    def _template(self, code: str) -> Template:
        template = self.rule(code).template
        assert template is not None, "a rule set's descriptions are checked by load_ruleset"
        return template

    def with_rule(self, rule: Rule, names: Mapping[str, Kind]) -> RuleSet:
        """A new version with ``rule`` added or replacing the rule of the same code."""
        rules = [r for r in self.rules if r.code != rule.code]
        position = next((i for i, r in enumerate(self.rules) if r.code == rule.code), len(rules))
        rules.insert(position, rule)
        return load_ruleset(_dump(self.version + 1, rules, self.lists, self.description), names)

    def with_flags(
        self, code: str, names: Mapping[str, Kind], *, enabled: bool | None = None, shadow: bool | None = None
    ) -> RuleSet:
        """A new version with ``enabled``/``shadow`` of one rule changed."""
        rule = self.rule(code)
        changed = replace(
            rule,
            enabled=rule.enabled if enabled is None else enabled,
            shadow=rule.shadow if shadow is None else shadow,
        )
        return self.with_rule(changed, names)

    def to_yaml(self) -> str:
        return _dump(self.version, list(self.rules), self.lists, self.description)


def _dump(version: int, rules: list[Rule], lists: Mapping[str, ListDeclaration], description: str) -> str:
    document: dict[str, Any] = {"version": version}
    if description:
        document["description"] = description
    if lists:
        document["lists"] = {n: {"kind": d.kind, "values": list(d.values)} for n, d in lists.items()}
    document["rules"] = [r.as_dict() for r in rules]
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)


def _yaml_error(exc: yaml.YAMLError) -> RuleError:
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc)
    column = mark.column + 1 if mark is not None else None
    return RuleError("<rule set>", f"not valid YAML{where}: {problem}", column)


def _with_key(error: RuleError, key: str) -> RuleError:
    """``error`` (raised by the expression or description compiler) marked with the rule's key."""
    error.detail = replace(error.detail, key=key)
    return error


def _check_lists(raw: object, errors: list[RuleError]) -> dict[str, ListDeclaration]:
    """The declared lists; a problem with one is added to ``errors`` and the others still load."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors.append(
            RuleError("<rule set>", "'lists' must map list names to {kind: ..., values: [...]}", key="lists")
        )
        return {}
    lists = {}
    for name, body in raw.items():
        if not isinstance(name, str) or not _CODE.match(name):
            errors.append(
                RuleError(str(name), "list names are lower_snake_case, e.g. blocked_devices", key="lists")
            )
        elif not isinstance(body, dict) or not isinstance(body.get("kind"), str):
            errors.append(
                RuleError(
                    name,
                    "a list needs a kind naming the column it is for, e.g. {kind: device_id}",
                    key="kind",
                )
            )
        elif not isinstance(body.get("values") or [], list):
            errors.append(RuleError(name, "a list's values must be a YAML list of strings", key="values"))
        else:
            lists[name] = ListDeclaration(body["kind"], tuple(str(v) for v in body.get("values") or []))
    return lists


def _check_rule(
    raw: object,
    index: int,
    names: Mapping[str, Kind],
    lists: Mapping[str, ListDeclaration],
    attributes: AttributeTypes,
) -> Rule | list[RuleError]:
    """The rule, or every problem found in it: each key is checked on its own, so one rule with a bad
    action and a bad weight says both."""
    if not isinstance(raw, dict):
        return [RuleError(f"#{index + 1}", "each rule is a mapping with code, expression, action, ...")]
    errors: list[RuleError] = []
    code = raw.get("code")
    if not isinstance(code, str) or not _CODE.match(code):
        errors.append(
            RuleError(
                str(code or f"#{index + 1}"), "code must be lower_snake_case, 1-64 characters", key="code"
            )
        )
        code = str(code or f"#{index + 1}")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        errors.append(RuleError(code, f"unknown keys {sorted(unknown)}; allowed: {sorted(_RULE_KEYS)}"))
    expression = raw.get("expression")
    compiled = None
    if not isinstance(expression, str):
        problem = 'expression is required and must be text, e.g. "amount > 10000"'
        errors.append(RuleError(code, problem, key="expression"))
    else:
        try:
            compiled = compile_expression(expression, names, rule=code, attributes=attributes)
        except RuleError as exc:
            errors.append(_with_key(exc, "expression"))
    action = raw.get("action")
    if action not in ACTIONS:
        errors.append(RuleError(code, f"action {action!r} is not one of {', '.join(ACTIONS)}", key="action"))
    weight = raw.get("weight", 0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 100:
        problem = f"weight {weight!r} must be a number of score points from 0 to 100"
        errors.append(RuleError(code, problem, key="weight"))
    for flag in ("enabled", "shadow"):
        if not isinstance(raw.get(flag, True), bool):
            errors.append(RuleError(code, f"{flag} must be true or false", key=flag))
    description = raw.get("description", code)
    template = None
    if not isinstance(description, str):
        errors.append(RuleError(code, "description must be text", key="description"))
    else:
        try:
            template = compile_template(description, names, rule=code)
        except RuleError as exc:
            errors.append(_with_key(exc, "description"))
    undeclared = sorted(compiled.lists - set(lists)) if compiled is not None else []
    if undeclared:
        problem = f"list {undeclared[0]!r} is not declared under 'lists:' in this rule set"
        errors.append(RuleError(code, problem, key="expression"))
    if errors or compiled is None or template is None:
        return errors
    return Rule(
        code=code,
        description=str(description),
        expression=compiled.text,
        action=str(action),
        weight=float(weight),
        enabled=raw.get("enabled", True),
        shadow=raw.get("shadow", False),
        compiled=compiled,
        template=template,
    )


def ruleset_errors(text: str, names: Mapping[str, Kind]) -> list[RuleError]:
    """Every problem of a YAML rule set, in the order of the file; empty when it loads. A rule set
    that is not YAML, or not a mapping, has that one problem.

    >>> rules = ("version: 0\\nrules:\\n  - {code: big, expression: 'amount > 5', action: stop}\\n"
    ...     "  - {code: small, expression: 'amount >> 5', action: review}")
    >>> for problem in ruleset_errors(rules, {"amount": "number"}):
    ...     print(problem.detail.key, "|", problem)
    version | rule '<rule set>': version 0 must be a whole number >= 1
    action | rule 'big': action 'stop' is not one of tag, review, challenge, decline, allow
    expression | rule 'small' at column 8: only + - * / are allowed as arithmetic
    """
    return _parse(text, names)[1]


def _parse(text: str, names: Mapping[str, Kind]) -> tuple[RuleSet | None, list[RuleError]]:
    """The rule set and no problem, or None and every problem found."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return None, [_yaml_error(exc)]
    if not isinstance(document, dict):
        return None, [
            RuleError("<rule set>", "a rule set is a YAML mapping with version, rules and optional lists")
        ]
    errors: list[RuleError] = []
    unknown = set(document) - {"version", "description", "lists", "rules"}
    if unknown:
        errors.append(RuleError("<rule set>", f"unknown top-level keys {sorted(unknown)}"))
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        errors.append(
            RuleError("<rule set>", f"version {version!r} must be a whole number >= 1", key="version")
        )
    lists = _check_lists(document.get("lists"), errors)
    raw_rules = document.get("rules")
    if not isinstance(raw_rules, list):
        errors.append(RuleError("<rule set>", "'rules' must be a YAML list of rules", key="rules"))
        raw_rules = []
    rules: list[Rule] = []
    attributes = AttributeTypes()
    for index, raw in enumerate(raw_rules):
        checked = _check_rule(raw, index, names, lists, attributes)
        if isinstance(checked, Rule):
            rules.append(checked)
        else:
            errors.extend(checked)
    codes: list[str] = [
        raw["code"] for raw in raw_rules if isinstance(raw, dict) and isinstance(raw.get("code"), str)
    ]
    for code in dict.fromkeys(c for c in codes if codes.count(c) > 1):
        errors.append(RuleError(code, "two rules have this code; codes must be unique", key="code"))
    if errors:
        return None, errors
    assert isinstance(version, int)
    ruleset = RuleSet(
        version=version,
        rules=tuple(rules),
        lists=lists,
        description=str(document.get("description", "")),
        attribute_types=dict(attributes.kinds),
    )
    return ruleset, []


def load_ruleset(text: str, names: Mapping[str, Kind]) -> RuleSet:
    """Parse and validate a YAML rule set. A problem raises :class:`RuleError`; several raise one
    :class:`RuleSetError` that names them all (`ruleset_errors` lists them).

    >>> load_ruleset("version: 1\\nrules:\\n  - {code: big, expression: 'amount >> 5', action: review}",
    ...              {"amount": "number"})
    Traceback (most recent call last):
    ...
    fraudstream.errors.RuleError: rule 'big' at column 8: only + - * / are allowed as arithmetic
    """
    ruleset, errors = _parse(text, names)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise RuleSetError(errors)
    assert ruleset is not None
    return ruleset
