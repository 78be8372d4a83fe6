"""What the agent does on its node: run task values with the same shell rendering ssh nodes get (so
both transports converge a node alike), and read what `hello` and `status` report. Standard library
only."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import platform
import shutil
import socket
import subprocess
from typing import Any

from ..tasks import model as m
from ..tasks.results import CommandResult, StepResult
from ..tasks.values import ValueProblem
from . import STATUS_FILE as PULL_STATUS
from . import native
from .dial import address_family
from .probe import build_script, node_section, read_kinds
from .shell import ShellRunner, run_sh
from .wire import encode_steps

MAX_TASK_SECONDS = 3600


class NodeShell(ShellRunner):
    """This node, unprefixed: tasks rendered to sh and run here."""

    env: dict[str, str] | None = None  # the sh's environment (None: the agent's)

    def run(self, script: str, *, stdin: bytes | None = None, timeout: float | None = None) -> CommandResult:
        return run_sh(script, stdin, min(timeout or MAX_TASK_SECONDS, MAX_TASK_SECONDS), None)

    def path(self, node_path: str) -> str:
        return node_path

    def call(self, task: m.Task, timeout: float | None = None) -> CommandResult:
        """The lock's tasks in-process (node/native.py), the others as their sh."""
        done = native.run(task, self.path) if isinstance(task, native.CALLED) else None
        if done is None:
            return super().call(task, timeout)
        return CommandResult(done[0], done[1].encode(), b"")

    def run_tasks(
        self, tasks: list[m.Task], timeout: float | None = None
    ) -> tuple[list[StepResult], CommandResult]:
        """File writes in-process (node/native.py), the other tasks each as its own sh; the steps'
        results typed, never printed to be parsed back (the batch itself ran: exit 0, no output)."""
        run = lambda s, i, t: self.run(s, stdin=i, timeout=t)  # noqa: E731
        steps = native.run_tasks(tasks, self.path, run, timeout, self.env)
        return steps, CommandResult(0, b"", b"")


def gather(task: m.Probe, timeout: float | None) -> dict[str, Any]:
    """The probe, read in-process: the kinds' facts by their readers (`ResourceKind.read`: stat and
    sha256 here, `systemctl show` without a shell), a kind without one by its sh fragment; free disk,
    nginx's version, the running containers (the engine's API: the docker CLI costs ~20 ms of CPU a
    call), the state file, key and lock read here too. The output is the ssh probe's, byte for byte
    in format, so the controller parses both alike."""
    read, rest = read_kinds(task.ids, str)
    kinds_part = CommandResult(0, b"", b"")
    if rest:
        script = build_script(rest, task.state_file, str, node_facts=False)
        kinds_part = NodeShell().run(script, timeout=timeout)
    containers = _running_containers if task.containers else None
    node_part = node_section(task.state_file, _nginx_version, containers).encode()
    out = read.encode() + kinds_part.stdout + node_part
    return answer(CommandResult(kinds_part.exit_code, out, kinds_part.stderr))


_nginx_seen: dict[tuple[str, float], str | None] = {}


def _nginx_version() -> str | None:
    """`nginx -v` once per nginx binary (its path and mtime): an upgrade is seen, a no-op costs nothing."""
    binary = shutil.which("nginx")
    if binary is None:
        return None
    key = (binary, os.stat(binary).st_mtime)
    if key not in _nginx_seen:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=5).stderr
            _nginx_seen[key] = out.strip().split("/", 1)[-1] or None  # as gather/probe.py's parse reads it
    return _nginx_seen.get(key)


def _running_containers() -> int:
    """`docker ps -q | wc -l`, from the engine's API socket; 0 without an engine (as the probe)."""
    conn = UnixHTTP("/var/run/docker.sock")
    try:
        conn.request("GET", "/containers/json")
        response = conn.getresponse()
        data = json.loads(response.read()) if response.status == 200 else []
        return len(data) if isinstance(data, list) else 0
    except (OSError, ValueError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, socket_path: str) -> None:
        super().__init__("localhost", timeout=5)
        self.socket_path = socket_path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


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
    containers = _running_containers() if shutil.which("docker") else None
    return {"diskFreePct": round(100 * disk.free / disk.total, 1), "containers": containers}


def status(state_dir: str) -> dict[str, Any]:
    """The last applied revision and release per app, from the node's state file; in pull mode, what
    the polls found and did (STATUS_FILE, written by `funops-agent pull`)."""
    out: dict[str, Any] = {"apps": {}}
    try:
        with open(os.path.join(state_dir, "state.json"), encoding="utf-8") as f:
            state = json.load(f)
        apps = state.get("apps") if isinstance(state, dict) else None
        out["apps"] = apps if isinstance(apps, dict) else {}
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        out["error"] = f"state file unreadable: {exc}"
    pull = _pull_status(os.path.join(state_dir, PULL_STATUS))
    if pull is not None:
        out["pull"] = pull
    return out


def _pull_status(path: str) -> dict[str, Any] | None:
    """None for a node not in pull mode (no file); a file that cannot be read is reported, not raised:
    the status of the apps still answers."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return {"error": f"{path} unreadable: {exc}"}
    return doc if isinstance(doc, dict) else {"error": f"{path}: a JSON object expected"}


def run(
    tasks: list[m.Task], batch: bool, timeout: float | None, shell: ShellRunner | None = None
) -> dict[str, Any]:
    """A batch (or one task) on this node, or on `shell`'s (the bench's simulated nodes): a batch's
    results as the results document (node/wire.py), one task's as its command's output."""
    for task in tasks:
        if isinstance(task, m.CheckHealth) and not own_address(task.host):
            raise ValueProblem(
                f"CheckHealth.host: {task.host} is not an address of this node (a health check asks the "
                "node's own apps, where they bind)"
            )
    shell = shell or NodeShell()
    if batch:
        steps, _ = shell.run_tasks(tasks, timeout)
        return encode_steps(steps)
    (task,) = tasks
    return answer(shell.call(task, timeout))


def own_address(host: str) -> bool:
    """Whether a health check's host is this node: every address ("", 0.0.0.0, ::), or an IP address
    bound here (a socket binds to it: no traffic, no resolver). So a token cannot make the agent a
    port scanner of its network (a tcp check's exit tells open from closed)."""
    if host in ("", "0.0.0.0", "::"):
        return True
    family = address_family(host)
    if family is None:
        return False  # a name: the controller sends the app's bind address, never a name
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True


def answer(result: CommandResult) -> dict[str, Any]:
    """A command's result as the agent sends it (exit code, output base64)."""
    return {
        "exit": result.exit_code,
        "stdout": base64.b64encode(result.stdout).decode(),
        "stderr": base64.b64encode(result.stderr).decode(),
    }
