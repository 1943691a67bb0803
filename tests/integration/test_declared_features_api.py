"""Rules on a client's own data through the real app and SQLite: a rule on ``attributes.channel``, a
declared feature from FRAUDSTREAM_FEATURES_PATH, their rule errors at PUT /v1/rules; and `config show`
listing the declared-features file."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from factories import transaction
from fraudstream.api import create_app
from fraudstream.cli import app
from fraudstream.config import Settings

pytestmark = pytest.mark.integration

FEATURES = """aggregations:
  - {entity: merchant, function: distinct, field: device, window: 24h}
  - {entity: user, function: sum, field: attributes.loyalty_points, window: 1h}
"""

RULES = """version: 7
rules:
  - {code: web_channel, expression: "attributes.channel == 'web'", action: review, weight: 70}
  - {code: many_devices, expression: "merchant.distinct_device_24h >= 3", action: tag}
  - {code: loyal, expression: "user.sum_attributes_loyalty_points_1h > 100", action: tag}
"""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("declared")
    (folder / "features.yaml").write_text(FEATURES, encoding="utf-8")
    settings = Settings(demo=True, data_dir=folder, batch_wait_ms=1.0, features_path=folder / "features.yaml")
    with TestClient(create_app(settings)) as test_client:
        response = test_client.put("/v1/rules", content=RULES, headers={"content-type": "application/yaml"})
        assert response.status_code == 200, response.text
        yield test_client


def rules_hit(client: TestClient, body: dict[str, object]) -> list[str]:
    response = client.post("/v1/transactions", json=body)
    assert response.status_code == 201, response.text
    return list(response.json()["rules"])


def test_a_rule_on_attributes_channel_hits_web_only_through_the_api(client: TestClient) -> None:
    web = rules_hit(client, transaction("web-1", "u-web", attributes={"channel": "web"}))
    pos = rules_hit(client, transaction("pos-1", "u-pos", attributes={"channel": "pos"}))
    missing = rules_hit(client, transaction("none-1", "u-none"))
    assert ("web_channel" in web, "web_channel" in pos, "web_channel" in missing) == (True, False, False)
    stored = client.get("/v1/transactions/web-1").json()
    assert stored["attributes"] == {"attributes": {"channel": "web"}}


def test_declared_features_reach_the_rules_through_the_api(client: TestClient) -> None:
    for i, device in enumerate(["d1", "d2", "d3"]):
        found = rules_hit(
            client, transaction(f"dev-{i}", f"u-dev-{i}", merchant_id="m-busy", device_id=device)
        )
    assert "many_devices" in found
    first = rules_hit(client, transaction("pts-1", "u-pts", loyalty_points=60))
    second = rules_hit(client, transaction("pts-2", "u-pts", loyalty_points=60))
    assert ("loyal" in first, "loyal" in second) == (False, True)


def test_an_attribute_used_as_two_types_is_refused_at_put_rules_with_its_position(client: TestClient) -> None:
    text = RULES.replace("version: 7", "version: 8") + (
        '  - {code: channel_count, expression: "attributes.channel > 2", action: tag}\n'
    )
    response = client.put("/v1/rules", content=text, headers={"content-type": "application/yaml"})
    assert response.status_code == 422
    body = response.json()
    assert (body["error"], body["rule"], body["position"]) == ("invalid_rules", "channel_count", 1)
    assert "used as a number here but as text in rule 'web_channel'" in body["reason"]


def test_config_show_lists_the_declared_features_file_and_names_a_bad_entry(tmp_path: Path) -> None:
    good, bad = tmp_path / "features.yaml", tmp_path / "bad.yaml"
    good.write_text(FEATURES, encoding="utf-8")
    bad.write_text(FEATURES + "  - {entity: user, function: median, field: amount, window: 1h}\n", "utf-8")
    runner = CliRunner()
    clean = {name: None for name in os.environ if name.startswith("FRAUDSTREAM_")}
    env = {**clean, "FRAUDSTREAM_DEMO": "1", "COLUMNS": "300"}
    shown = runner.invoke(app, ["config", "show"], env={**env, "FRAUDSTREAM_FEATURES_PATH": str(good)})
    assert shown.exit_code == 0, shown.output
    # The setting's value and source from the JSON form: the table's width is the console's, which
    # an earlier test of the same process may have fixed, and a long path then wraps.
    as_json = runner.invoke(
        app, ["config", "show", "--json"], env={**env, "FRAUDSTREAM_FEATURES_PATH": str(good)}
    )
    assert json.loads(as_json.output)["values"]["features_path"]["value"] == str(good)
    assert json.loads(as_json.output)["values"]["features_path"]["source"] == "env"
    assert (
        f"declared features ({good}): merchant.distinct_device_24h, user.sum_attributes_loyalty_points_1h"
        in shown.output
    )
    broken = runner.invoke(app, ["config", "show"], env={**env, "FRAUDSTREAM_FEATURES_PATH": str(bad)})
    assert broken.exit_code == 2
    assert (
        "entry 3 (line 4): function 'median' is not one of count, sum, mean, max, distinct" in broken.output
    )


def test_rules_validate_knows_the_declared_features_it_is_given(tmp_path: Path) -> None:
    features, rules = tmp_path / "features.yaml", tmp_path / "rules.yaml"
    features.write_text(FEATURES, encoding="utf-8")
    rules.write_text(RULES, encoding="utf-8")
    runner = CliRunner()
    env = {name: None for name in os.environ if name.startswith("FRAUDSTREAM_")}
    without = runner.invoke(app, ["rules", "validate", str(rules)], env=env)
    assert without.exit_code == 1
    assert "unknown name 'merchant.distinct_device_24h'" in without.output
    given = runner.invoke(app, ["rules", "validate", str(rules), "--features", str(features)], env=env)
    assert given.exit_code == 0, given.output
    assert "valid: version 7, 3 rules" in given.output
    from_environment = runner.invoke(
        app, ["rules", "validate", str(rules)], env={**env, "FRAUDSTREAM_FEATURES_PATH": str(features)}
    )
    assert from_environment.exit_code == 0, from_environment.output
