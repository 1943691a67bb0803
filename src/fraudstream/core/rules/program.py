"""A rule set's expressions as one stack program, run over a batch in a single compiled call.

Evaluating rule by rule walks each expression's tree of NumPy calls: a dozen rules cost ~100 µs
of Python whatever the batch size, a third of scoring one event. Here every enabled rule's
``Expression.steps`` are linked into one list of operations, once per rule set, and a numba kernel
runs them over whole columns: numbers from the feature columns, booleans as 0.0 / 1.0, and each
rule's mask stored into its row of the hits. Parts over text (list membership, string comparisons)
still run as their NumPy / Arrow nodes, before the program, and enter it as ready columns.

Every operation computes what the tree's NumPy call computes, in float64 as it does: a comparison
with NaN is false (``!=`` included), a division with no finite result is NaN, ``min`` / ``max``
of a NaN are NaN. ``tests/unit/test_rules.py`` checks the two against each other on random
expressions and values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numba import njit

from fraudstream.core.rules.language import ColumnSource, Expression, ListSource, evaluate_flag

__all__ = ["Program"]

#: The steps of ``Expression.steps`` by name; a step's code in the kernel is its place here.
_STEPS: Final = (
    "number", "const", "flag",  # push a column
    "negate", "abs", "isnan", "not",  # replace the top column
    "add", "subtract", "multiply", "divide", "min", "max", "coalesce",  # two columns to one
    "lt", "lte", "gt", "gte", "eq", "noteq", "and", "or",
    "store",  # pop the top column into a rule's hits
)  # fmt: skip
(
    _NUMBER, _CONST, _FLAG,
    _NEGATE, _ABS, _ISNAN, _NOT,
    _ADD, _SUBTRACT, _MULTIPLY, _DIVIDE, _MIN, _MAX, _COALESCE,
    _LT, _LTE, _GT, _GTE, _EQ, _NOTEQ, _AND, _OR,
    _STORE,
) = range(len(_STEPS))  # fmt: skip
_CODES: Final = {name: code for code, name in enumerate(_STEPS)}


class Program:
    """The expressions of a rule set, in order, as one program whose run gives every rule's hits.

    >>> from fraudstream.core.rules.language import compile_expression
    >>> names = {"amount": "number", "user.count_30s": "number"}
    >>> program = Program([compile_expression(t, names, rule="r") for t in
    ...     ("amount > 100", "user.count_30s >= 2 or amount / 0 > 1")])
    >>> class Cols:
    ...     def __len__(self): return 3
    ...     def column(self, name): return {"amount": np.array([50.0, 500.0, np.nan]),
    ...         "user.count_30s": np.array([3.0, 1.0, np.nan])}[name]
    >>> program.run(Cols(), None).tolist()
    [[False, True, False], [True, False, False]]
    """

    def __init__(self, expressions: Sequence[Expression]) -> None:
        self.size = len(expressions)
        self.numbers: list[str] = []  # feature or field names, read once per run
        self.flags: list[Any] = []  # boolean nodes over text, run before the program
        codes: list[int] = []
        indexes: list[int] = []
        constants: list[float] = []
        depth = deepest = 0
        for rule, expression in enumerate(expressions):
            for name, argument in (*expression.steps, ("store", rule)):
                code = _CODES[name]
                index, constant = 0, 0.0
                if name == "number":
                    if argument not in self.numbers:
                        self.numbers.append(argument)
                    index = self.numbers.index(argument)
                elif name == "flag":  # each text part is a node of its own: one column each
                    self.flags.append(argument)
                    index = len(self.flags) - 1
                elif name == "const":
                    constant = float(argument)
                elif name == "store":
                    index = int(argument)
                codes.append(code)
                indexes.append(index)
                constants.append(constant)
                depth += 1 if code <= _FLAG else 0 if code <= _NOT else -1
                deepest = max(deepest, depth)
            if depth != 0:
                raise AssertionError(f"rule {rule}'s steps leave {depth} columns on the stack")
        self._codes = np.array(codes, dtype=np.int64)
        self._indexes = np.array(indexes, dtype=np.int64)
        self._constants = np.array(constants, dtype=np.float64)
        self._depth = max(deepest, 1)

    def run(self, columns: ColumnSource, lists: ListSource | None) -> npt.NDArray[np.bool_]:
        """Every expression's mask over the batch, one row per expression."""
        n = len(columns)
        numbers = np.empty((len(self.numbers), n), dtype=np.float64)
        for row, name in enumerate(self.numbers):
            numbers[row] = np.asarray(columns.column(name), dtype=np.float64)
        flags = np.empty((len(self.flags), n), dtype=np.bool_)
        for row, node in enumerate(self.flags):
            flags[row] = evaluate_flag(node, columns, lists, n)
        hits = np.zeros((self.size, n), dtype=np.bool_)
        _run(self._codes, self._indexes, self._constants, numbers, flags, self._depth, hits)
        return hits


