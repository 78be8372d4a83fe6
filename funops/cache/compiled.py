"""The compiled-state cache: a repo as loaded and compiled (its `Project` and `DesiredState`), kept so
that a `plan` or `apply` of an unchanged repo skips reading, validating, compiling and rendering it.

Unlike the no-op cache beside it, an entry says nothing about the nodes: every run still gathers,
diffs and prints as ever; only its input is taken from here. So it serves every run of the same repo
content — plan and apply, a terminal or a pipe, any output format, changes pending or not.

- **Key**: the repo's files (path, mode, content: `key._hash_tree`), git's view of it (commit, branch,
  dirty), the environment variables the repo's files name (a secret's `fromEnv`), funops's own code
  and the installed distributions (`key.code_identity`), Python, and the repo's path. A `--revision`
  or an `--inventory` is never cached (their inputs are not the working tree's files).
- **What the compile read besides the repo's files** (`DesiredState.inputs`: each secret file, which
  may live outside the repo, and each variable, with its value's sha256) is checked again before an
  entry is used: another value, or a file gone, and the repo is loaded and compiled anew.
- **Entry**: `.funops/cache/compiled/<key>.pickle`, 0600 in a 0700 folder, written only when the key
  did not change while the run loaded and compiled. It holds the rendered files, secrets included,
  so it is read only when it and its folder are the user's own and closed to others, and only after
  its HMAC (the repo's cache key, `store.local_key`) checks out: a file that did not come from this
  cache is never unpickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import pickle
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import key as keys
from . import store

if TYPE_CHECKING:
    from ..compile.compiler import DesiredState
    from ..load.project import Project

FOLDER = ".funops/cache/compiled"
KEEP = 4  # entries kept per repo (repo versions): the newest
_MAGIC = b"funops-compiled 1\0"


def enabled(environ: Mapping[str, str]) -> bool:
    """FUNOPS_NO_CACHE=1 turns every cache off; FUNOPS_NO_CACHE=noop the no-op cache only."""
    return environ.get("FUNOPS_NO_CACHE", "") in ("", "noop")


class Compiled:
    """One run's use of the cache: `project` (an entry's, or None: load the repo), then `compile`,
    which make_plan calls in place of compile_project."""

    def __init__(self, root: Path, key: str, project: Project | None, desired: DesiredState | None) -> None:
        self.root, self.key = root, key
        self.project, self._desired = project, desired

    def compile(self, project: Project) -> DesiredState:
        if self._desired is not None and project is self.project:
            return self._desired
        from ..compile.compiler import compile_project

        desired = compile_project(project)
        with contextlib.suppress(Exception):  # a cache never fails a run
            if key_of(self.root, os.environ) == self.key:  # nothing changed while it was read
                _write(self.root, self.key, pickle.dumps((project, desired), pickle.HIGHEST_PROTOCOL))
        return desired


def lookup(root: Path, revision: str | None, inventory: object) -> Compiled | None:
    """The cache's part in loading `root`: None when it takes none (turned off, a --revision or an
    --inventory, a repo too large to key)."""
    if revision is not None or inventory or not enabled(os.environ):
        return None
    key = key_of(root, os.environ)
    if key is None:
        return None
    found = _read(root, key)
    if found is not None:
        project, desired = found
        if _inputs_unchanged(desired.inputs, os.environ):
            return Compiled(root, key, project, desired)
    return Compiled(root, key, None, None)


def key_of(root: Path, environ: Mapping[str, str]) -> str | None:
    tree = hashlib.sha256()
    contents = keys._hash_tree(root, tree)
    if contents is None:
        return None
    named = sorted((k, v) for k, v in environ.items() if keys.named_in(k, contents))
    h = hashlib.sha256(_MAGIC)
    for part in (str(root), repr(named), sys.version, sys.executable, keys.code_identity()):
        h.update(part.encode("utf-8", "surrogateescape") + b"\0")
    h.update(tree.digest())
    h.update(keys._git_view(root))
    return h.hexdigest()


def _inputs_unchanged(inputs: dict[str, str], environ: Mapping[str, str]) -> bool:
    from ..compile.compiler import input_digest
    from ..load.source import read_secret_file

    for name, digest in inputs.items():
        kind, _, what = name.partition(":")
        try:
            value = environ.get(what) if kind == "env" else read_secret_file(Path(what))
        except (OSError, ValueError):
            return False
        if value is None or not hmac.compare_digest(input_digest(value), digest):
            return False
    return True


def _private(path: Path, kind: int) -> bool:
    """Ours, of that kind (no link), and closed to group and others."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_IFMT(st.st_mode) == kind and st.st_uid == os.geteuid() and not st.st_mode & 0o077


def _read(root: Path, key: str) -> tuple[Project, DesiredState] | None:
    folder, secret = root / FOLDER, store.local_key(root)
    path = folder / f"{key}.pickle"
    private = [(folder, stat.S_IFDIR), (path, stat.S_IFREG), (root / store.FOLDER / "key", stat.S_IFREG)]
    if secret is None or not all(_private(p, kind) for p, kind in private):
        return None
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    mac, body = data[:32], data[32:]
    if not hmac.compare_digest(mac, hmac.new(secret, _MAGIC + body, hashlib.sha256).digest()):
        return None
    try:
        found: Any = pickle.loads(body)  # ours: written by _write, checked by its HMAC
    except Exception:  # another funops's classes (the key covers its files, but a cache never fails)
        return None
    return found


def _write(root: Path, key: str, body: bytes) -> None:
    """Written aside and renamed (a reader never sees half of it), signed with the repo's cache key
    (made here when no run made it yet)."""
    secret = store.local_key(root)
    if secret is None:
        store.keep_key(root, os.urandom(32))
        secret = store.local_key(root)
    if secret is None:
        return
    folder = root / FOLDER
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not _private(folder, stat.S_IFDIR):
        return
    tmp = folder / f".{key}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(hmac.new(secret, _MAGIC + body, hashlib.sha256).digest() + body)
    os.replace(tmp, folder / f"{key}.pickle")
    entries = sorted(folder.glob("*.pickle"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in entries[KEEP:]:
        with contextlib.suppress(OSError):
            old.unlink()
