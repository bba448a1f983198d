"""Ingest fixtures: the tiny CLIP model loaded once, libraries on copies of the shared test photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from photosearch.config import Settings
from photosearch.db.accounts import default_user
from photosearch.db.libraries import create_library
from photosearch.models import ClipModel, load_clip


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path) -> ClipModel:
    return load_clip(Settings(models_dir=tiny_model_dir.parent, model_name=tiny_model_dir.name, threads=1))


@pytest.fixture
def make_library(db):
    """make_library(*folders, name="lib", **columns) -> the library row."""

    def make(*folders: Path, name: str = "lib", exclusions: list[str] | None = None) -> dict:
        user = default_user(db)
        return create_library(db, user["id"], name, [str(f) for f in folders], exclusions or [])

    return make


def copy_photos(src: Path, dst: Path, names: list[str]) -> list[Path]:
    """Copy some shared photos (found by file name anywhere under `src`) into `dst`, writable."""
    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names:
        found = next(src.rglob(name))
        target = dst / name
        shutil.copyfile(found, target)
        out.append(target)
    return out
