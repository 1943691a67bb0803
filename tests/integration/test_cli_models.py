"""`fraudstream models list`: version ids whole on a narrow terminal, and JSON for scripts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fraudstream.cli import app
from fraudstream.cli.app import out
from fraudstream.core.models import fit_model
from fraudstream.ml.registry import Registry

pytestmark = pytest.mark.integration

runner = CliRunner()
VERSION = "20261207-174121-logistic-regression-with-a-long-name-abf7"


def registry_of_one(folder: Path) -> Registry:
    generator = np.random.default_rng(3)
    features = generator.normal(size=(200, 2)).astype(np.float32)
    labels = (features[:, 0] > 1).astype(np.int8)
    model = fit_model(
        "logistic", features, labels, ["amount", "user.count_24h"], version=VERSION,
        created="2026-12-07T17:41:21Z", training_fingerprint="test",
    )  # fmt: skip
    registry = Registry(folder)
    registry.save(model)
    registry.promote(VERSION)
    return registry


def test_models_list_shows_whole_version_ids_on_a_narrow_terminal_and_json_for_scripts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry_of_one(tmp_path / "models")
    monkeypatch.setattr(out, "width", 60)
    listed = runner.invoke(app, ["models", "list", "--registry", str(tmp_path / "models")])
    assert listed.exit_code == 0, listed.output
    assert VERSION in listed.output, "the id `models promote` needs is printed whole"
    as_json = runner.invoke(app, ["models", "list", "--json", "--registry", str(tmp_path / "models")])
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.output)
    assert [(r["version"], r["kind"], r["role"]) for r in rows] == [(VERSION, "logistic", "champion")]
    assert rows[0]["roc_auc"] is None  # fit_model alone measures nothing; `train` records the metrics
