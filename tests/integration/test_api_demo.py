"""`fraudstream demo` for real: a subprocess that serves, feeds itself traffic, reports, stops on Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fraudstream as `pip install .` installs it: a wheel built from the checkout, installed into a
    folder of its own (its dependencies are this environment's), so that the demo runs from the
    package alone, not from the source tree."""
    folder = tmp_path_factory.mktemp("installed")
    root = Path(__file__).resolve().parents[2]
    # From a copy of what the package is made of: a build in the checkout would reuse its build/
    # folder, where a module since deleted from src/ lives on.
    source = folder / "source"
    shutil.copytree(root / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(root / name, source / name)
    pip = [sys.executable, "-m", "pip", "--quiet", "--disable-pip-version-check"]
    wheels, site = folder / "wheel", folder / "site"
    build = [*pip, "wheel", "--no-deps", "-w", str(wheels), str(source)]  # as `pip install .` builds
    subprocess.run(build, check=True, capture_output=True)
    wheel = next(wheels.glob("fraudstream-*.whl"))
    install = [*pip, "install", "--no-deps", "--no-compile", "--target", str(site), str(wheel)]
    subprocess.run(install, check=True, capture_output=True)
    return site


def test_the_demo_serves_live_traffic_prints_a_summary_and_stops_cleanly_on_ctrl_c(
    tmp_path: Path, installed: Path
) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDSTREAM_")}
    env["PYTHONPATH"] = str(installed)  # ahead of the checkout's editable install
    command = [sys.executable, "-m", "fraudstream", "demo", "--port", str(port), "--rate", "50",
               "--data-dir", str(tmp_path / "data")]  # fmt: skip
    with log.open("wb") as sink:
        # From an empty folder: nothing of the checkout (rules, migrations, pages) is at hand.
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        stats: dict[str, int] = {}
        while not (stats.get("transactions", 0) > 0 and "decisions/s" in log.read_text()):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no live traffic within 90 s:\n{log.read_text()}"
            with contextlib.suppress(httpx.HTTPError):  # not listening yet
                # Demo mode: no API key needed.
                stats = httpx.get(f"{url}/v1/stats", timeout=2).json()
            time.sleep(0.2)
        output = log.read_text()
        assert f"fraudstream demo is live: {url}" in output
        assert "demo mode" in output
        # The models are trained before the demo says it is live: its first decisions are the model's.
        assert output.index("models trained on a simulated week") < output.index("demo is live")
        assert httpx.get(f"{url}/docs/assets/swagger-ui-bundle.js", timeout=5).status_code == 200
        assert "fraudstream" in httpx.get(f"{url}/", timeout=5, follow_redirects=True).text
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log.read_text()
    assert "stopped cleanly" in output
    assert "Traceback" not in output
    # The last snapshot, written on the way out, holds every stored transaction: nothing to replay.
    with sqlite3.connect(tmp_path / "data" / "fraudstream.db") as connection:
        last_seq = connection.execute("select max(seq) from transactions").fetchone()[0]
    snapshots = sorted((tmp_path / "data").rglob("state-*.bin"))
    assert snapshots[-1].name == f"state-{last_seq:012d}.bin"
    first = (
        "select d.model_version from decisions d join transactions t "
        "on t.transaction_id = d.transaction_id order by t.seq limit 1"
    )
    with sqlite3.connect(tmp_path / "data" / "fraudstream.db") as connection:
        (first_model,) = connection.execute(first).fetchone()
    assert first_model, "the first decision was made without the model"
    ran_from = subprocess.run(
        [sys.executable, "-c", "import fraudstream; print(fraudstream.__file__)"],
        env=env, cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert ran_from.startswith(str(installed)), ran_from
