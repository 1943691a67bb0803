"""Compiled (numba) evaluation of a LightGBM forest: raw scores and path contributions per row.

A booster is compiled once into flat node arrays (``compile_forest``); the kernels then walk every
tree for every row in one compiled loop. Numerical splits follow LightGBM's ``NumericalDecision``
exactly (NaN and zero-as-missing, default direction), and leaf values are summed in tree order from
0.0 as LightGBM does, so ``raw_score`` matches ``Booster.predict(raw_score=True)``.

``path_contributions`` are Saabas-style path attributions: along a row's decision path, the change
of the node's expected value from parent to child is credited to the parent's split feature. A
node's expected value is the mean of the leaf values below it weighted by training rows
(``leaf_count``), the same weighting LightGBM's TreeSHAP uses, so the forest's ``expected_value``
is the bias column of ``pred_contrib`` and each row's contributions add up to
``raw_score - expected_value`` like SHAP values do. Unlike SHAP, a feature gets credit only where
it splits on the row's own path, which costs one tree walk instead of TreeSHAP's polynomial work.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numba import njit

from fraudstream.errors import ModelError

__all__ = ["CompiledForest", "compile_forest"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

#: LightGBM's kZeroThreshold (a float constant): values this close to 0 are 0 to the predictor.
_ZERO: Final = float(np.float32(1e-35))
_MISSING_NONE: Final = 0
_MISSING_ZERO: Final = 1
_MISSING_NAN: Final = 2
_LEAF: Final = -1

I32 = npt.NDArray[np.int32]
Flags = npt.NDArray[np.bool_]
#: What the kernels walk, LightGBM's layout: per split (feature, threshold, left, right, nan_left,
#: zero_left, expected value), a child < 0 being leaf ~child; per tree its root; per leaf its value.
_Nodes = tuple[I32, I32, F64, I32, I32, Flags, Flags, F64, F64]


@dataclass(frozen=True)
class CompiledForest:
    """A LightGBM forest as flat node arrays, evaluated by compiled kernels.

    Nodes of all trees share the arrays; a leaf has ``feature == -1`` and its value in ``value``.
    ``missing_type`` is LightGBM's (0 none, 1 zero, 2 NaN). The kernels walk these arrays
    rearranged as LightGBM does (splits apart, leaves as negative children), with the missing
    type folded into the side each split sends a NaN and a zero to.

    >>> import lightgbm as lgb
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(500, 3)).astype(np.float32)
    >>> y = (x[:, 0] > 0.5).astype(np.int8)
    >>> booster = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(x, y), 10)
    >>> forest = compile_forest(booster.model_to_string())
    >>> bool(np.allclose(forest.raw_score(x), booster.predict(x, raw_score=True), rtol=1e-12))
    True
    >>> sums = forest.path_contributions(x).sum(axis=1) + forest.expected_value
    >>> bool(np.allclose(sums, forest.raw_score(x)))
    True
    """

    n_features: int
    roots: npt.NDArray[np.int32]
    feature: npt.NDArray[np.int32]
    threshold: F64
    left: npt.NDArray[np.int32]
    right: npt.NDArray[np.int32]
    default_left: npt.NDArray[np.bool_]
    missing_type: npt.NDArray[np.uint8]
    #: Leaf value at a leaf; at a split, the row-weighted mean of the leaf values below it.
    value: F64
    _nodes: _Nodes = field(init=False, repr=False, compare=False)
    #: The splits again as one 16-byte record each, for float32 rows (see ``_split_records``).
    _records: npt.NDArray[np.int32] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        leaf = self.feature < 0
        split = ~leaf
        # Splits numbered 0.. and leaves ~0, ~1, .. in node order, as in LightGBM's trees: a
        # branch on the sign of the next node ends the walk, with no extra load.
        number = np.where(leaf, ~(np.cumsum(leaf) - 1), np.cumsum(split) - 1).astype(np.int32)
        # LightGBM's NumericalDecision: NaN is missing for missing type NaN, and is read as 0 (so
        # missing again) for type zero; values within kZeroThreshold of 0 are read as 0.
        threshold = self.threshold[split]
        missing, default_left = self.missing_type[split], self.default_left[split]
        zero_by_threshold = threshold >= 0.0
        nan_left = np.where(missing == _MISSING_NONE, zero_by_threshold, default_left)
        zero_left = np.where(missing == _MISSING_ZERO, default_left, zero_by_threshold)
        nodes: _Nodes = (
            number[self.roots],
            self.feature[split],
            threshold,
            number[self.left[split]],
            number[self.right[split]],
            nan_left.astype(np.bool_),
            zero_left.astype(np.bool_),
            self.value[split],
            self.value[leaf],
        )
        object.__setattr__(self, "_nodes", nodes)
        object.__setattr__(self, "_records", _split_records(*nodes[1:7]))

    @property
    def n_trees(self) -> int:
        return int(self.roots.shape[0])

    @property
    def expected_value(self) -> float:
        """The forest's mean raw score over its training rows: what contributions are relative to."""
        return float(np.sum(self.value[self.roots]))

    def raw_score(self, features: F32 | F64) -> F64:
        """The raw score (log-odds for a binary model) of each row of ``features``."""
        x = self._checked(features)
        out = np.empty(x.shape[0], dtype=np.float64)
        if x.dtype == np.float32:
            roots, leaf_value = self._nodes[0], self._nodes[8]
            _raw_score_f32_kernel(x, roots, self._records, self._records.view(np.float32), leaf_value, out)
        else:
            _raw_score_kernel(x, *self._nodes, out)
        return out

    def path_contributions(self, features: F32 | F64) -> F64:
        """Per row and feature, the change of expected value on the row's decision paths."""
        x = self._checked(features)
        out = np.zeros((x.shape[0], self.n_features), dtype=np.float64)
        _path_contributions_kernel(x, *self._nodes, out)
        return out

    def _checked(self, features: F32 | F64) -> F32 | F64:
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise ModelError(
                f"the forest needs a 2-D matrix with {self.n_features} feature columns, "
                f"got shape {features.shape}"
            )
        # Booster.predict keeps float64 and reads every other dtype as float32; so do we.
        if features.dtype == np.float64:
            return np.ascontiguousarray(features, dtype=np.float64)
        return np.ascontiguousarray(features, dtype=np.float32)


