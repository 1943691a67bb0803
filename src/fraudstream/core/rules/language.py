"""The rule expression language: parsed to an allow-listed AST, evaluated vectorized over a batch.

Expressions read like Python comparisons over feature names and transaction fields::

    amount > 10000
    user.count_30s > 5 and geo.speed_kmh > 900
    device_id in list('blocked_devices') or country in ('KP', 'IR')
    abs(user.amount_zscore_30d) > 4 and not is_missing(device_id)
    attributes.channel == 'web' and attributes.loyalty_points > 100

``attributes.NAME`` reads a field the client sent beyond the schema (kept in the batch's
``attributes``). Its type is fixed by its first use in the rule set: compared with text it is text,
with a number (or used in arithmetic) a number; using it as the other type later is an error at
that position. A row without the field, or with a value of another type, reads it as missing, and
``is_missing(attributes.NAME)`` says so.

Nothing is ever ``eval``-ed: the text is parsed with :func:`ast.parse`, every node is checked against
an allow-list, and the tree is compiled into small NumPy / Arrow operations over whole columns.
Numeric and boolean parts are also compiled to *steps* of a stack program (``Expression.steps``),
which ``rules.program`` runs for a whole rule set in one compiled call.
A comparison with a missing value (NaN or null) is false, so ``not (x > 5)`` is true when x is
missing; ``is_missing(x)`` and ``coalesce(x, default)`` say what to do about missing values.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from fraudstream.errors import RuleError

__all__ = [
    "ATTRIBUTES",
    "AttributeTypes",
    "ColumnSource",
    "Expression",
    "Kind",
    "ListSource",
    "Step",
    "compile_expression",
    "evaluate_flag",
]

Kind = Literal["number", "string"]
#: "attribute": ``attributes.NAME`` before its use fixes its type.
_Type = Literal["number", "string", "bool", "values", "list", "attribute"]
#: The prefix of the names of a transaction's extra fields in rules: ``attributes.channel``.
ATTRIBUTES: Final = "attributes"


@dataclass
class AttributeTypes:
    """The type of each ``attributes.NAME`` a rule set reads, fixed at its first typed use (shared
    by the rule set's expressions as they compile), and the rule that fixed it."""

    kinds: dict[str, Kind] = field(default_factory=dict)
    fixed_by: dict[str, str] = field(default_factory=dict)


#: One step of a rule program: an operation name and its argument (a name, a constant, or a boolean
#: node evaluated beforehand; see ``rules.program``). Each expression's steps leave its value on a
#: stack of whole columns, booleans as 0.0 / 1.0.
Step = tuple[str, Any]


class ColumnSource(Protocol):
    """Columns by name: numbers as float arrays (NaN = missing), strings as Arrow arrays (null)."""

    def __len__(self) -> int: ...

    def column(self, name: str) -> npt.NDArray[np.floating[Any]] | pa.Array: ...


class ListSource(Protocol):
    """Named lists by name, as Arrow arrays of strings."""

    def get(self, name: str) -> pa.Array: ...

    def is_in(self, name: str, column: pa.Array) -> pa.BooleanArray:
        """Whether each row's value is in the list (for a row at its own time: items can expire)."""
        ...


@dataclass(frozen=True)
class _Context:
    columns: ColumnSource
    lists: ListSource
    n: int
    #: Numeric columns already read as float64, by name: each read once per evaluation.
    numbers: dict[str, npt.NDArray[np.float64]]

    def number(self, name: str) -> npt.NDArray[np.float64]:
        found = self.numbers.get(name)
        if found is None:
            found = self.numbers[name] = np.asarray(self.columns.column(name), dtype=np.float64)
        return found


@dataclass(frozen=True)
class _Node:
    type: _Type
    run: Callable[[_Context], Any]
    #: The same value as program steps, for numbers and booleans; None for text, lists, and booleans
    #: computed from text (those run as ``run`` and enter a program as a ready column).
    steps: tuple[Step, ...] | None = None
    #: A named list's name (type "list"), looked up through ``ListSource.is_in``.
    name: str | None = None
    #: For an ``attribute`` node, the attribute's name.
    attribute: str = ""

    def as_steps(self) -> tuple[Step, ...]:
        """Steps for this node: its own, or for a boolean node without any, its ready column."""
        if self.steps is not None:
            return self.steps
        assert self.type == "bool", f"a {self.type} has no program steps"
        return (("flag", self),)


_FUNCTIONS = ("abs", "min", "max", "is_missing", "coalesce", "list")


class Expression:
    """A compiled expression: ``evaluate(columns, lists)`` gives a boolean mask over the batch.

    >>> import numpy as np
    >>> class Cols:
    ...     def __init__(self, **c): self.c = c
    ...     def __len__(self): return 3
    ...     def column(self, name): return self.c[name]
    >>> e = compile_expression("amount > 100 and user.count_30s >= 2", {"amount": "number",
    ...     "user.count_30s": "number"}, rule="demo")
    >>> e.evaluate(Cols(amount=np.array([50.0, 500.0, 500.0]),
    ...     **{"user.count_30s": np.array([3.0, 1.0, np.nan])}), None).tolist()
    [False, False, False]
    """

    def __init__(
        self,
        text: str,
        node: _Node,
        names: frozenset[str],
        lists: frozenset[str],
        attributes: frozenset[str] = frozenset(),
    ) -> None:
        self.text = text
        self._node = node
        self.names = names
        self.lists = lists
        #: The names of the ``attributes.NAME`` it reads (their types: the rule set's `AttributeTypes`).
        self.attributes = attributes

    @property
    def steps(self) -> tuple[Step, ...]:
        """The expression as a stack program leaving its mask (0.0 / 1.0) on top (``rules.program``)."""
        return self._node.as_steps()

    def evaluate(self, columns: ColumnSource, lists: ListSource | None) -> npt.NDArray[np.bool_]:
        """The mask of rows where the expression holds (a rule set runs its rules as one
        ``rules.program`` instead)."""
        n = len(columns)
        mask = evaluate_flag(self._node, columns, lists, n)
        return mask if mask.shape == (n,) else np.broadcast_to(mask, (n,)).copy()


def evaluate_flag(
    node: _Node, columns: ColumnSource, lists: ListSource | None, n: int
) -> npt.NDArray[np.bool_] | np.bool_:
    """A boolean node's mask over the batch (or one value for all rows): what a program reads for
    the parts of an expression over text."""
    context = _Context(columns, lists if lists is not None else _NoLists(), n, {})
    return _as_bool(node.run(context))


class _NoLists:
    def get(self, name: str) -> pa.Array:
        return pa.array([], type=pa.string())

    def is_in(self, name: str, column: pa.Array) -> pa.BooleanArray:
        return pc.is_in(column, value_set=self.get(name))


def _as_bool(value: Any) -> npt.NDArray[np.bool_]:
    if isinstance(value, pa.Array | pa.ChunkedArray):
        return np.asarray(value.fill_null(False).to_numpy(zero_copy_only=False), dtype=np.bool_)
    return np.asarray(value, dtype=np.bool_)


class _Compiler:
    def __init__(self, text: str, names: Mapping[str, Kind], rule: str, attributes: AttributeTypes) -> None:
        self.text = text
        self.names = names
        self.rule = rule
        self.used: set[str] = set()
        self.lists: set[str] = set()
        self.attribute_types = attributes
        self.attributes: set[str] = set()

    def fail(self, node: ast.AST | None, reason: str, *, after: ast.AST | None = None) -> RuleError:
        """The error at ``node``'s start, or, given the operand ``after``, at the operator that
        follows it (``amount >> 5`` points at ``>>``, not at ``amount``)."""
        position = getattr(node, "col_offset", None)
        end = getattr(after, "end_col_offset", None)
        if end is not None and getattr(after, "end_lineno", None) == 1 and "\n" not in self.text:
            rest = self.text[end:]
            position = end + len(rest) - len(rest.lstrip(" )"))  # past the operand's closing parentheses
        return RuleError(self.rule, reason, None if position is None else position + 1, self.text)

    def compile(self, node: ast.AST) -> _Node:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise self.fail(node, f"{_describe(node)} is not allowed in a rule expression")
        result: _Node = method(node)
        return result

    def expect(self, node: ast.AST, *types: _Type) -> _Node:
        compiled = self.compile(node)
        if compiled.type == "attribute":
            if "number" in types or "string" in types:
                return self.typed(node, compiled, "number" if "number" in types else "string")
            raise self.fail(
                node,
                f"{ATTRIBUTES}.{compiled.attribute} is a value, not a condition: compare it, e.g. "
                f"{ATTRIBUTES}.{compiled.attribute} == 'web' or {ATTRIBUTES}.{compiled.attribute} > 100",
            )
        if compiled.type not in types:
            wanted = " or ".join(types)
            raise self.fail(node, f"expected a {wanted} here, found a {compiled.type}")
        return compiled

    def _Expression(self, node: ast.Expression) -> _Node:
        return self.expect(node.body, "bool")

    def _Constant(self, node: ast.Constant) -> _Node:
        value = node.value
        if isinstance(value, bool):
            return _Node("bool", lambda ctx: np.bool_(value), (("const", 1.0 if value else 0.0),))
        if isinstance(value, int | float):
            number = float(value)
            return _Node("number", lambda ctx: number, (("const", number),))
        if isinstance(value, str):
            return _Node("string", lambda ctx: value)
        raise self.fail(node, f"the literal {value!r} is not allowed (numbers, 'strings', True, False)")

    def _name(self, node: ast.AST, name: str) -> _Node:
        kind = self.names.get(name)
        if kind is None:
            close = difflib.get_close_matches(name, list(self.names), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise self.fail(node, f"unknown name {name!r}{hint}")
        self.used.add(name)
        if kind == "number":
            return _Node("number", lambda ctx: ctx.number(name), (("number", name),))
        return _Node("string", lambda ctx: ctx.columns.column(name))

    def _Name(self, node: ast.Name) -> _Node:
        return self._name(node, node.id)

    def _Attribute(self, node: ast.Attribute) -> _Node:
        if not isinstance(node.value, ast.Name):
            raise self.fail(node, "only feature names of the form entity.feature are allowed")
        if node.value.id == ATTRIBUTES:
            name = node.attr
            self.attributes.add(name)
            return _Node("attribute", lambda ctx: None, attribute=name)
        return self._name(node, f"{node.value.id}.{node.attr}")

    def typed(self, node: ast.AST, compiled: _Node, kind: Kind) -> _Node:
        """An ``attributes.NAME`` used as ``kind``: its type fixed here if this is its first typed use
        in the rule set, else checked against the type it has."""
        name = compiled.attribute
        known = self.attribute_types.kinds.get(name)
        if known is None:
            self.attribute_types.kinds[name] = kind
            self.attribute_types.fixed_by[name] = self.rule
        elif known != kind:
            where = self.attribute_types.fixed_by.get(name, self.rule)
            raise self.fail(
                node,
                f"{ATTRIBUTES}.{name} is used as {_KIND_WORDS[kind]} here but as {_KIND_WORDS[known]} in "
                f"rule {where!r}; an attribute has one type in a rule set, fixed by its first use",
            )
        column = f"{ATTRIBUTES}.{name}"
        if kind == "number":
            return _Node("number", lambda ctx: ctx.number(column), (("number", column),))
        return _Node("string", lambda ctx: ctx.columns.column(column))

    def untyped_missing(self, compiled: _Node) -> _Node:
        """``is_missing(attributes.NAME)`` where no use has fixed its type yet: whether the row lacks
        the field (or holds null); once a later rule fixes the type, a value of another type is
        missing too (the rule set reads the attribute with its type, see ``RuleSet.attributes``)."""
        column = f"{ATTRIBUTES}.{compiled.attribute}"

        def run(ctx: _Context) -> Any:
            values = ctx.columns.column(column)
            if isinstance(values, pa.Array | pa.ChunkedArray):
                return _as_bool(pc.is_null(values))
            return np.isnan(np.asarray(values, dtype=np.float64))

        return _Node("bool", run)

    def _BoolOp(self, node: ast.BoolOp) -> _Node:
        parts = [self.expect(v, "bool") for v in node.values]
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        step: Step = ("and" if isinstance(node.op, ast.And) else "or", None)

        def run(ctx: _Context) -> Any:
            result = _as_bool(parts[0].run(ctx))
            for part in parts[1:]:
                result = combine(result, _as_bool(part.run(ctx)))
            return result

        steps = parts[0].as_steps() + tuple(s for part in parts[1:] for s in (*part.as_steps(), step))
        return _Node("bool", run, steps)

    def _UnaryOp(self, node: ast.UnaryOp) -> _Node:
        if isinstance(node.op, ast.Not):
            inner = self.expect(node.operand, "bool")
            return _Node(
                "bool",
                lambda ctx: np.logical_not(_as_bool(inner.run(ctx))),
                (*inner.as_steps(), ("not", None)),
            )
        if isinstance(node.op, ast.USub | ast.UAdd):
            operand = self.expect(node.operand, "number")
            sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
            steps = operand.as_steps() + ((("negate", None),) if sign < 0 else ())
            return _Node("number", lambda ctx: sign * operand.run(ctx), steps)
        raise self.fail(node, "only 'not', '-' and '+' are allowed as unary operators")

    def _BinOp(self, node: ast.BinOp) -> _Node:
        ops: dict[type, tuple[Callable[[Any, Any], Any], str]] = {
            ast.Add: (np.add, "add"),
            ast.Sub: (np.subtract, "subtract"),
            ast.Mult: (np.multiply, "multiply"),
            ast.Div: (_divide, "divide"),
        }
        found = ops.get(type(node.op))
        if found is None:
            raise self.fail(node, "only + - * / are allowed as arithmetic", after=node.left)
        op, name = found
        left = self.expect(node.left, "number")
        right = self.expect(node.right, "number")
        steps = (*left.as_steps(), *right.as_steps(), (name, None))
        return _Node("number", lambda ctx: op(left.run(ctx), right.run(ctx)), steps)

    def _Tuple(self, node: ast.Tuple | ast.List) -> _Node:
        values = []
        for element in node.elts:
            if not isinstance(element, ast.Constant) or isinstance(element.value, bool):
                raise self.fail(element, "a list in a rule holds only literal numbers or 'strings'")
            values.append(element.value)
        kinds = {isinstance(v, str) for v in values}
        if len(kinds) > 1:
            raise self.fail(node, "a list in a rule holds either numbers or strings, not both")
        frozen = tuple(values)
        return _Node("values", lambda ctx: frozen)

    _List = _Tuple

    def _Call(self, node: ast.Call) -> _Node:
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            raise self.fail(node, f"only the functions {', '.join(_FUNCTIONS)} may be called")
        if node.keywords:
            raise self.fail(node, "functions in rules take no keyword arguments")
        name = node.func.id
        args = node.args
        if name == "list":
            if len(args) != 1 or not isinstance(args[0], ast.Constant) or not isinstance(args[0].value, str):
                raise self.fail(
                    node, "list() takes the name of a declared list, e.g. list('blocked_devices')"
                )
            list_name = args[0].value
            self.lists.add(list_name)
            return _Node("list", lambda ctx: ctx.lists.get(list_name), name=list_name)
        if name == "is_missing":
            if len(args) != 1:
                raise self.fail(node, "is_missing() takes one name")
            inner = self.compile(args[0])
            if inner.type == "attribute":
                known = self.attribute_types.kinds.get(inner.attribute)
                if known is None:
                    return self.untyped_missing(inner)
                inner = self.typed(args[0], inner, known)
            if inner.type == "number":
                return _Node(
                    "bool", lambda ctx: np.isnan(inner.run(ctx)), (*inner.as_steps(), ("isnan", None))
                )
            if inner.type == "string":
                return _Node("bool", lambda ctx: _as_bool(pc.is_null(_arrow(inner.run(ctx), ctx.n))))
            raise self.fail(args[0], "is_missing() takes a field or feature name")
        if name == "abs":
            if len(args) != 1:
                raise self.fail(node, "abs() takes one number")
            inner = self.expect(args[0], "number")
            return _Node("number", lambda ctx: np.abs(inner.run(ctx)), (*inner.as_steps(), ("abs", None)))
        if name == "coalesce":
            if len(args) != 2:
                raise self.fail(node, "coalesce() takes a number and the default to use when it is missing")
            value, default = self.expect(args[0], "number"), self.expect(args[1], "number")
            steps = (*value.as_steps(), *default.as_steps(), ("coalesce", None))
            return _Node("number", lambda ctx: _coalesce(value.run(ctx), default.run(ctx)), steps)
        if len(args) < 2:
            raise self.fail(node, f"{name}() takes two or more numbers")
        parts = [self.expect(a, "number") for a in args]
        reduce = np.minimum if name == "min" else np.maximum

        def run(ctx: _Context) -> Any:
            result = parts[0].run(ctx)
            for part in parts[1:]:
                result = reduce(result, part.run(ctx))
            return result

        steps = parts[0].as_steps() + tuple(s for part in parts[1:] for s in (*part.as_steps(), (name, None)))
        return _Node("number", run, steps)

    def _Compare(self, node: ast.Compare) -> _Node:
        checks = []
        left_node = node.left
        for op, right_node in zip(node.ops, node.comparators):
            checks.append(self._comparison(node, op, left_node, right_node))
            left_node = right_node

        def run(ctx: _Context) -> Any:
            result = _as_bool(checks[0].run(ctx))
            for check in checks[1:]:
                result = np.logical_and(result, _as_bool(check.run(ctx)))
            return result

        steps = checks[0].as_steps() + tuple(s for c in checks[1:] for s in (*c.as_steps(), ("and", None)))
        return _Node("bool", run, steps)

    def _comparison(
        self, node: ast.Compare, op: ast.cmpop, left_node: ast.expr, right_node: ast.expr
    ) -> _Node:
        left = self.compile(left_node)
        if isinstance(op, ast.In | ast.NotIn):
            return self._membership(node, op, left, right_node)
        right = self.compile(right_node)
        if left.type == "attribute" and right.type == "attribute":
            raise self.fail(
                node,
                "compare an attribute with a literal, a field or a feature (that gives it its type), not "
                "with another attribute",
                after=left_node,
            )
        if left.type == "attribute" and right.type in ("number", "string"):
            left = self.typed(left_node, left, "number" if right.type == "number" else "string")
        if right.type == "attribute" and left.type in ("number", "string"):
            right = self.typed(right_node, right, "number" if left.type == "number" else "string")
        if left.type == "number" and right.type == "number":
            step: Step = (type(op).__name__.lower(), None)  # lt, lte, gt, gte, eq, noteq
            steps = (*left.as_steps(), *right.as_steps(), step)
            return _Node("bool", _numeric_compare(op, left, right), steps)
        if left.type == "string" and right.type == "string":
            if not isinstance(op, ast.Eq | ast.NotEq):
                raise self.fail(node, "text compares only with ==, != and in", after=left_node)
            return _Node("bool", _string_compare(op, left, right))
        raise self.fail(node, f"cannot compare a {left.type} with a {right.type}", after=left_node)

    def _membership(self, node: ast.Compare, op: ast.cmpop, left: _Node, right_node: ast.expr) -> _Node:
        right = self.compile(right_node)
        if right.type not in ("values", "list"):
            raise self.fail(right_node, "'in' needs a list of literals such as ('NG', 'RU') or list('name')")
        if left.type == "attribute":
            elements = getattr(right_node, "elts", None)
            numbers = bool(elements) and not isinstance(elements[0].value, str)  # type: ignore[index]
            left = self.typed(node, left, "number" if numbers else "string")
        negate = isinstance(op, ast.NotIn)
        if left.type == "string":

            def run_strings(ctx: _Context) -> Any:
                values = right.run(ctx)
                if not len(values) and not negate:  # an empty block list, the usual case: no lookup
                    return np.zeros(ctx.n, dtype=np.bool_)
                column = _arrow(left.run(ctx), ctx.n)
                if not len(values):
                    return _as_bool(pc.is_valid(column))
                if right.name is not None:  # a named list: its items can expire, by the row's time
                    found = ctx.lists.is_in(right.name, column)
                else:
                    found = pc.is_in(column, value_set=pa.array(list(values), type=pa.string()))
                if negate:
                    found = pc.invert(found)
                # A missing value is in no list and not outside one either.
                return _as_bool(pc.and_kleene(found, pc.is_valid(column)))

            return _Node("bool", run_strings)
        if left.type == "number" and right.type == "values":

            def run_numbers(ctx: _Context) -> Any:
                values = np.asarray(left.run(ctx), dtype=np.float64)
                found = np.isin(values, np.asarray(right.run(ctx), dtype=np.float64))
                return (~found if negate else found) & ~np.isnan(values)

            return _Node("bool", run_numbers)
        raise self.fail(node, f"cannot look up a {left.type} in a list of this kind")


_KIND_WORDS: Final = {"number": "a number", "string": "text"}


def _divide(a: Any, b: Any) -> Any:
    with np.errstate(divide="ignore", invalid="ignore"):
        result = np.divide(a, b)
    return np.where(np.isfinite(result), result, np.nan)


def _coalesce(value: Any, default: Any) -> Any:
    return np.where(np.isnan(value), default, value)


def _arrow(value: Any, n: int) -> pa.Array:
    if isinstance(value, str):
        return pa.array([value] * n, type=pa.string())
    if isinstance(value, pa.ChunkedArray):
        return value.combine_chunks()
    return value


def _numeric_compare(op: ast.cmpop, left: _Node, right: _Node) -> Callable[[_Context], Any]:
    ops: dict[type, Callable[[Any, Any], Any]] = {
        ast.Lt: np.less,
        ast.LtE: np.less_equal,
        ast.Gt: np.greater,
        ast.GtE: np.greater_equal,
        ast.Eq: np.equal,
        ast.NotEq: np.not_equal,
    }
    compare = ops[type(op)]
    # NaN != x is true in IEEE arithmetic; a missing value compares false here, always. Every other
    # comparison with NaN is already false.
    mask_missing = isinstance(op, ast.NotEq)

    def run(ctx: _Context) -> Any:
        a, b = left.run(ctx), right.run(ctx)
        result = compare(a, b)  # comparisons with NaN give False without a warning
        if mask_missing:
            return np.logical_and(result, ~(np.isnan(a) | np.isnan(b)))
        return result

    return run


def _string_compare(op: ast.cmpop, left: _Node, right: _Node) -> Callable[[_Context], Any]:
    compare = pc.equal if isinstance(op, ast.Eq) else pc.not_equal

    def run(ctx: _Context) -> Any:
        a, b = left.run(ctx), right.run(ctx)
        if isinstance(a, str) and isinstance(b, str):
            return np.bool_(compare(pa.scalar(a), pa.scalar(b)).as_py())
        return _as_bool(compare(_arrow(a, ctx.n), b if isinstance(b, str) else _arrow(b, ctx.n)))

    return run


def _describe(node: ast.AST) -> str:
    names = {
        "Subscript": "indexing with [...]",
        "Lambda": "a lambda",
        "ListComp": "a comprehension",
        "GeneratorExp": "a generator",
        "SetComp": "a comprehension",
        "DictComp": "a comprehension",
        "Dict": "a dict",
        "Set": "a set",
        "IfExp": "an if-expression",
        "NamedExpr": "an assignment",
        "Starred": "unpacking with *",
        "JoinedStr": "an f-string",
        "Await": "await",
        "Yield": "yield",
    }
    return names.get(type(node).__name__, f"the construct {type(node).__name__}")


#: How deeply an expression may nest (operators, calls, parentheses): far beyond any rule a person
#: writes, well within what the compiler's and evaluator's recursion can take.
MAX_DEPTH: Final = 60


def _depth(tree: ast.AST) -> int:
    """The depth of the syntax tree, walked without recursion (the point is to refuse deep trees).

    >>> _depth(ast.parse("amount > 1", mode="eval")), _depth(ast.parse("-" * 100 + "1", mode="eval"))
    (4, 102)
    """
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(node))
    return deepest


def compile_expression(
    text: str, names: Mapping[str, Kind], *, rule: str, attributes: AttributeTypes | None = None
) -> Expression:
    """Parse and type-check ``text``; raise :class:`RuleError` with the 1-based column on failure.

    ``attributes``: the types of the rule set's ``attributes.NAME`` so far, which this expression's
    first uses add to (a rule set passes one to all its expressions).

    >>> types = AttributeTypes()
    >>> _ = compile_expression("attributes.points > 100", {}, rule="a", attributes=types)
    >>> types.kinds
    {'points': 'number'}
    >>> try:
    ...     compile_expression("amount > 5 or attributes.points == 'gold'", {"amount": "number"}, rule="b",
    ...         attributes=types)
    ... except RuleError as error:
    ...     print(error.position, error.reason)
    15 attributes.points is used as text here but as a number in rule 'a'; an attribute has one type \
in a rule set, fixed by its first use
    """
    if not text or not text.strip():
        raise RuleError(rule, "the expression is empty", None, text)
    if len(text) > 2000:
        raise RuleError(rule, "the expression is longer than 2000 characters", None, text)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        reason = exc.msg or "invalid syntax"
        raise RuleError(rule, f"syntax error: {reason}", exc.offset, text) from None
    except (RecursionError, MemoryError):
        raise RuleError(rule, f"the expression nests deeper than {MAX_DEPTH} levels", None, text) from None
    if _depth(tree) > MAX_DEPTH:
        raise RuleError(rule, f"the expression nests deeper than {MAX_DEPTH} levels", None, text)
    compiler = _Compiler(
        text.strip(), names, rule, attributes if attributes is not None else AttributeTypes()
    )
    node = compiler.compile(tree)
    return Expression(
        text.strip(),
        node,
        frozenset(compiler.used),
        frozenset(compiler.lists),
        frozenset(compiler.attributes),
    )
