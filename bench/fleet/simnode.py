"""One simulated node for the agent server: what funops/node/host.py does on a real node, under a
root directory as the local transport does it (file paths mapped under the root, services replaced
by the shims of shims.py). The agent server runs it in place of that module (`AgentServer(config,
node_side=SimNode(root))`): the HTTP, TLS, token, task-id and wire handling stay the product's."""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path
from typing import Any

from funops.gather.probe import MARK
from funops.ids import ResourceId
from funops.kinds import kind_of, unit
from funops.node import host as node
from funops.node.probe import build_script, node_section, read_kinds
from funops.node.shell import run_sh
from funops.tasks import model as m
from funops.transports.base import CommandResult

from . import shims


class SimShell(node.NodeShell):
    """The agent's shell (file tasks in-process, the others as sh) with paths under the root, its sh
    run with the node's shims first on PATH."""

    def __init__(self, root: Path, bin_dir: Path) -> None:
        self.root = str(root)
        self.env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}

    def run(self, script: str, *, stdin: bytes | None = None, timeout: float | None = None) -> CommandResult:
        # The one path scripts test literally (the probe's "is systemd the init?", nginx's reload)
        # is the simulated node's too.
        script = script.replace(shims.SYSTEMD_MARK, self.root + shims.SYSTEMD_MARK)
        return run_sh(script, stdin, timeout or node.MAX_TASK_SECONDS, self.env, f"{self.root}: ")

    def path(self, node_path: str) -> str:
        return f"{self.root}{node_path}"


class SimNode:
    """The functions the agent server calls on its node (funops/node/host.py's), for a root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.shell = SimShell(root, shims.install(root))

    def capabilities(self) -> dict[str, Any]:
        return {"systemd": True, "nginx": True, "docker": False, "os": "simulated node",
                "python": platform.python_version()}  # fmt: skip

    def facts(self, state_dir: str) -> dict[str, Any]:
        disk = shutil.disk_usage(self.root)
        return {"diskFreePct": round(100 * disk.free / disk.total, 1), "containers": 0}

    def status(self, state_dir: str) -> dict[str, Any]:
        return node.status(self.shell.path(state_dir))

    def gather(self, task: m.Probe, timeout: float | None) -> dict[str, Any]:
        """The probe as the agent reads it (funops/node/host.py's gather), its paths given back as
        the node's: the controller reads them as an unrooted node's (the agent transport maps none).
        Units are read in-process, as the agent reads them from systemd's bus: from the simulated
        systemd's state (shims.show). Other kinds with no reader under a root run their sh."""
        read, unread = read_kinds(task.ids, self.shell.path)
        units = [r for r in unread if kind_of(r).name == unit.UnitKind.name]
        rest = [r for r in unread if r not in units]
        if units:
            names = sorted(ResourceId(r).name for r in units)
            read += f"{MARK}units\n{shims.show(self.root, names, unit.PROPERTIES)}"
        kinds_part = CommandResult(0, b"", b"")
        if rest:
            script = build_script(rest, task.state_file, self.shell.path, node_facts=False)
            kinds_part = self.shell.run(script, timeout=timeout)
        stdout = (read.encode() + kinds_part.stdout).replace(self.shell.root.encode() + b"/", b"/")
        containers = (lambda: 0) if task.containers else None
        node_part = node_section(self.shell.path(task.state_file), lambda: shims.NGINX_VERSION, containers)
        return node.answer(
            CommandResult(kinds_part.exit_code, stdout + node_part.encode(), kinds_part.stderr)
        )

    def run(self, tasks: list[m.Task], batch: bool, timeout: float | None) -> dict[str, Any]:
        return node.run(tasks, batch, timeout, self.shell)