def compile_forest(model_text: str) -> CompiledForest:
    """Flatten a LightGBM text model (``Booster.model_to_string()``) into a ``CompiledForest``.

    The text model, not ``dump_model()``'s JSON, is read because the JSON clips infinite
    thresholds to ±1e300, and LightGBM does split at +inf (finite values left, +inf right).

    Only what the kernels reproduce exactly is accepted: one tree per iteration (binary or
    regression objectives), numerical splits, constant leaves, summed (not averaged) output.
    Anything else raises ``ModelError``; callers then use LightGBM's own predictor.
    """
    head, _, rest = model_text.partition("\nTree=")
    header = _key_values(head)
    per_iteration = int(header.get("num_tree_per_iteration", "1"))
    if per_iteration != 1:
        raise ModelError(
            f"the model has {per_iteration} trees per iteration (multiclass); the compiled forest "
            "handles one, so predict with LightGBM"
        )
    if "average_output" in header:
        raise ModelError("the model averages its trees (random forest mode); predict with LightGBM")
    if "max_feature_idx" not in header or not rest:
        raise ModelError("the text is not a LightGBM model with trees; train it for at least one round")
    body = rest.partition("end of trees")[0]
    trees = [_parse_tree(block) for block in ("Tree=" + body).split("\nTree=")]
    return _concatenate(trees, int(header["max_feature_idx"]) + 1)


_Arrays = tuple[
    npt.NDArray[np.int32],
    F64,
    npt.NDArray[np.int32],
    npt.NDArray[np.int32],
    npt.NDArray[np.bool_],
    npt.NDArray[np.uint8],
    F64,
]


def _key_values(block: str) -> dict[str, str]:
    """``key=value`` lines of a text-model block; a bare word (``average_output``) maps to ""."""
    pairs = (line.partition("=") for line in block.splitlines() if line.strip())
    return {key.strip(): value.strip() for key, _, value in pairs}


def _numbers(fields: Mapping[str, str], key: str, dtype: type[np.generic]) -> npt.NDArray[Any]:
    return np.array(fields.get(key, "").split(), dtype=dtype)


