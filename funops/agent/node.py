"""What the agent does on its node: run task values with the same shell rendering ssh nodes get (so
both transports converge a node alike), and read what `hello` and `status` report. Standard library
only."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import platform
import shutil
import subprocess
from typing import Any

from ..tasks import model as m
from ..tasks.shell import ShellRunner
from ..transports.base import CommandResult, TransportError

MAX_TASK_SECONDS = 3600


class NodeShell(ShellRunner):
    """This node, unprefixed: tasks rendered to sh and run here."""

    def run(self, script: str, *, stdin: bytes | None = None, timeout: float | None = None) -> CommandResult:
        try:
            done = subprocess.run(
                ["/bin/sh", "-c", script],
                input=stdin,
                capture_output=True,
                timeout=min(timeout or MAX_TASK_SECONDS, MAX_TASK_SECONDS),
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TransportError(str(exc)) from exc
        return CommandResult(done.returncode, done.stdout, done.stderr)

    def path(self, node_path: str) -> str:
        return node_path


def capabilities() -> dict[str, Any]:
    """What this node can run; read once at start (a package installed later needs a restart)."""
    tools = {name: shutil.which(name) is not None for name in ("systemctl", "nginx", "docker")}
    release = platform.freedesktop_os_release() if hasattr(platform, "freedesktop_os_release") else {}
    return {
        "systemd": tools["systemctl"],
        "nginx": tools["nginx"],
        "docker": tools["docker"],
        "os": release.get("PRETTY_NAME", platform.system()),
        "python": platform.python_version(),
    }


def facts(state_dir: str) -> dict[str, Any]:
    """Cheap live facts for `funops nodes`: free disk under the state dir, containers running."""
    disk = shutil.disk_usage(state_dir if os.path.isdir(state_dir) else "/")
    containers = None
    if shutil.which("docker"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(["docker", "ps", "-q"], capture_output=True, timeout=5, check=False).stdout
            containers = len(out.split())
    return {"diskFreePct": round(100 * disk.free / disk.total, 1), "containers": containers}


def status(state_dir: str) -> dict[str, Any]:
    """The last applied revision and release per app, from the node's state file."""
    try:
        with open(os.path.join(state_dir, "state.json"), encoding="utf-8") as f:
            state = json.load(f)
    except FileNotFoundError:
        return {"apps": {}}
    except (OSError, ValueError) as exc:
        return {"apps": {}, "error": f"state file unreadable: {exc}"}
    apps = state.get("apps") if isinstance(state, dict) else None
    return {"apps": apps if isinstance(apps, dict) else {}}


def run(tasks: list[m.Task], batch: bool, timeout: float | None) -> dict[str, Any]:
    shell = NodeShell()
    if batch:
        _, result = shell.run_tasks(tasks, timeout)
    else:
        (task,) = tasks
        result = shell.call(task, timeout)
    return {
        "exit": result.exit_code,
        "stdout": base64.b64encode(result.stdout).decode(),
        "stderr": base64.b64encode(result.stderr).decode(),
    }
