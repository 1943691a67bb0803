"""Per-partition checkpoints: the engine's state and the next input offset, written as one file."""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

from fraudstream.errors import StateError

__all__ = ["LocalCheckpoints"]

_MAGIC = b"FSCKPT"
_HEADER = struct.Struct("<6sHq32s")  # magic, format version, next offset, sha256 of the state


class LocalCheckpoints:
    """One file per (group, topic, partition); written to a temporary file, synced, then renamed, so
    a crash mid-write leaves the previous checkpoint whole. The offset lives inside the file, so state
    and position can never disagree."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, group: str, topic: str, partition: int) -> Path:
        return self.root / f"{group}.{topic}.{partition}.ckpt"

    def save(self, group: str, topic: str, partition: int, state: bytes, next_offset: int) -> None:
        path = self._path(group, topic, partition)
        temporary = path.with_suffix(".tmp")
        with open(temporary, "wb") as file:
            file.write(_HEADER.pack(_MAGIC, 1, next_offset, hashlib.sha256(state).digest()))
            file.write(state)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)

    def load(self, group: str, topic: str, partition: int) -> tuple[bytes, int] | None:
        path = self._path(group, topic, partition)
        if not path.is_file():
            return None
        data = path.read_bytes()
        if len(data) < _HEADER.size:
            raise StateError(f"{path}: checkpoint is truncated")
        magic, version, next_offset, digest = _HEADER.unpack_from(data)
        state = data[_HEADER.size :]
        if magic != _MAGIC or version != 1 or hashlib.sha256(state).digest() != digest:
            raise StateError(f"{path}: not a readable checkpoint (bad header or checksum)")
        return state, int(next_offset)
