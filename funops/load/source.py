"""Where the repo's files come from: the working tree, or the tree of a git commit (no checkout)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol


@dataclass(frozen=True)
class Revision:
    """What the plan was made from: a commit (and whether the working tree differed from it)."""

    commit: str | None
    dirty: bool
    ref: str  # "working tree" or what the user passed to --revision

    def describe(self) -> str:
        if self.commit is None:
            return f"{self.ref} (not a git repo)"
        short = self.commit[:12]
        if self.ref == "working tree":
            return f"working tree at {short}" + (" (dirty)" if self.dirty else "")
        return f"{self.ref} ({short})"


class Source(Protocol):
    root: Path
    revision: Revision

    def list(self, folder: str) -> list[str]:
        """Repo-relative paths of the YAML files directly in `folder`, sorted."""

    def read(self, path: str) -> str | None:
        """The text of a repo-relative file, or None when it does not exist."""

    def read_bytes(self, path: str) -> bytes | None: ...


class WorkingTree:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.revision = _working_tree_revision(root)

    def list(self, folder: str) -> list[str]:
        base = self.root / folder
        if not base.is_dir():
            return []
        return sorted(
            f"{folder}/{p.name}" for p in base.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()
        )

    def read_bytes(self, path: str) -> bytes | None:
        full = self.root / path
        return full.read_bytes() if full.is_file() else None

    def read(self, path: str) -> str | None:
        data = self.read_bytes(path)
        return None if data is None else data.decode("utf-8")


class GitRevision:
    """The repo as it was at a commit, read from git objects; the working tree is never touched."""

    def __init__(self, root: Path, rev: str) -> None:
        import git  # gitpython is slow to import: only when a revision is asked for

        self.root = root
        repo = git.Repo(root, search_parent_directories=True)
        commit = repo.commit(rev)
        self._tree = commit.tree
        self._prefix = PurePosixPath(os.path.relpath(root.resolve(), Path(repo.working_tree_dir).resolve()))
        self.revision = Revision(commit=commit.hexsha, dirty=False, ref=rev)

    def _blob(self, path: str):
        full = str(self._prefix / path) if str(self._prefix) != "." else path
        try:
            return self._tree / full
        except KeyError:
            return None

    def list(self, folder: str) -> list[str]:
        tree = self._blob(folder)
        if tree is None or tree.type != "tree":
            return []
        return sorted(f"{folder}/{b.name}" for b in tree.blobs if b.name.endswith((".yaml", ".yml")))

    def read_bytes(self, path: str) -> bytes | None:
        blob = self._blob(path)
        if blob is None or blob.type != "blob":
            return None
        return blob.data_stream.read()

    def read(self, path: str) -> str | None:
        data = self.read_bytes(path)
        return None if data is None else data.decode("utf-8")


def _working_tree_revision(root: Path) -> Revision:
    """HEAD and dirtiness via plain git plumbing: cheaper than importing gitpython on every plan."""
    import subprocess

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = git("rev-parse", "--verify", "-q", "HEAD")
    if not commit:
        return Revision(commit=None, dirty=True, ref="working tree")
    # funops's own local files (the journal) do not make the tree dirty.
    status = git("status", "--porcelain", "--untracked-files=normal", "--", ".", ":(exclude).funops")
    return Revision(commit=commit, dirty=bool(status), ref="working tree")


def open_source(root: Path, revision: str | None = None) -> Source:
    return GitRevision(root, revision) if revision else WorkingTree(root)
