"""Every model kind: learns, explains, survives a round trip through its artifact, refuses bad files."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from fraudstream.core.models import KINDS, fit_model, load_model
from fraudstream.errors import ModelError

NAMES = ("amount", "user.count_30s", "geo.speed_kmh", "hour_of_day")


def data(seed: int, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = ((x[:, 0] > 1.2) & (x[:, 1] > 0.3) | (x[:, 2] > 2.3)).astype(np.int8)
    x[rng.random((n, 4)) < 0.05] = np.nan  # the engine sends NaN for unknown features
    return x, y


def auc(truth: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(truth, score))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_learns_explains_and_round_trips(kind: str) -> None:
    x, y = data(1)
    model = fit_model(
        kind, x, y, NAMES, version=f"v-{kind}", created="2026-11-24T00:00:00Z", training_fingerprint="t"
    )
    test_x, test_y = data(2)
    probability = model.predict_proba(test_x)
    assert probability.shape == (len(test_x),)
    assert np.all((probability >= 0) & (probability <= 1))
    # The isolation forest never sees labels: it only has to rank the outliers first.
    assert auc(test_y, probability) > (0.7 if kind == "isolation_forest" else 0.8)
    contributions = model.contributions(test_x[:20])
    assert contributions.shape == (20, 4)
    assert np.all(np.isfinite(contributions))
    again = load_model(model.to_artifact(), NAMES)
    np.testing.assert_array_equal(again.predict_proba(test_x), probability)


def test_lightgbm_contributions_add_up_to_the_raw_score() -> None:
    x, y = data(3)
    model = fit_model("lightgbm", x, y, NAMES, version="v", created="c", training_fingerprint="t")
    values = model.booster.predict(x[:50], pred_contrib=True)  # type: ignore[attr-defined]
    raw = model.booster.predict(x[:50], raw_score=True)  # type: ignore[attr-defined]
    np.testing.assert_allclose(values.sum(axis=1), raw, rtol=1e-6)
    np.testing.assert_allclose(model.shap_contributions(x[:50]), values[:, :-1])  # type: ignore[attr-defined]
    # The default (path attributions) splits the same total over the features as SHAP does.
    np.testing.assert_allclose(model.contributions(x[:50]).sum(axis=1), values[:, :-1].sum(axis=1))


def test_class_weight_is_undone_so_probabilities_stay_calibrated() -> None:
    x, y = data(4, 20_000)
    model = fit_model("lightgbm", x, y, NAMES, version="v", created="c", training_fingerprint="t")
    assert model.predict_proba(x).mean() == pytest.approx(y.mean(), abs=0.01)


def test_a_model_for_other_features_is_refused_with_the_difference() -> None:
    x, y = data(5)
    model = fit_model("logistic", x, y, NAMES, version="v", created="c", training_fingerprint="t")
    with pytest.raises(ModelError, match=r"missing \['user.count_10m'\]"):
        load_model(model.to_artifact(), (*NAMES[:3], "user.count_10m"))


def test_a_skops_file_with_an_unexpected_type_is_refused_without_loading_it() -> None:
    x, y = data(6)
    model = fit_model("random_forest", x, y, NAMES, version="v", created="c", training_fingerprint="t")
    files = model.to_artifact()
    archive = io.BytesIO(files["model.skops"])
    tampered = io.BytesIO()
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "schema.json":
                content = content.replace(b"sklearn.impute._base", b"os.system.evil")
            target.writestr(item, content)
    with pytest.raises(ModelError, match="does not load"):
        load_model({**files, "model.skops": tampered.getvalue()}, NAMES)


def test_an_unknown_kind_or_broken_metadata_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="unknown"):
        fit_model(
            "neural",
            np.zeros((2, 1), np.float32),
            np.zeros(2, np.int8),
            ("amount",),
            version="v",
            created="c",
            training_fingerprint="t",
        )
    with pytest.raises(ModelError, match="not valid model metadata"):
        load_model({"metadata.json": b"{}"})
