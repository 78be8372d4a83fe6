"""Where the repo's files come from: the working tree, or the tree of a git commit (no checkout)."""

from __future__ import annotations

import os
import posixpath
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from ..errors import FunopsError


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


class SourceError(ValueError):
    """A repo path that exists but cannot be read as a file of the repo: a symlink leading outside the
    repo (or nowhere), a directory, a FIFO or device (never opened: reading a FIFO would hang)."""


_MAX_LINKS = 8  # symlinks followed inside a commit's tree before giving up (a loop)


class RevisionError(FunopsError):
    """A --revision that git cannot read (gitpython's errors end here, as ours)."""


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
        """Every *.yaml entry, whatever it is: one that is not a readable file is an error on reading,
        never silently skipped."""
        base = self.root / folder
        if not base.is_dir():
            return []
        return sorted(f"{folder}/{p.name}" for p in base.iterdir() if p.suffix in (".yaml", ".yml"))

    def read_bytes(self, path: str) -> bytes | None:
        full = self.root / path
        if not full.is_symlink() and not full.exists():
            return None
        real = full.resolve()
        if not real.is_relative_to(self.root.resolve()):
            raise SourceError(f"{path} is a symlink to {real}, outside the repo")
        try:
            mode = real.stat().st_mode
        except FileNotFoundError:
            raise SourceError(f"{path} is a dangling symlink (to {os.readlink(full)})") from None
        if not stat.S_ISREG(mode):
            raise SourceError(f"{path} is not a regular file (it is {_file_type(mode)})")
        return real.read_bytes()

    def read(self, path: str) -> str | None:
        data = self.read_bytes(path)
        return None if data is None else data.decode("utf-8")


class GitRevision:
    """The repo as it was at a commit, read from git objects; the working tree is never touched."""

    def __init__(self, root: Path, rev: str) -> None:
        import git  # gitpython is slow to import: only when a revision is asked for
        from gitdb.exc import ODBError

        self.root = root
        try:
            repo = git.Repo(root, search_parent_directories=True)
            commit = repo.commit(rev)
        except (git.exc.GitError, ODBError, ValueError) as exc:  # not a repo, no such revision
            raise RevisionError(f"cannot read revision {rev!r}: {exc}") from exc
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
        entries = [*tree.blobs, *tree.trees]
        return sorted(f"{folder}/{b.name}" for b in entries if b.name.endswith((".yaml", ".yml")))

    def read_bytes(self, path: str) -> bytes | None:
        """A file of the commit; a symlink is followed while it stays inside the repo."""
        current = path
        for _ in range(_MAX_LINKS):
            blob = self._blob(current)
            if blob is None:
                return None if current == path else _dangling(path, current)
            if blob.type != "blob":
                raise SourceError(f"{path} is not a regular file (it is a directory)")
            if blob.mode != 0o120000:  # not a symlink
                return blob.data_stream.read()
            target = blob.data_stream.read().decode("utf-8", "replace")
            current = posixpath.normpath(posixpath.join(posixpath.dirname(current), target))
            if target.startswith("/") or current == ".." or current.startswith("../"):
                raise SourceError(f"{path} is a symlink to {target}, outside the repo")
        raise SourceError(f"{path}: too many levels of symlinks")

    def read(self, path: str) -> str | None:
        data = self.read_bytes(path)
        return None if data is None else data.decode("utf-8")


def _dangling(path: str, target: str) -> bytes:
    raise SourceError(f"{path} is a dangling symlink (to {target})")


def _file_type(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a file"


def _working_tree_revision(root: Path) -> Revision:
    """HEAD and dirtiness from one `git status` (its v2 header carries HEAD's commit): cheaper than
    importing gitpython, or than a second git, on every plan."""
    import subprocess

    try:
        out = subprocess.run(
            # funops's own local files (the journal) do not make the tree dirty.
            ["git", "-C", str(root), "status", "--porcelain=v2", "--branch", "--untracked-files=normal",
             "--", ".", ":(exclude).funops"],
            capture_output=True, text=True, errors="replace", timeout=10, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return Revision(commit=None, dirty=True, ref="working tree")  # not a git repo (or no git)
    lines = out.stdout.splitlines()
    oid = next((line.split()[2] for line in lines if line.startswith("# branch.oid ")), "(initial)")
    if oid == "(initial)":  # no commit yet
        return Revision(commit=None, dirty=True, ref="working tree")
    dirty = any(not line.startswith("#") for line in lines)
    return Revision(commit=oid, dirty=dirty, ref="working tree")


def open_source(root: Path, revision: str | None = None) -> Source:
    return GitRevision(root, revision) if revision else WorkingTree(root)


def read_secret_file(file: Path) -> str:
    """A secret file's text: a regular file (a FIFO or device would block or never end: opened
    non-blocking and refused), UTF-8 (else ValueError naming the byte offset, not a traceback)."""
    fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        data = handle.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start})") from None
