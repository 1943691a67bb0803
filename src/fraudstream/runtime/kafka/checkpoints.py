"""Per-partition checkpoints: the engine's state and the next input offset, saved as one unit.

Three stores share one interface (`save`, `load`), chosen by URL with `checkpoint_store`: a local
directory, a PostgreSQL table, or an S3 bucket. Each keeps state and offset together, so they can
never disagree, and checks a SHA-256 of the state when reading it back.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias
from urllib.parse import unquote, urlsplit

from fraudstream.errors import ConfigError, StateError

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "CheckpointStore",
    "LocalCheckpoints",
    "PostgresCheckpoints",
    "S3Checkpoints",
    "checkpoint_store",
]

_MAGIC = b"FSCKPT"
_HEADER = struct.Struct("<6sHq32s")  # magic, format version, next offset, sha256 of the state

#: A partition's state: its bytes, or pieces of them to store one after the other (a large state is
#: then never copied whole just to be written out).
State: TypeAlias = bytes | Sequence[bytes | memoryview]


class CheckpointStore(Protocol):
    """Where a worker keeps each partition's state together with its next input offset."""

    def save(self, group: str, topic: str, partition: int, state: State, next_offset: int) -> None: ...

    def load(self, group: str, topic: str, partition: int) -> tuple[bytes, int] | None: ...


def checkpoint_store(url_or_path: str | Path, *, s3_endpoint_url: str | None = None) -> CheckpointStore:
    """The store a URL names: a path or ``file://`` → local files, ``postgresql://`` (or
    ``postgresql+psycopg://``) → a PostgreSQL table, ``s3://bucket/prefix`` → S3 objects
    (at ``s3_endpoint_url`` if given, e.g. MinIO).

    >>> type(checkpoint_store("data/checkpoints")).__name__
    'LocalCheckpoints'
    >>> checkpoint_store("ftp://host/x")
    Traceback (most recent call last):
    ...
    fraudstream.errors.ConfigError: checkpoint location 'ftp://host/x': scheme 'ftp' is not supported; \
use a directory path, file://, postgresql:// (or postgresql+psycopg://) or s3://bucket/prefix \
(--checkpoints, FRAUDSTREAM_CHECKPOINT_URL)
    """
    if isinstance(url_or_path, Path):
        return LocalCheckpoints(url_or_path)
    scheme = urlsplit(url_or_path).scheme.lower() if "://" in url_or_path else ""
    if scheme == "":
        return LocalCheckpoints(Path(url_or_path))
    if scheme == "file":
        return LocalCheckpoints(Path(unquote(urlsplit(url_or_path).path)))
    if scheme == "postgresql" or scheme.startswith("postgresql+"):
        return PostgresCheckpoints(url_or_path)
    if scheme == "s3":
        return S3Checkpoints(url_or_path, endpoint_url=s3_endpoint_url)
    raise ConfigError(
        f"checkpoint location {url_or_path!r}: scheme {scheme!r} is not supported; use a directory path, "
        "file://, postgresql:// (or postgresql+psycopg://) or s3://bucket/prefix "
        "(--checkpoints, FRAUDSTREAM_CHECKPOINT_URL)"
    )


def _pieces(state: State) -> Sequence[bytes | memoryview]:
    return [state] if isinstance(state, bytes) else state


def _digest(state: State) -> bytes:
    digest = hashlib.sha256()
    for piece in _pieces(state):
        digest.update(piece)
    return digest.digest()


def _encode(state: State, next_offset: int) -> list[bytes | memoryview]:
    """The pieces of a checkpoint file (or object): header, then the state."""
    return [_HEADER.pack(_MAGIC, 1, next_offset, _digest(state)), *_pieces(state)]


def _decode(data: bytes, where: str) -> tuple[bytes, int]:
    if len(data) < _HEADER.size:
        raise StateError(f"{where}: checkpoint is truncated")
    magic, version, next_offset, digest = _HEADER.unpack_from(data)
    state = data[_HEADER.size :]
    if magic != _MAGIC or version != 1 or hashlib.sha256(state).digest() != digest:
        raise StateError(f"{where}: not a readable checkpoint (bad header or checksum)")
    return state, int(next_offset)


