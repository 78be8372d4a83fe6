"""This machine as a node, optionally under a root directory (for the example and fast tests)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..model.inventory import Node
from .base import CommandResult, TransportError


class LocalTransport:
    def __init__(self, node: Node, repo_root: Path) -> None:
        self.node = node
        root = Path(node.root) if node.root else None
        self.root = None if root is None else (root if root.is_absolute() else repo_root / root).resolve()

    def run(self, script: str, *, stdin: bytes | None = None, timeout: float | None = None) -> CommandResult:
        try:
            done = subprocess.run(
                ["/bin/sh", "-c", script], input=stdin, capture_output=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TransportError(f"node {self.node.name}: {exc}") from exc
        return CommandResult(done.returncode, done.stdout, done.stderr)

    def path(self, node_path: str) -> str:
        return node_path if self.root is None else f"{self.root}{node_path}"

    def close(self) -> None:
        pass
