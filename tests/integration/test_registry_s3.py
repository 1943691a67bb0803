"""The model registry in an S3-compatible object store (moto's S3 server, started here): saved, listed,
promoted, shadowed and loaded back as in a folder; a version half written is never listed; and a
model trained with `fraudstream train --models-dir s3://...` is the champion a server started with
FRAUDSTREAM_REGISTRY_DIR=s3://... decides with."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import numpy as np
import pyarrow.fs as pafs
import pytest
from typer.testing import CliRunner

from fraudstream.cli import app
from fraudstream.core.engine import EngineConfig
from fraudstream.core.models import ModelMetadata
from fraudstream.core.models.logistic import LogisticModel
from fraudstream.errors import ModelError
from fraudstream.ml.registry import Registry
from fraudstream.sim.generator import SimulationConfig, simulate, with_label_times
from fraudstream.sim.output import write_table
from servers import start_server, stop

pytestmark = pytest.mark.integration
DAY_MS = 86_400_000


def _bucket(endpoint: str) -> str:
    import boto3

    name = f"models-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return name


def _model(version: str, created: str, seed: int) -> LogisticModel:
    """A small logistic model over the engine's features."""
    names = EngineConfig().features.feature_names
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, len(names))).astype(np.float32)
    y = (x[:, seed % len(names)] > 0.3).astype(np.int8)
    return LogisticModel.fit(x, y, ModelMetadata("logistic", version, created, names, "test"))


def _filesystem(endpoint: str) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(
        endpoint_override=endpoint, access_key="testing", secret_key="testing", region="us-east-1"
    )


def test_save_list_promote_shadow_and_load_round_trip_on_s3(s3_endpoint: str) -> None:
    bucket = _bucket(s3_endpoint)
    registry = Registry(f"s3://{bucket}/models", endpoint_url=s3_endpoint)
    assert registry.versions() == []
    assert registry.roles() == {"champion": None, "challengers": []}
    old, new = _model("m-old", "2026-11-29T00:00:00Z", 1), _model("m-new", "2026-11-30T00:00:00Z", 2)
    assert registry.save(old, "# m-old\n") == f"s3://{bucket}/models/m-old"
    registry.save(new)
    with pytest.raises(ModelError, match="already exists"):
        registry.save(new)
    assert [m.version for m in registry.versions()] == ["m-old", "m-new"]
    assert registry.resolve("latest") == "m-new"
    with pytest.raises(ModelError, match="no champion"):
        registry.resolve("champion")
    with pytest.raises(ModelError, match=r"no model version 'm-gone'.*known: m-old, m-new"):
        registry.resolve("m-gone")

    assert registry.promote("m-old") == "m-old"
    assert registry.shadow("m-new") == "m-new"
    # Another process (no endpoint given: it comes from AWS_ENDPOINT_URL) sees the same roles.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ENDPOINT_URL", s3_endpoint)
        again = Registry(f"s3://{bucket}/models/")
        assert again.roles() == {"champion": "m-old", "challengers": ["m-new"]}
        champion = again.load("champion", EngineConfig().features.feature_names)
    assert champion.metadata.version == "m-old"
    x = np.random.default_rng(9).normal(size=(50, len(old.metadata.feature_names))).astype(np.float32)
    np.testing.assert_array_equal(champion.predict_proba(x), old.predict_proba(x))
    assert registry.card("m-old") == "# m-old\n"
    # The objects as the layout says: one folder per version, roles.json beside them.
    names = {
        info.path.removeprefix(f"{bucket}/models/")
        for info in _filesystem(s3_endpoint).get_file_info(
            pafs.FileSelector(f"{bucket}/models", recursive=True)
        )
        if info.type == pafs.FileType.File
    }
    assert {"roles.json", "m-old/metadata.json", "m-old/card.md", "m-new/metadata.json"} <= names


def test_a_version_without_its_metadata_is_not_listed_and_can_be_saved_again(s3_endpoint: str) -> None:
    bucket = _bucket(s3_endpoint)
    registry = Registry(f"s3://{bucket}/models", endpoint_url=s3_endpoint)
    model = _model("m-half", "2026-11-29T00:00:00Z", 3)
    files = model.to_artifact()
    # What a process killed while saving leaves: every file but metadata.json, written last.
    filesystem = _filesystem(s3_endpoint)
    for name, data in files.items():
        if name != "metadata.json":
            with filesystem.open_output_stream(f"{bucket}/models/m-half/{name}") as stream:
                stream.write(data)
    assert registry.versions() == []
    with pytest.raises(ModelError, match="no model version 'm-half'"):
        registry.load("m-half")
    with pytest.raises(ModelError, match="no models"):
        registry.resolve("latest")
    registry.save(model)  # the leftovers are written over
    assert [m.version for m in registry.versions()] == ["m-half"]
    assert registry.load("m-half").metadata.version == "m-half"


def test_a_model_trained_into_s3_is_the_champion_a_server_decides_with(
    s3_endpoint: str, tmp_path: Path
) -> None:
    bucket = _bucket(s3_endpoint)
    config = SimulationConfig(count=3_000, seed=11, fraud_rate=0.03, duration_ms=5 * DAY_MS)
    data = tmp_path / "sim.parquet"
    write_table(with_label_times(simulate(config), config), data)
    url = f"s3://{bucket}/models"
    trained = CliRunner().invoke(
        app,
        ["train", "--data", str(data), "--model", "logistic", "--models-dir", url, "--promote"],
        env={"FRAUDSTREAM_S3_ENDPOINT_URL": s3_endpoint, "FRAUDSTREAM_DATA_DIR": str(tmp_path / "cli")},
    )
    assert trained.exit_code == 0, trained.output
    version = Registry(url, endpoint_url=s3_endpoint).roles()["champion"]
    assert version is not None
    assert version in trained.output
    assert not (tmp_path / "cli" / "models").exists()  # nothing went to the local default

    server = start_server(tmp_path / "server", registry_dir=url, s3_endpoint_url=s3_endpoint)
    try:
        assert httpx.get(f"{server.url}/readyz", timeout=5).json()["model"] == version
        models = httpx.get(f"{server.url}/v1/models", timeout=5).json()
        assert models["champion"] == version
        assert [m["version"] for m in models["versions"]] == [version]
        answer = httpx.post(
            f"{server.url}/v1/transactions",
            json={"transaction_id": "t-s3", "user_id": "u1", "amount": 120.0},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["model_version"] == version
    finally:
        stop(server)
