"""Small filesystem helpers: idempotent writes, safe removal of trees that may hold mount points."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .config import LabError


def write_if_changed(path: Path, content: str, mode: int = 0o644) -> bool:
    """Write `content` unless the file already holds exactly that; True when it was written."""
    if path.exists() and path.read_text() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(content)
    tmp.chmod(mode)
    tmp.replace(path)  # atomic: a reader never sees half a known_hosts or inventory
    return True


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/mounts") as f:
        points = [line.split()[1] for line in f]
    prefix = str(path.resolve()) + "/"
    return sorted((p for p in points if p.startswith(prefix)), reverse=True)


def remove_tree(path: Path) -> None:
    """Remove a directory tree, unmounting first: never recurse into a leftover bind mount (/dev)."""
    if not path.exists():
        return
    for point in _mounts_under(path):
        subprocess.run(["umount", "-l", point], check=False)
    if _mounts_under(path):
        raise LabError(f"mounts remain under {path}; not removing it")
    shutil.rmtree(path)
