"""This machine as a node, optionally under a root directory (for the example and fast tests).

Under a root prefix only file paths are mapped: the node is a directory, and this machine's services
are not its services. Scripts then run with a PATH whose first entries refuse `systemctl`, `docker`,
`nginx` and their kin with a message (funops never calls them by absolute path), so a plan or apply
of the example can never reload the host's nginx, restart its units or touch its containers."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..model.inventory import Node
from ..tasks.shell import ShellRunner
from .base import CommandResult, TransportError

HOST_SERVICES = ("systemctl", "service", "journalctl", "docker", "nginx", "invoke-rc.d")

_REFUSE = """#!/bin/sh
echo "funops: ${{0##*/}} is not run for node {node}: a local node under a root prefix ({root}) is only \
files; this machine's services are not the node's" >&2
exit 1
"""


class LocalTransport(ShellRunner):
    def __init__(self, node: Node, repo_root: Path) -> None:
        self.node = node
        root = Path(node.root) if node.root else None
        self.root = None if root is None else (root if root.is_absolute() else repo_root / root).resolve()
        self._shims: str | None = None

    def _env(self) -> dict[str, str] | None:
        if self.root is None:
            return None
        if self._shims is None:
            shims = tempfile.mkdtemp(prefix="funops-local-")
            for name in HOST_SERVICES:
                shim = Path(shims, name)
                shim.write_text(_REFUSE.format(node=self.node.name, root=self.root))
                shim.chmod(0o755)
            self._shims = shims
        return {**os.environ, "PATH": f"{self._shims}:{os.environ.get('PATH', '/usr/bin:/bin')}"}

    def run(self, script: str, *, stdin: bytes | None = None, timeout: float | None = None) -> CommandResult:
        try:
            done = subprocess.run(
                ["/bin/sh", "-c", script],
                input=stdin,
                capture_output=True,
                timeout=timeout,
                check=False,
                env=self._env(),
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TransportError(f"node {self.node.name}: {exc}") from exc
        return CommandResult(done.returncode, done.stdout, done.stderr)

    def path(self, node_path: str) -> str:
        return node_path if self.root is None else f"{self.root}{node_path}"

    def close(self) -> None:
        if self._shims is not None:
            shutil.rmtree(self._shims, ignore_errors=True)
            self._shims = None