class LocalCheckpoints:
    """One file per (group, topic, partition); written to a temporary file, synced, then renamed, so
    a crash mid-write leaves the previous checkpoint whole. The offset lives inside the file, so state
    and position can never disagree."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, group: str, topic: str, partition: int) -> Path:
        return self.root / f"{group}.{topic}.{partition}.ckpt"

    def save(self, group: str, topic: str, partition: int, state: State, next_offset: int) -> None:
        path = self._path(group, topic, partition)
        temporary = path.with_suffix(".tmp")
        with open(temporary, "wb") as file:
            file.writelines(_encode(state, next_offset))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)

    def load(self, group: str, topic: str, partition: int) -> tuple[bytes, int] | None:
        path = self._path(group, topic, partition)
        if not path.is_file():
            return None
        return _decode(path.read_bytes(), str(path))


class PostgresCheckpoints:
    """One row per (group, topic, partition) in ``fraudstream_checkpoints`` (created if missing);
    a save is one UPSERT in one transaction, so state and offset change together or not at all."""

    TABLE = "fraudstream_checkpoints"

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        if url.startswith("postgresql://"):  # the driver the project ships with
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        metadata = sa.MetaData()
        self.table = sa.Table(
            self.TABLE,
            metadata,
            sa.Column("group_id", sa.Text, primary_key=True),
            sa.Column("topic", sa.Text, primary_key=True),
            sa.Column("partition", sa.Integer, primary_key=True),
            sa.Column("next_offset", sa.BigInteger, nullable=False),
            sa.Column("state", sa.LargeBinary, nullable=False),
            sa.Column("sha256", sa.LargeBinary(32), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        )
        metadata.create_all(self.engine, checkfirst=True)

    def _key(self, group: str, topic: str, partition: int) -> sa.ColumnElement[bool]:
        c = self.table.c
        return (c.group_id == group) & (c.topic == topic) & (c.partition == partition)

    def save(self, group: str, topic: str, partition: int, state: State, next_offset: int) -> None:
        import sqlalchemy as sa
        from sqlalchemy.dialects.postgresql import insert

        values: dict[str, Any] = {
            "group_id": group,
            "topic": topic,
            "partition": partition,
            "next_offset": next_offset,
            "state": b"".join(_pieces(state)),
            "sha256": _digest(state),
        }
        statement = insert(self.table).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["group_id", "topic", "partition"],
            set_={
                "next_offset": statement.excluded.next_offset,
                "state": statement.excluded.state,
                "sha256": statement.excluded.sha256,
                "updated_at": sa.func.now(),
            },
        )
        with self.engine.begin() as connection:
            connection.execute(statement)

    def load(self, group: str, topic: str, partition: int) -> tuple[bytes, int] | None:
        import sqlalchemy as sa

        c = self.table.c
        query = sa.select(c.state, c.next_offset, c.sha256).where(self._key(group, topic, partition))
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        state = bytes(row.state)
        if hashlib.sha256(state).digest() != bytes(row.sha256):
            raise StateError(
                f"{self.TABLE} row ({group}, {topic}, {partition}): checksum does not match the state; "
                "delete the row to start the partition from its earliest offset"
            )
        return state, int(row.next_offset)


class S3Checkpoints:
    """One object per (group, topic, partition) under ``s3://bucket/prefix``, holding the same
    header and state as a local checkpoint file; a single PUT replaces an object atomically.

    ``endpoint_url`` is for S3-compatible stores (the worker takes it from
    ``FRAUDSTREAM_S3_ENDPOINT_URL``); without it boto3 uses ``AWS_ENDPOINT_URL`` or AWS itself.
    Credentials and region come from the standard AWS settings. boto3 is imported only here."""

    def __init__(self, url: str, *, endpoint_url: str | None = None) -> None:
        try:
            import boto3
        except ImportError as exc:
            raise ConfigError(
                f"{url}: S3 checkpoints need boto3: pip install 'fraudstream[s3]' (or 'boto3>=1.34,<2')"
            ) from exc
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ConfigError(f"checkpoint location {url!r}: name a bucket, as in s3://bucket/prefix")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url)

    def _key(self, group: str, topic: str, partition: int) -> str:
        name = f"{group}.{topic}.{partition}.ckpt"
        return f"{self.prefix}/{name}" if self.prefix else name

    def save(self, group: str, topic: str, partition: int, state: State, next_offset: int) -> None:
        body = b"".join(_encode(state, next_offset))
        self.client.put_object(Bucket=self.bucket, Key=self._key(group, topic, partition), Body=body)

    def load(self, group: str, topic: str, partition: int) -> tuple[bytes, int] | None:
        key = self._key(group, topic, partition)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.NoSuchKey:
            return None
        return _decode(response["Body"].read(), f"s3://{self.bucket}/{key}")
