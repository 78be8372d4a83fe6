"""Shared fixtures: a scratch copy of the bundled example repo."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_PARTS = ["funops.yaml", "inventory", "manifests", "templates", "certs", "secrets"]


def copy_example(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for part in EXAMPLE_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part)
        else:
            shutil.copy2(src, dest / part)
    return dest


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A private copy of the bundled example (not a git repo), safe to edit."""
    return copy_example(tmp_path / "repo")
