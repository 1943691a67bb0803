"""examples/quickstart.ipynb runs headless from top to bottom and still shows what it stores.

The notebook keeps its outputs, so that a reader sees them without running it; this test runs it in a
fresh kernel and compares. After a change that moves a decision or a metric, refresh them with
`.venv/bin/python tests/integration/test_example_notebook.py` and read the difference.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.integration

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "quickstart.ipynb"
#: The whole notebook runs in well under this; a slower run means something in it grew.
BUDGET_S = 60.0


def execute(notebook: nbformat.NotebookNode, workdir: Path) -> nbformat.NotebookNode:
    """Run every cell in a new kernel of this interpreter (the one with fraudstream installed),
    in ``workdir`` with FRAUDSTREAM_DATA_DIR there, so that no local model or setting takes part."""
    kernels = workdir / "jupyter" / "kernels" / "python3"
    kernels.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fraudstream tests",
        "language": "python",
    }
    (kernels / "kernel.json").write_text(json.dumps(spec))
    saved = {name: os.environ.get(name) for name in ("JUPYTER_PATH", "FRAUDSTREAM_DATA_DIR")}
    os.environ["JUPYTER_PATH"] = str(workdir / "jupyter")  # searched before any other kernel folder
    os.environ["FRAUDSTREAM_DATA_DIR"] = str(workdir / "data")
    try:
        client = NotebookClient(
            notebook,
            timeout=int(BUDGET_S),
            startup_timeout=int(BUDGET_S),
            kernel_name="python3",
            record_timing=False,
            resources={"metadata": {"path": str(workdir)}},
        )
        client.execute()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return notebook


def shown(notebook: nbformat.NotebookNode) -> list[list[str]]:
    """Per code cell, what it shows as text: results, displays, printed lines, errors."""
    cells = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        texts = []
        for output in cell.outputs:
            if output.output_type == "stream":
                texts.append(f"{output.name}: {output.text}")
            elif output.output_type == "error":
                texts.append(f"error: {output.ename}: {output.evalue}")
            else:
                texts.append(output.get("data", {}).get("text/plain", ""))
        cells.append(texts)
    return cells


def test_the_quickstart_notebook_runs_within_a_minute_and_shows_what_it_stores(tmp_path: Path) -> None:
    stored = nbformat.read(NOTEBOOK, as_version=4)
    started = time.monotonic()
    executed = execute(nbformat.read(NOTEBOOK, as_version=4), tmp_path)
    took = time.monotonic() - started
    assert took < BUDGET_S, f"the notebook took {took:.0f} s"
    assert shown(executed) == shown(stored), (
        "examples/quickstart.ipynb shows outputs it no longer produces; refresh them with "
        "`.venv/bin/python tests/integration/test_example_notebook.py`"
    )
    assert not any(text.startswith(("stderr", "error")) for cell in shown(executed) for text in cell)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        refreshed = execute(nbformat.read(NOTEBOOK, as_version=4), Path(directory))
    nbformat.write(refreshed, NOTEBOOK)
    print(f"wrote the outputs of {NOTEBOOK}")