@njit(cache=True, nogil=True, error_model="numpy")
def _run(codes, indexes, constants, numbers, flags, depth, hits):  # type: ignore[no-untyped-def]
    """Run the program: each operation over every row, on a stack of whole columns.

    One loop per operation, the choice made outside it, so that the compiler vectorizes each.
    """
    n = hits.shape[1]
    stack = np.empty((depth, n), dtype=np.float64)
    top = -1
    nan = np.nan
    for k in range(codes.shape[0]):
        code = codes[k]
        if code <= _FLAG:
            top += 1
            x = stack[top]
            if code == _NUMBER:
                x[:] = numbers[indexes[k]]
            elif code == _CONST:
                x[:] = constants[k]
            else:  # _FLAG
                flag = flags[indexes[k]]
                for i in range(n):
                    x[i] = 1.0 if flag[i] else 0.0
            continue
        if code == _STORE:
            hit = hits[indexes[k]]
            x = stack[top]
            for i in range(n):
                hit[i] = x[i] != 0.0
            top -= 1
            continue
        x = stack[top]
        if code <= _NOT:
            if code == _NEGATE:
                for i in range(n):
                    x[i] = -1.0 * x[i]
            elif code == _ABS:
                for i in range(n):
                    x[i] = abs(x[i])
            elif code == _ISNAN:
                for i in range(n):
                    x[i] = 1.0 if math.isnan(x[i]) else 0.0
            else:  # _NOT
                for i in range(n):
                    x[i] = 1.0 if x[i] == 0.0 else 0.0
            continue
        top -= 1
        a = stack[top]  # the result replaces the left operand; x is the right one
        if code == _ADD:
            for i in range(n):
                a[i] = a[i] + x[i]
        elif code == _SUBTRACT:
            for i in range(n):
                a[i] = a[i] - x[i]
        elif code == _MULTIPLY:
            for i in range(n):
                a[i] = a[i] * x[i]
        elif code == _DIVIDE:
            for i in range(n):
                q = a[i] / x[i]
                a[i] = q if math.isfinite(q) else nan
        elif code == _MIN:
            for i in range(n):
                a[i] = nan if math.isnan(a[i]) or math.isnan(x[i]) else min(a[i], x[i])
        elif code == _MAX:
            for i in range(n):
                a[i] = nan if math.isnan(a[i]) or math.isnan(x[i]) else max(a[i], x[i])
        elif code == _COALESCE:
            for i in range(n):
                a[i] = x[i] if math.isnan(a[i]) else a[i]
        elif code == _LT:
            for i in range(n):
                a[i] = 1.0 if a[i] < x[i] else 0.0
        elif code == _LTE:
            for i in range(n):
                a[i] = 1.0 if a[i] <= x[i] else 0.0
        elif code == _GT:
            for i in range(n):
                a[i] = 1.0 if a[i] > x[i] else 0.0
        elif code == _GTE:
            for i in range(n):
                a[i] = 1.0 if a[i] >= x[i] else 0.0
        elif code == _EQ:
            for i in range(n):
                a[i] = 1.0 if a[i] == x[i] else 0.0
        elif code == _NOTEQ:
            for i in range(n):
                a[i] = 1.0 if a[i] != x[i] and not (math.isnan(a[i]) or math.isnan(x[i])) else 0.0
        elif code == _AND:
            for i in range(n):
                a[i] = 1.0 if a[i] != 0.0 and x[i] != 0.0 else 0.0
        else:  # _OR
            for i in range(n):
                a[i] = 1.0 if a[i] != 0.0 or x[i] != 0.0 else 0.0
