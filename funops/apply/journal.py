"""The controller's local journal: one JSON line per apply, for audit and `funops history`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ..errors import FunopsError


def journal_path(repo_root: Path, configured: str) -> Path:
    path = Path(configured)
    return path if path.is_absolute() else repo_root / path


def now() -> str:
    """An entry's `when`: UTC, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def append(path: Path, entry: dict[str, Any]) -> None:
    """Append one line; O_APPEND keeps concurrent writers' lines whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def entries(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash: skip it, keep the rest
    return out


def resume_targets(path: Path) -> list[str]:
    """`apply --resume`: the nodes the last deploy did not finish (failed, unreachable, skipped)."""
    last = next(
        (
            e
            for e in reversed(entries(path))
            if e.get("event") == "apply" and e.get("kind", "deploy") == "deploy"
        ),
        None,
    )
    if last is None:
        raise FunopsError("nothing to resume: the journal has no apply")
    targets = sorted(
        n for n, o in last["nodes"].items() if o["status"] in ("failed", "unreachable", "skipped")
    )
    if not targets:
        raise FunopsError(f"nothing to resume: apply {last['id']} finished on every node")
    return targets
