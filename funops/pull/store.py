"""Where `funops publish` writes: a store users already run. One small interface; today a directory
(what nginx or any web server serves to the nodes). Writes are atomic (aside, then renamed), so a node
reading over HTTP never sees half a file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from ..errors import FunopsError


class Store(Protocol):
    url: str

    def read(self, key: str) -> bytes | None: ...

    def write(self, key: str, data: bytes) -> None: ...


class DirectoryStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def read(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(f".{path.name}.{os.getpid()}.new")
        with open(aside, "wb") as f:  # 0644 under a usual umask: the web server reads it (all is signed)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(aside, path)


def open_store(where: str | None, repo_root: Path) -> Store:
    """A directory (a path, relative to the repo, or file://); the nodes read it over http(s)."""
    if not where:
        raise FunopsError("no store: pass --store DIR or set pull.store in funops.yaml")
    url = urlsplit(where)
    if url.scheme in ("http", "https"):
        raise FunopsError(
            f"{where}: publish writes to the directory the web server serves "
            f"(the nodes read it over {url.scheme})"
        )
    if url.scheme not in ("", "file"):
        raise FunopsError(f"{where}: a store is a directory (or file:// URL)")
    path = Path(url.path if url.scheme == "file" else where)
    return DirectoryStore(path if path.is_absolute() else repo_root / path)
