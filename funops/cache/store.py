"""Where recorded no-op runs live: `<repo>/.funops/cache/noop/<key>.json`, 0600 in a 0700 folder,
beside the agent tokens `.funops/` already holds (not in git). An entry holds no secret: the nodes'
addresses and credential *paths*, the probes sent (resource ids), digests of the answers and the
output a person saw. The newest few are kept."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

FOLDER = ".funops/cache/noop"
FORMAT = 1
KEEP = 16  # entries kept per repo (command lines by repo versions): older ones are removed


def path_of(root: Path, key: str) -> Path:
    return root / FOLDER / f"{key}.json"


def read(root: Path, key: str) -> dict[str, Any] | None:
    try:
        with open(path_of(root, key), encoding="utf-8") as f:
            entry = json.load(f)
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) and entry.get("format") == FORMAT else None


def write(root: Path, key: str, entry: dict[str, Any]) -> None:
    """Written aside and renamed (a reader never sees half of it); a failure is silent: a cache."""
    folder = root / FOLDER
    with contextlib.suppress(OSError):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = path_of(root, key)
        tmp = folder / f".{key}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({**entry, "format": FORMAT}, f, sort_keys=True)
        os.replace(tmp, target)
        _prune(folder)


def local_key(root: Path) -> bytes | None:
    """This repo's key for the answers' digests (32 random bytes, 0600), if one was kept (`keep_key`)."""
    try:
        with open(root / FOLDER / "key", "rb") as f:
            key = f.read()
    except OSError:
        return None
    return key if len(key) == 32 else None  # a racing run is writing it: none this time


def keep_key(root: Path, key: bytes) -> bool:
    """Keep a new key (the first run to record one); False when another is there or none can be
    written (then the entries made with `key` are not kept either)."""
    try:
        (root / FOLDER).mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(root / FOLDER / "key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return True


def _prune(folder: Path) -> None:
    entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in entries[KEEP:]:
        with contextlib.suppress(OSError):
            old.unlink()
