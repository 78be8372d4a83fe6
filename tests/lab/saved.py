"""What the saved-plan lab tests share: the example repo in git, applied (the apply job's keys:
tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

from lab import Lab

from .fleet import apply, make_repo
from .test_releases import commit, git


def applied_example(lab: Lab, path: Path) -> Path:
    """The example in a git repo of its own (`.funops/` ignored), committed and applied."""
    return committed_and_applied(make_repo(lab, path))


def committed_and_applied(path: Path) -> Path:
    """A repo made by make_repo, in git (`.funops/` ignored), committed and applied."""
    (path / ".gitignore").write_text(".funops/\n")
    git(path, "init", "-q")
    commit(path, "example")
    code, _, err = apply(path)
    assert code == 0, err
    return path
