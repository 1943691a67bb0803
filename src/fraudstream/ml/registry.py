"""A directory of versioned model artifacts with a champion and challengers."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fraudstream.core.models import Model, ModelMetadata, load_model
from fraudstream.errors import ModelError

__all__ = ["Registry", "champion_model", "load_artifact"]


@dataclass(frozen=True)
class Registry:
    """``root/<version>/`` holds each model's files; ``root/roles.json`` says who is champion.

    Wherever a command takes a model, it accepts a version id, ``champion`` or ``latest``.
    """

    root: Path

    def _roles_file(self) -> Path:
        return self.root / "roles.json"

    def roles(self) -> dict[str, Any]:
        if not self._roles_file().is_file():
            return {"champion": None, "challengers": []}
        data: dict[str, Any] = json.loads(self._roles_file().read_text())
        return data

    @staticmethod
    def role_in(roles: dict[str, Any], version: str) -> str | None:
        """``champion``, ``challenger`` or None: a version's role in ``roles`` (as `roles()` gives)."""
        if version == roles.get("champion"):
            return "champion"
        return "challenger" if version in roles.get("challengers", []) else None

    def _write_roles(self, roles: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        temporary = self._roles_file().with_suffix(".tmp")
        temporary.write_text(json.dumps(roles, indent=2))
        os.replace(temporary, self._roles_file())

    def save(self, model: Model, card: str | None = None) -> Path:
        """Store a model's artifact files (and its Markdown model card) under its version."""
        directory = self.root / model.metadata.version
        if directory.exists():
            raise ModelError(f"model version {model.metadata.version} already exists in {self.root}")
        # Written aside and renamed into place: a model is complete or absent, even when the process
        # is killed while writing it (the demo stops mid-training on Ctrl-C).
        partial = self.root / f".{model.metadata.version}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for name, data in model.to_artifact().items():
            (partial / name).write_bytes(data)
        if card is not None:
            (partial / "card.md").write_text(card, encoding="utf-8")
        os.replace(partial, directory)
        return directory

    def versions(self) -> list[ModelMetadata]:
        """Every stored model's metadata, oldest first."""
        found = []
        if self.root.is_dir():
            for path in self.root.glob("*/metadata.json"):
                if path.parent.name.startswith("."):  # being written (see save)
                    continue
                found.append(ModelMetadata.from_json(path.read_bytes()))
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
        if not (self.root / reference / "metadata.json").is_file():
            known = ", ".join(m.version for m in self.versions()) or "none"
            raise ModelError(f"no model version {reference!r} in {self.root} (known: {known})")
        return reference

    def load(self, reference: str, expected_features: tuple[str, ...] | None = None) -> Model:
        return load_artifact(self.root / self.resolve(reference), expected_features)

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


def load_artifact(directory: Path, expected_features: tuple[str, ...] | None = None) -> Model:
    """The model in an artifact directory (its files as the registry keeps them; the model card,
    a Markdown file, is not read)."""
    files = {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file() and p.suffix != ".md"}
    return load_model(files, expected_features)


def champion_model(
    model_path: Path | None, models_dir: Path | None, expected_features: tuple[str, ...]
) -> Model | None:
    """The model to decide with: the artifact in ``model_path`` if given, else the champion of the
    registry in ``models_dir``; None when neither has one (rules alone decide)."""
    if model_path is not None:
        return load_artifact(model_path, expected_features)
    if models_dir is None:
        return None
    registry = Registry(models_dir)
    if registry.roles().get("champion") is None:
        return None
    return registry.load("champion", expected_features)
