"""A store of versioned model artifacts with a champion and challengers, in a folder or in an
S3-compatible object store (``s3://bucket/prefix``: AWS S3, MinIO)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from fraudstream.core.models import Model, ModelMetadata, load_model
from fraudstream.errors import ModelError

if TYPE_CHECKING:
    import pyarrow.fs as pafs

__all__ = ["Location", "Registry", "champion_model", "load_artifact"]

#: Where a registry lives: a folder, or a URL (``s3://bucket/prefix``, ``file:///folder``). A URL stays
#: a string: ``Path("s3://b/p")`` would turn it into the folder ``s3:/b/p``.
Location: TypeAlias = Path | str

_METADATA = "metadata.json"
_ROLES = "roles.json"


class _Files(Protocol):
    """The few operations the registry makes on where it lives."""

    def read(self, name: str) -> bytes | None: ...
    def replace(self, name: str, data: bytes) -> None: ...
    def versions(self) -> list[str]: ...
    def has(self, version: str) -> bool: ...
    def files(self, version: str) -> dict[str, bytes]: ...
    def add(self, version: str, files: dict[str, bytes]) -> Location: ...


@dataclass(frozen=True)
class _Folder:
    """A registry in a local folder: a version is written aside and renamed into place, roles.json is
    written aside and replaced."""

    root: Path

    def read(self, name: str) -> bytes | None:
        path = self.root / name
        return path.read_bytes() if path.is_file() else None

    def replace(self, name: str, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / name
        temporary = final.with_suffix(".tmp")
        temporary.write_bytes(data)
        os.replace(temporary, final)

    def versions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        # A hidden folder is being written (see add).
        return [p.parent.name for p in self.root.glob(f"*/{_METADATA}") if not p.parent.name.startswith(".")]

    def has(self, version: str) -> bool:
        return (self.root / version / _METADATA).is_file()

    def files(self, version: str) -> dict[str, bytes]:
        return _artifact_files(self.root / version)

    def add(self, version: str, files: dict[str, bytes]) -> Location:
        directory = self.root / version
        if directory.exists():
            raise ModelError(f"model version {version} already exists in {self.root}")
        # Written aside and renamed into place: a model is complete or absent, even when the process
        # is killed while writing it (the demo stops mid-training on Ctrl-C).
        partial = self.root / f".{version}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for name, data in files.items():
            (partial / name).write_bytes(data)
        os.replace(partial, directory)
        return directory


@dataclass(frozen=True)
class _Bucket:
    """A registry under a prefix of an object store, which renames nothing: a version's metadata.json
    is written last and a version is listed only once it exists, so a version half-written (by a
    process killed while saving) is never seen; roles.json is one PUT, whole or absent."""

    url: str
    filesystem: pafs.FileSystem
    root: str  # bucket/prefix

    def _path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def read(self, name: str) -> bytes | None:
        try:
            with self.filesystem.open_input_stream(self._path(name)) as stream:
                return bytes(stream.read())
        except FileNotFoundError:
            return None

    def replace(self, name: str, data: bytes) -> None:
        with self.filesystem.open_output_stream(self._path(name)) as stream:
            stream.write(data)

    def versions(self) -> list[str]:
        import pyarrow.fs as pafs

        # One listing (a few requests) for the whole registry, rather than one per version.
        listed = self.filesystem.get_file_info(
            pafs.FileSelector(self.root, allow_not_found=True, recursive=True)
        )
        found = []
        for info in listed:
            relative = info.path[len(self.root) + 1 :].split("/")
            if len(relative) == 2 and relative[1] == _METADATA and not relative[0].startswith("."):
                found.append(relative[0])
        return found

    def has(self, version: str) -> bool:
        import pyarrow.fs as pafs

        info = self.filesystem.get_file_info(self._path(version, _METADATA))
        return bool(info.type == pafs.FileType.File)

    def files(self, version: str) -> dict[str, bytes]:
        import pyarrow.fs as pafs

        files = {}
        listed = self.filesystem.get_file_info(pafs.FileSelector(self._path(version)))
        for info in listed:
            if info.type == pafs.FileType.File and not info.base_name.endswith(".md"):
                with self.filesystem.open_input_stream(info.path) as stream:
                    files[info.base_name] = bytes(stream.read())
        return files

    def add(self, version: str, files: dict[str, bytes]) -> Location:
        if self.has(version):
            raise ModelError(f"model version {version} already exists in {self.url}")
        # metadata.json last: until it is there, the version is not listed and cannot be loaded.
        for name in sorted(files, key=lambda name: name == _METADATA):
            with self.filesystem.open_output_stream(self._path(version, name)) as stream:
                stream.write(files[name])
        return f"{self.url.rstrip('/')}/{version}"


@dataclass(frozen=True)
class Registry:
    """``root/<version>/`` holds each model's files; ``root/roles.json`` says who is champion.

    ``root`` is a folder, or ``s3://bucket/prefix`` in an S3-compatible object store (credentials
    from the standard AWS settings; the endpoint, for MinIO, from ``endpoint_url``, that is
    FRAUDSTREAM_S3_ENDPOINT_URL, else AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL). Wherever a command
    takes a model, it accepts a version id, ``champion`` or ``latest``.
    """

    root: Location
    endpoint_url: str | None = field(default=None, compare=False)

    @cached_property
    def _files(self) -> _Files:
        if isinstance(self.root, Path) or "://" not in self.root:
            return _Folder(Path(self.root))
        import pyarrow.fs as pafs

        from fraudstream.storage.objects import open_location

        filesystem, root = open_location(
            self.root, endpoint_url=self.endpoint_url, what="registry", setting="FRAUDSTREAM_REGISTRY_DIR"
        )
        if isinstance(filesystem, pafs.LocalFileSystem):  # file:///folder
            return _Folder(Path(root))
        return _Bucket(self.root, filesystem, root)

    def roles(self) -> dict[str, Any]:
        data = self._files.read(_ROLES)
        if data is None:
            return {"champion": None, "challengers": []}
        roles: dict[str, Any] = json.loads(data)
        return roles

    @staticmethod
    def role_in(roles: dict[str, Any], version: str) -> str | None:
        """``champion``, ``challenger`` or None: a version's role in ``roles`` (as `roles()` gives)."""
        if version == roles.get("champion"):
            return "champion"
        return "challenger" if version in roles.get("challengers", []) else None

    def _write_roles(self, roles: dict[str, Any]) -> None:
        self._files.replace(_ROLES, json.dumps(roles, indent=2).encode())

    def save(self, model: Model, card: str | None = None) -> Location:
        """Store a model's artifact files (and its Markdown model card) under its version; where they
        are (a folder, or the version's URL in an object store)."""
        files = dict(model.to_artifact())
        if card is not None:
            files["card.md"] = card.encode("utf-8")
        return self._files.add(model.metadata.version, files)

    def versions(self) -> list[ModelMetadata]:
        """Every stored model's metadata, oldest first."""
        found = []
        for version in self._files.versions():
            data = self._files.read(f"{version}/{_METADATA}")
            if data is not None:
                found.append(ModelMetadata.from_json(data))
        return sorted(found, key=lambda m: (m.created, m.version))

    def resolve(self, reference: str) -> str:
        """A version id for ``champion``, ``latest`` or an explicit version."""
        if reference == "champion":
            champion = self.roles()["champion"]
            if champion is None:
                raise ModelError(
                    f"no champion model in {self.root}; promote one with `fraudstream models promote`"
                )
            return str(champion)
        if reference == "latest":
            versions = self.versions()
            if not versions:
                raise ModelError(f"no models in {self.root}; train one with `fraudstream train`")
            return versions[-1].version
        if "/" in reference or reference.startswith(".") or not self._files.has(reference):
            known = ", ".join(m.version for m in self.versions()) or "none"
            raise ModelError(f"no model version {reference!r} in {self.root} (known: {known})")
        return reference

    def card(self, reference: str) -> str:
        """A model's card (Markdown): kind, training data, metrics."""
        version = self.resolve(reference)
        data = self._files.read(f"{version}/card.md")
        if data is None:
            raise ModelError(f"model version {version} in {self.root} has no model card")
        return data.decode("utf-8")

    def load(self, reference: str, expected_features: tuple[str, ...] | None = None) -> Model:
        return load_model(self._files.files(self.resolve(reference)), expected_features)

    def promote(self, reference: str) -> str:
        version = self.resolve(reference)
        roles = self.roles()
        roles["challengers"] = [c for c in roles.get("challengers", []) if c != version]
        roles["champion"] = version
        self._write_roles(roles)
        return version

    def shadow(self, reference: str) -> str:
        """Make a model a challenger: it scores in shadow next to the champion."""
        version = self.resolve(reference)
        roles = self.roles()
        if version not in roles.get("challengers", []) and version != roles.get("champion"):
            roles.setdefault("challengers", []).append(version)
        self._write_roles(roles)
        return version


def _artifact_files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file() and p.suffix != ".md"}


def load_artifact(directory: Path, expected_features: tuple[str, ...] | None = None) -> Model:
    """The model in an artifact directory (its files as the registry keeps them; the model card,
    a Markdown file, is not read)."""
    return load_model(_artifact_files(directory), expected_features)


def champion_model(
    model_path: Path | None,
    models_dir: Location | None,
    expected_features: tuple[str, ...],
    *,
    endpoint_url: str | None = None,
) -> Model | None:
    """The model to decide with: the artifact in ``model_path`` if given, else the champion of the
    registry in ``models_dir`` (an S3 one at ``endpoint_url``, if given); None when neither has one
    (rules alone decide)."""
    if model_path is not None:
        return load_artifact(model_path, expected_features)
    if models_dir is None:
        return None
    registry = Registry(models_dir, endpoint_url)
    if registry.roles().get("champion") is None:
        return None
    return registry.load("champion", expected_features)
