"""Compare the feature state of two git revisions in one process, on the same moments of the machine.

Run: ``.venv/bin/python bench/features_ab.py 5cebb0e HEAD`` (any revisions, two or more; ``.``
means the working tree).

On shared VMs one run of unchanged code moves 20-30% from one minute to the next, more than most
changes to the kernels are worth. Here each revision's ``features/state.py`` and its kernels
(``kernels.py``, or the ``kernels`` package since they were split by subject) are loaded side by
side as separate modules; their states are warmed with the same first half of the bench's
synthetic stream, then fed the second half in segments of 16,384 events at batch 1,024,
taking turns (the order flips every segment). Each prints ns per event in steady state, and the
script checks that every revision computed the same features.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from core import synthetic_events  # bench/core.py: the script's folder is on the path
from fraudstream.core.features import FeatureConfig

ROOT = Path(__file__).resolve().parent.parent
KERNELS = "src/fraudstream/core/features/kernels"


def source(revision: str, name: str) -> str:
    path = f"src/fraudstream/core/features/{name}"
    if revision == ".":
        return (ROOT / path).read_text()
    return subprocess.run(
        ["git", "show", f"{revision}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


def kernel_files(revision: str) -> list[str]:
    """The revision's kernel sources under ``features/``: the modules of the ``kernels`` package, or
    ``kernels.py`` in the revisions before it."""
    if revision == ".":
        names = sorted(path.name for path in (ROOT / KERNELS).glob("*.py"))
    else:
        listed = subprocess.run(
            ["git", "ls-tree", "--name-only", revision, f"{KERNELS}/"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        names = [Path(path).name for path in listed if path.endswith(".py")]
    return [f"kernels/{name}" for name in names] or ["kernels.py"]


def load(revision: str, position: int, folder: Path) -> ModuleType:
    """The revision's ``state`` module, importing its own ``kernels`` (a package per revision)."""
    package = f"ab{position}"
    (folder / package).mkdir()
    (folder / package / "__init__.py").write_text("")
    for name in [*kernel_files(revision), "state.py"]:
        text = (
            source(revision, name)
            .replace("from fraudstream.core.features import kernels", f"from {package} import kernels")
            .replace("fraudstream.core.features.kernels", f"{package}.kernels")
        )
        (folder / package / name).parent.mkdir(exist_ok=True)
        (folder / package / name).write_text(text)
    spec = importlib.util.spec_from_file_location(f"{package}.state", folder / package / "state.py")
    assert spec is not None
    assert spec.loader is not None
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("revisions", nargs="+", help="git revisions to compare ('.' = working tree)")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args()
    if len(args.revisions) < 2:
        parser.error("give two revisions or more")

    batch, _ = synthetic_events(args.events, args.users)
    with tempfile.TemporaryDirectory() as folder:
        modules = [load(r, i, Path(folder)) for i, r in enumerate(args.revisions)]
        states = [m.FeatureState(FeatureConfig()) for m in modules]
        half = args.events // 2
        for state in states:
            for i in range(0, half, 8192):
                state.compute(batch.slice(i, min(i + 8192, half)))
        segment = 16_384
        seconds = [0.0] * len(states)
        same = True
        starts = range(half, args.events - segment + 1, segment)
        for k, start in enumerate(starts):
            order = list(range(len(states)))
            if k % 2:
                order.reverse()
            last: list[np.ndarray] = [np.zeros(0)] * len(states)
            for j in order:
                began = time.perf_counter()
                for i in range(start, start + segment, 1024):
                    last[j] = states[j].compute(batch.slice(i, i + 1024)).values
                seconds[j] += time.perf_counter() - began
            same &= all(np.array_equal(last[0], values, equal_nan=True) for values in last)
        events = len(starts) * segment
        for revision, spent in zip(args.revisions, seconds):
            print(f"{revision:>12}: {spent / events * 1e9:7,.0f} ns/event")
        print("same features in every revision:", same)


if __name__ == "__main__":
    main()
