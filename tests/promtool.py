"""`promtool check metrics` for the tests of /metrics (the server's and the Kafka worker's)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

HOW_TO_INSTALL = "promtool is missing: run `./scripts/install-promtool` (apt-get install -y prometheus)"


def promtool_problems(exposition: str) -> str:
    """What `promtool check metrics` says of an exposition: empty when it is clean."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(HOW_TO_INSTALL)
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True, check=False
    )
    return (checked.stdout + checked.stderr).strip() if checked.returncode else ""