def _parse_tree(block: str) -> _Arrays:
    """One tree's nodes, splits first (LightGBM's split order), then its leaves."""
    fields = _key_values(block)
    index = fields.get("Tree", "?")
    if fields.get("is_linear", "0") != "0":
        raise ModelError(
            f"tree {index} has linear leaves (linear_tree); the compiled forest handles constant "
            "leaves only, so the model is evaluated by LightGBM"
        )
    decision = _numbers(fields, "decision_type", np.int64)
    if int(fields.get("num_cat", "0")) > 0 or np.any(decision & 1):
        raise ModelError(
            f"tree {index} has a categorical split; the compiled forest handles numerical splits "
            "only, so the model is evaluated by LightGBM"
        )
    leaf_value = _numbers(fields, "leaf_value", np.float64)
    n_splits = leaf_value.shape[0] - 1

    def nodes(children: npt.NDArray[np.int64]) -> npt.NDArray[np.int32]:
        # LightGBM marks leaf k as child ~k; leaves follow the splits in the node arrays.
        return np.where(children >= 0, children, n_splits + ~children).astype(np.int32)

    feature = np.full(n_splits + 1 + n_splits, _LEAF, dtype=np.int32)
    feature[:n_splits] = _numbers(fields, "split_feature", np.int32)
    threshold = np.zeros(feature.shape[0])
    threshold[:n_splits] = _numbers(fields, "threshold", np.float64)
    left = np.full(feature.shape[0], _LEAF, dtype=np.int32)
    right = left.copy()
    left[:n_splits] = nodes(_numbers(fields, "left_child", np.int64))
    right[:n_splits] = nodes(_numbers(fields, "right_child", np.int64))
    default_left = np.zeros(feature.shape[0], dtype=np.bool_)
    default_left[:n_splits] = (decision & 2) != 0
    missing_type = np.zeros(feature.shape[0], dtype=np.uint8)
    missing_type[:n_splits] = (decision >> 2) & 3
    value = np.zeros(feature.shape[0])
    value[n_splits:] = leaf_value
    rows = np.zeros(feature.shape[0])
    rows[n_splits:] = _numbers(fields, "leaf_count", np.float64)
    _expected_values(left, right, n_splits, value, rows)
    return feature, threshold, left, right, default_left, missing_type, value


def _expected_values(
    left: npt.NDArray[np.int32], right: npt.NDArray[np.int32], n_splits: int, value: F64, rows: F64
) -> None:
    """Fill each split's value with the row-weighted mean of its leaves (LightGBM's leaf_count)."""
    # A split's children are always created after it, so walking back meets children first.
    for node in range(n_splits - 1, -1, -1):
        a, b = left[node], right[node]
        rows[node] = rows[a] + rows[b]
        if rows[node] > 0:
            value[node] = (rows[a] * value[a] + rows[b] * value[b]) / rows[node]
        else:  # a model without row counts: weigh both sides alike
            value[node] = 0.5 * (value[a] + value[b])


def _concatenate(trees: list[_Arrays], n_features: int) -> CompiledForest:
    sizes = np.array([tree[0].shape[0] for tree in trees], dtype=np.int32)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32)

    def children(position: int) -> npt.NDArray[np.int32]:
        shifted = [np.where(t[position] >= 0, t[position] + o, _LEAF) for t, o in zip(trees, offsets)]
        return np.concatenate(shifted).astype(np.int32)

    return CompiledForest(
        n_features=n_features,
        roots=offsets,
        feature=np.concatenate([t[0] for t in trees]),
        threshold=np.concatenate([t[1] for t in trees]),
        left=children(2),
        right=children(3),
        default_left=np.concatenate([t[4] for t in trees]),
        missing_type=np.concatenate([t[5] for t in trees]),
        value=np.concatenate([t[6] for t in trees]),
    )


#: In a split record's first field, above the feature number: NaN goes left, zero goes left.
_NAN_LEFT_BIT: Final = 1 << 28
_ZERO_LEFT_BIT: Final = 1 << 29


