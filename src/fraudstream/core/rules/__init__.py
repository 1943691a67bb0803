"""Rules: a safe expression language, versioned YAML rule sets and named allow/block lists."""

from fraudstream.core.rules.language import ColumnSource, Expression, Kind, ListSource, compile_expression
from fraudstream.core.rules.lists import ListStore
from fraudstream.core.rules.ruleset import (
    ACTIONS,
    ListDeclaration,
    Rule,
    RuleHits,
    RuleSet,
    load_ruleset,
    ruleset_errors,
)

__all__ = [
    "ACTIONS",
    "ColumnSource",
    "Expression",
    "Kind",
    "ListDeclaration",
    "ListSource",
    "ListStore",
    "Rule",
    "RuleHits",
    "RuleSet",
    "compile_expression",
    "load_ruleset",
    "ruleset_errors",
]
