"""One simulated node reached through the local transport: a root directory with the fleet's shims
(shims.py) first on PATH, so systemctl and nginx "work" under it. Pull mode converges a node through
the local transport (funops/pull/converge.py); this is that transport on a simulated node."""

from __future__ import annotations

import os
from pathlib import Path

from funops.model.inventory import Node
from funops.transports.base import CommandResult
from funops.transports.local import LocalTransport

from . import shims


class SimulatedNode(LocalTransport):
    """A node that is a directory, with a systemd and an nginx that do as asked (bench/fleet/shims)."""

    runs_host_wide = True  # its shims stand in for the host's systemd, docker and nginx

    def __init__(self, node: Node, root: Path) -> None:
        super().__init__(node.model_copy(update={"transport": "local", "root": str(root)}), Path("/"))
        self.bin = shims.install(root)

    def _env(self) -> dict[str, str] | None:
        return {**os.environ, "PATH": f"{self.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}"}

    def run(self, script: str, *, stdin: bytes | None = None, timeout: float | None = None) -> CommandResult:
        # The one path scripts test literally (the probe's "is systemd the init?") is the root's too.
        script = script.replace(shims.SYSTEMD_MARK, f"{self.root}{shims.SYSTEMD_MARK}")
        return super().run(script, stdin=stdin, timeout=timeout)
