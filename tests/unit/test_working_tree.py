"""The working tree's revision: HEAD's commit and whether the tree differs from it, as plans, apply's
refusal of a dirty tree and the release records take it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from funops.load.source import WorkingTree


def _git(root: Path, *args: str) -> str:
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"]
    return subprocess.run(
        ["git", *ident, "-C", str(root), *args], check=True, capture_output=True, text=True
    ).stdout


def _revision(repo: Path) -> tuple[str | None, bool]:
    revision = WorkingTree(repo).revision
    return revision.commit, revision.dirty


def test_the_revision_follows_the_tree(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    assert _revision(repo) == (None, True)  # no git
    _git(repo, "init", "-q")
    (repo / "funops.yaml").write_text("parallel: 2\n")
    assert _revision(repo) == (None, True)  # no commit yet
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "first")
    head = _git(repo, "rev-parse", "HEAD").strip()
    assert _revision(repo) == (head, False)
    (repo / ".funops").mkdir()
    (repo / ".funops" / "journal.json").write_text("{}")  # funops's own files: still clean
    assert _revision(repo) == (head, False)
    (repo / "funops.yaml").write_text("parallel: 3\n")  # a tracked file changed
    assert _revision(repo) == (head, True)
    _git(repo, "checkout", "-q", "--", "funops.yaml")
    (repo / "manifests").mkdir()
    (repo / "manifests" / "web.yaml").write_text("kind: Application\n")  # an untracked one
    assert _revision(repo) == (head, True)
    _git(repo, "checkout", "-q", "--detach")
    assert _revision(repo)[0] == head


def test_only_the_funops_repo_counts_in_a_bigger_git_repo(tmp_path: Path) -> None:
    """A funops repo in a subdirectory: what changes beside it does not make it dirty."""
    _git(tmp_path, "init", "-q")
    repo = tmp_path / "deploy"
    repo.mkdir()
    (repo / "funops.yaml").write_text("parallel: 2\n")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "first")
    (tmp_path / "README").write_text("elsewhere\n")
    assert not _revision(repo)[1]