def _split_records(
    feature: I32, threshold: F64, left: I32, right: I32, nan_left: Flags, zero_left: Flags
) -> npt.NDArray[np.int32]:
    """Each split as one 16-byte record (feature and flags, left, right, float32 threshold), so a
    visit reads one cache line instead of six arrays: 1.5-1.8x faster on the engine's features.

    The threshold is the largest float32 not above the float64 one. For a float32 value ``x``,
    ``x <= t`` holds exactly when ``x <= largest_float32_not_above(t)``, so float32 rows take the
    same path as with LightGBM's float64 thresholds; float64 rows use the float64 kernel.
    """
    if feature.size and int(feature.max()) >= _NAN_LEFT_BIT:
        raise ModelError(
            f"a split reads feature {int(feature.max())}; split records hold up to {_NAN_LEFT_BIT - 1}"
        )
    below = threshold.astype(np.float32)
    above = below.astype(np.float64) > threshold
    below[above] = np.nextafter(below[above], np.float32(-np.inf))
    records = np.empty((feature.shape[0], 4), dtype=np.int32)
    records[:, 0] = feature | np.where(nan_left, _NAN_LEFT_BIT, 0) | np.where(zero_left, _ZERO_LEFT_BIT, 0)
    records[:, 1] = left
    records[:, 2] = right
    records[:, 3] = below.view(np.int32)
    return records


@njit(cache=True, nogil=True)
def _goes_left(value, threshold, nan_left, zero_left):  # type: ignore[no-untyped-def]
    """LightGBM's Tree::NumericalDecision at one split, given the split's fields."""
    # Scalars only: array arguments would cost reference counting on every node visited.
    if abs(value) > _ZERO:
        return value <= threshold
    # NaN, or a value the predictor reads as exactly 0.
    return nan_left if math.isnan(value) else zero_left


@njit(cache=True, nogil=True)
def _raw_score_kernel(  # type: ignore[no-untyped-def]
    x, roots, feature, threshold, left, right, nan_left, zero_left, split_value, leaf_value, out
):
    for i in range(x.shape[0]):
        total = 0.0
        for t in range(roots.shape[0]):
            node = roots[t]
            # A real branch, not a select: fraud-feature rows mostly follow the same paths, so the
            # CPU guesses the next node and runs ahead; on the engine's features this measured
            # 1.4x faster than a branch-free walk of 16 rows side by side (which won on noise).
            while node >= 0:
                if _goes_left(x[i, feature[node]], threshold[node], nan_left[node], zero_left[node]):
                    node = left[node]
                else:
                    node = right[node]
            # Summed tree by tree from 0.0, in LightGBM's order, so the sums agree to the bit.
            total += leaf_value[~node]
        out[i] = total


@njit(cache=True, nogil=True)
def _raw_score_f32_kernel(x, roots, records, thresholds, leaf_value, out):  # type: ignore[no-untyped-def]
    """``_raw_score_kernel`` for float32 rows over split records; ``thresholds`` views them as
    float32, so its column 3 is each record's threshold."""
    for i in range(x.shape[0]):
        total = 0.0
        for t in range(roots.shape[0]):
            node = roots[t]
            while node >= 0:
                head = records[node, 0]
                value = x[i, head & (_NAN_LEFT_BIT - 1)]
                if abs(value) > _ZERO:
                    left = value <= thresholds[node, 3]
                elif math.isnan(value):
                    left = (head & _NAN_LEFT_BIT) != 0
                else:
                    left = (head & _ZERO_LEFT_BIT) != 0
                node = records[node, 1] if left else records[node, 2]
            total += leaf_value[~node]
        out[i] = total


@njit(cache=True, nogil=True)
def _path_contributions_kernel(  # type: ignore[no-untyped-def]
    x, roots, feature, threshold, left, right, nan_left, zero_left, split_value, leaf_value, out
):
    for i in range(x.shape[0]):
        for t in range(roots.shape[0]):
            node = roots[t]
            while node >= 0:
                split = feature[node]
                if _goes_left(x[i, split], threshold[node], nan_left[node], zero_left[node]):
                    child = left[node]
                else:
                    child = right[node]
                child_value = split_value[child] if child >= 0 else leaf_value[~child]
                out[i, split] += child_value - split_value[node]
                node = child
