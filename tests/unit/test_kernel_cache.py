"""Compiled kernels are cached in a folder named after the kernels' source, never beside stale code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fraudstream.kernel_cache import fingerprint

COMPILE_ONE = (
    "import os, fraudstream; from fraudstream.core.geo import haversine_km_scalar; "
    "haversine_km_scalar(0.0, 0.0, 1.0, 1.0); print(os.environ['NUMBA_CACHE_DIR'])"
)


def test_kernels_compile_into_a_folder_named_after_their_source(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["FRAUDSTREAM_KERNEL_CACHE"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", COMPILE_ONE], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip())
    assert folder == tmp_path / "fraudstream-kernels" / fingerprint()
    assert list(folder.rglob("*.nbi")), "numba wrote no cache index there"


def test_a_cache_folder_chosen_by_the_user_is_kept(tmp_path: Path) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "mine")}
    done = subprocess.run(
        [sys.executable, "-c", "import os, fraudstream; print(os.environ['NUMBA_CACHE_DIR'])"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.stdout.strip() == str(tmp_path / "mine")
