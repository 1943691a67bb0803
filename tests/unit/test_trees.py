"""The compiled forest predicts what LightGBM predicts, and its path contributions add up."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fraudstream.core.models import fit_model, load_model
from fraudstream.core.models.base import ModelMetadata
from fraudstream.core.models.lightgbm import LightGBMModel
from fraudstream.core.models.trees import CompiledForest, compile_forest
from fraudstream.errors import ModelError

N_FEATURES = 6
#: Missing-value settings of LightGBM and the missing type its numerical splits then carry.
VARIANTS: dict[str, tuple[dict[str, Any], int]] = {
    "nan_missing": ({}, 2),
    "zero_as_missing": ({"zero_as_missing": True}, 1),
    "no_missing": ({"use_missing": False}, 0),
}


def features(seed: int, n: int) -> np.ndarray:
    """Random features with NaNs and exact zeros in every column, as the engine sends them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    x[rng.random(x.shape) < 0.15] = 0.0
    x[rng.random(x.shape) < 0.1] = np.nan
    return x


def labels(x: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    signal = np.nan_to_num(x[:, 0], nan=1.0) + np.where(np.isnan(x[:, 1]), 1.0, x[:, 1] ** 2) - (x[:, 2] == 0)
    return (signal + rng.normal(scale=0.5, size=len(x)) > 1.2).astype(np.int8)


def train(params: dict[str, Any], seed: int = 1, rounds: int = 40) -> lgb.Booster:
    x = features(seed, 3000)
    merged = {"objective": "binary", "num_leaves": 15, "min_data_in_leaf": 10, "verbose": -1, **params}
    return lgb.train(merged, lgb.Dataset(x, labels(x, seed)), num_boost_round=rounds)


@pytest.fixture(scope="module")
def boosters() -> dict[str, lgb.Booster]:
    return {name: train(params) for name, (params, _) in VARIANTS.items()}


def metadata(n_features: int = N_FEATURES) -> ModelMetadata:
    names = tuple(f"f{i}" for i in range(n_features))
    return ModelMetadata("lightgbm", "v-test", "2026-11-24T00:00:00Z", names, "test")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_compiled_raw_score_equals_lightgbm_predict(boosters: dict[str, lgb.Booster], variant: str) -> None:
    booster = boosters[variant]
    forest = compile_forest(booster.model_to_string())
    splits = forest.feature >= 0
    assert set(forest.missing_type[splits].tolist()) == {VARIANTS[variant][1]}
    x = features(2, 5000)
    expected = booster.predict(x, raw_score=True, num_threads=1)
    np.testing.assert_allclose(forest.raw_score(x), expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(forest.raw_score(x.astype(np.float64)), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_path_contributions_add_up_to_the_raw_score_from_shaps_expected_value(
    boosters: dict[str, lgb.Booster], variant: str
) -> None:
    booster = boosters[variant]
    forest = compile_forest(booster.model_to_string())
    x = features(3, 500)
    contributions = forest.path_contributions(x)
    assert contributions.shape == (500, N_FEATURES)
    np.testing.assert_allclose(
        contributions.sum(axis=1) + forest.expected_value, forest.raw_score(x), atol=1e-9
    )
    shap = booster.predict(x, pred_contrib=True, num_threads=1)
    assert forest.expected_value == pytest.approx(shap[0, -1], abs=1e-9)


def test_infinite_values_meet_lightgbms_infinite_thresholds_as_lightgbm_does(
    boosters: dict[str, lgb.Booster],
) -> None:
    booster = boosters["nan_missing"]
    forest = compile_forest(booster.model_to_string())
    # A split "present vs NaN" has threshold +inf in the text model (the JSON dump says 1e300).
    assert np.isposinf(forest.threshold).any()
    x = np.full((2 * N_FEATURES, N_FEATURES), np.nan, np.float32)
    for column in range(N_FEATURES):
        x[2 * column, column] = np.inf
        x[2 * column + 1, column] = -np.inf
    np.testing.assert_allclose(forest.raw_score(x), booster.predict(x, raw_score=True), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_float32_values_next_to_each_threshold_take_lightgbms_side(
    boosters: dict[str, lgb.Booster], variant: str
) -> None:
    """Float32 rows are compared with float32 thresholds (each the largest float32 not above
    LightGBM's float64 one): values on and around every threshold must still split alike."""
    booster = boosters[variant]
    forest = compile_forest(booster.model_to_string())
    splits = np.flatnonzero((forest.feature >= 0) & np.isfinite(forest.threshold))
    assert len(splits) > 50
    below = forest.threshold[splits].astype(np.float32)
    below = np.where(below.astype(np.float64) > forest.threshold[splits], np.nextafter(below, -np.inf), below)
    candidates = [np.nextafter(below, -np.inf), below, np.nextafter(below, np.inf)]
    rng = np.random.default_rng(5)
    x = features(12, len(splits) * len(candidates))
    for k, values in enumerate(candidates):
        rows = np.arange(len(splits)) * len(candidates) + k
        x[rows, forest.feature[splits]] = values
        # The same values elsewhere in the row, so deeper splits on other features meet them too.
        x[rows, rng.integers(0, N_FEATURES, len(splits))] = values
    expected = booster.predict(x, raw_score=True, num_threads=1)
    np.testing.assert_allclose(forest.raw_score(x), expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(forest.raw_score(x.astype(np.float64)), expected, rtol=1e-9, atol=1e-12)


def test_trees_that_never_split_score_their_single_leaf() -> None:
    booster = train({"min_data_in_leaf": 10_000}, rounds=3)
    forest = compile_forest(booster.model_to_string())
    assert forest.n_trees == booster.num_trees()
    assert np.all(forest.feature == -1)
    x = features(11, 10)
    np.testing.assert_allclose(forest.raw_score(x), booster.predict(x, raw_score=True), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(forest.path_contributions(x), np.zeros((10, N_FEATURES)))


def matrices() -> st.SearchStrategy[np.ndarray]:
    """Feature matrices mixing ordinary values with NaN, ±0, ±inf and values LightGBM treats as 0."""
    special = st.sampled_from([np.nan, 0.0, -0.0, 1e-36, -1e-36, np.inf, -np.inf])
    value = st.one_of(special, st.floats(-4, 4, width=32))
    rows = st.integers(1, 40)
    return rows.flatmap(lambda n: hnp.arrays(np.float32, (n, N_FEATURES), elements=value))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@settings(max_examples=60, deadline=None)
@given(x=matrices())
def test_any_matrix_with_nans_scores_like_lightgbm(
    boosters: dict[str, lgb.Booster], variant: str, x: np.ndarray
) -> None:
    booster = boosters[variant]
    forest = compile_forest(booster.model_to_string())
    raw = forest.raw_score(x)
    np.testing.assert_allclose(raw, booster.predict(x, raw_score=True, num_threads=1), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        forest.path_contributions(x).sum(axis=1) + forest.expected_value, raw, atol=1e-9
    )


def test_model_artifact_round_trip_loads_a_compiled_forest_with_identical_scores() -> None:
    x = features(4, 3000)
    names = metadata().feature_names
    model = fit_model("lightgbm", x, labels(x, 4), names, version="v", created="c", training_fingerprint="t")
    files = model.to_artifact()
    assert sorted(files) == ["metadata.json", "model.txt"]
    again = load_model(files, names)
    assert isinstance(again, LightGBMModel)
    assert isinstance(again.forest, CompiledForest)
    test_x = features(5, 1000)
    np.testing.assert_array_equal(again.predict_proba(test_x), model.predict_proba(test_x))
    np.testing.assert_allclose(
        again.raw_score(test_x), again.booster.predict(test_x, raw_score=True), rtol=1e-9, atol=1e-12
    )
    np.testing.assert_array_equal(again.contributions(test_x), again.forest.path_contributions(test_x))


def test_the_shap_explainer_gives_lightgbms_treeshap_values(boosters: dict[str, lgb.Booster]) -> None:
    booster = boosters["nan_missing"]
    model = LightGBMModel(booster, metadata(), explainer="shap")
    x = features(6, 50)
    shap = booster.predict(x, pred_contrib=True, num_threads=1)[:, :-1]
    np.testing.assert_array_equal(model.contributions(x), shap)
    np.testing.assert_array_equal(model.shap_contributions(x), shap)


def test_path_reasons_point_at_features_shap_also_says_push_towards_fraud(
    boosters: dict[str, lgb.Booster],
) -> None:
    model = LightGBMModel(boosters["nan_missing"], metadata())
    x = features(7, 4000)
    score = model.raw_score(x)
    suspicious = x[score >= np.quantile(score, 0.95)]
    path, shap = model.contributions(suspicious), model.shap_contributions(suspicious)
    top = np.argmax(path, axis=1)
    # The feature a reason would name first pushes towards fraud by SHAP's account too.
    assert np.all(shap[np.arange(len(top)), top] > 0)


def categorical_booster() -> lgb.Booster:
    rng = np.random.default_rng(8)
    x = rng.normal(size=(2000, 3)).astype(np.float32)
    x[:, 2] = rng.integers(0, 6, 2000)
    y = (np.isin(x[:, 2], [1, 4]) | (x[:, 0] > 1.5)).astype(np.int8)
    params = {"objective": "binary", "verbose": -1, "min_data_per_group": 5, "cat_smooth": 1.0}
    return lgb.train(params, lgb.Dataset(x, y, categorical_feature=[2]), num_boost_round=10)


def test_a_categorical_split_is_refused_by_the_compiler_and_lightgbm_predicts_instead() -> None:
    booster = categorical_booster()
    with pytest.raises(ModelError, match="categorical split"):
        compile_forest(booster.model_to_string())
    model = LightGBMModel(booster, metadata(3))
    assert model.forest is None
    assert "categorical" in str(model.fallback_reason)
    x = np.random.default_rng(9).normal(size=(100, 3)).astype(np.float32)
    x[:, 2] = np.arange(100) % 6
    np.testing.assert_array_equal(model.raw_score(x), booster.predict(x, raw_score=True, num_threads=1))
    np.testing.assert_array_equal(
        model.contributions(x), booster.predict(x, pred_contrib=True, num_threads=1)[:, :-1]
    )
    again = LightGBMModel.from_artifact(model.to_artifact(), model.metadata)
    assert again.forest is None
    np.testing.assert_array_equal(again.raw_score(x), model.raw_score(x))


def test_multiclass_and_linear_tree_models_fall_back_to_lightgbm() -> None:
    x = features(10, 1000)
    y = labels(x, 10)
    multiclass = lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1}, lgb.Dataset(x, y + (x[:, 3] > 1)), 3
    )
    with pytest.raises(ModelError, match="multiclass"):
        compile_forest(multiclass.model_to_string())
    linear = lgb.train({"objective": "binary", "linear_tree": True, "verbose": -1}, lgb.Dataset(x, y), 5)
    with pytest.raises(ModelError, match="linear"):
        compile_forest(linear.model_to_string())


def test_a_matrix_with_the_wrong_number_of_columns_is_refused(boosters: dict[str, lgb.Booster]) -> None:
    forest = compile_forest(boosters["nan_missing"].model_to_string())
    with pytest.raises(ModelError, match=f"{N_FEATURES} feature columns"):
        forest.raw_score(np.zeros((3, N_FEATURES + 1), np.float32))
