"""Where numba keeps the compiled kernels: one folder per version of the kernels' source code.

numba checks a cached kernel only against its own file: a kernel that calls one from another file
(the feature kernels are split by subject) would keep running the old callee from the cache after an
edit or an upgrade that changed only the callee's file. Keyed by a fingerprint of every module that
uses numba, the cache is rebuilt whenever any of them changes, and a read-only install (its
``__pycache__`` unwritable) still caches in the user's cache folder.

This runs when ``fraudstream`` is first imported, before numba is: numba reads its cache folder from
the environment at import, so it cannot come from `fraudstream.config.Settings`.
``FRAUDSTREAM_KERNEL_CACHE`` chooses the parent folder; ``NUMBA_CACHE_DIR``, when set, is left alone.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

__all__ = ["cache_folder", "cache_root", "fingerprint", "use_versioned_cache"]

_PACKAGE = Path(__file__).resolve().parent
_IMPORTS_NUMBA = re.compile(rb"^\s*(?:from|import) numba\b", re.MULTILINE)


def fingerprint(root: Path = _PACKAGE) -> str:
    """A digest of the name and text of every module under ``root`` that imports numba (a module
    that only mentions it, as this one does, is not a kernel).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     kernel = Path(folder, "k.py")
    ...     _ = kernel.write_text("from numba import njit")
    ...     before = fingerprint(Path(folder))
    ...     _ = Path(folder, "plain.py").write_text("# not numba")  # no kernel: no new key
    ...     same = fingerprint(Path(folder)) == before
    ...     _ = kernel.write_text("from numba import njit  # edited")
    ...     (same, fingerprint(Path(folder)) != before)
    (True, True)
    """
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        text = path.read_bytes()
        if _IMPORTS_NUMBA.search(text):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + text + b"\0")
    return digest.hexdigest()[:16]


def cache_root() -> Path | None:
    """``FRAUDSTREAM_KERNEL_CACHE``, else the user's cache folder (``XDG_CACHE_HOME``, ~/.cache):
    where fraudstream keeps what it builds once and reads in later processes; None without a home."""
    parent = os.environ.get("FRAUDSTREAM_KERNEL_CACHE") or os.environ.get("XDG_CACHE_HOME")
    if parent:
        return Path(parent)
    try:
        return Path.home() / ".cache"
    except RuntimeError:  # no home folder to be found
        return None


def cache_folder() -> Path:
    """`cache_root`/fraudstream-kernels/<fingerprint> (a temporary folder's without a home)."""
    root = cache_root()
    base = root if root is not None else Path(tempfile.gettempdir())
    return base / "fraudstream-kernels" / fingerprint()


def use_versioned_cache() -> None:
    """Point numba at `cache_folder`, unless NUMBA_CACHE_DIR is set or the folder cannot be made
    (numba then caches beside the code, as it does by default)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    folder = cache_folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    if os.access(folder, os.W_OK):
        os.environ["NUMBA_CACHE_DIR"] = str(folder)
