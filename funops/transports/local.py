"""This machine as a node, optionally under a root directory (for the example and fast tests).

Under a root prefix only file paths are mapped: the node is a directory, and this machine's services
are not its services. A task acting on the whole host (users, units, containers, nginx, health
checks of what would run there) is then not run: its step is recorded as "not run on a local node",
neither a failure nor drift, so plan → apply → drift → rollback of the example go through without
servers and without touching this machine. Scripts run with a PATH whose first entries refuse
`systemctl`, `docker`, `nginx`, `useradd` and their kin with a message (funops never calls them by
absolute path): a host-wide command inside any other script is refused, never run on this host."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..node import native
from ..node.shell import ShellRunner, run_sh
from ..tasks import model as m
from .base import CommandResult, StepResult, TransportError

if TYPE_CHECKING:
    from ..model.inventory import Node

HOST_SERVICES = ("systemctl", "service", "journalctl", "docker", "nginx", "invoke-rc.d",
                 "useradd", "groupadd", "userdel", "groupdel", "usermod", "adduser", "addgroup",
                 "apt", "apt-get", "dpkg", "dnf", "yum", "rpm", "apk", "zypper", "pacman")  # fmt: skip
# Tasks acting on the host as a whole, not on files under the node's root: not run there.
HOST_WIDE: tuple[type[m.Task], ...] = (
    m.EnsureUser, m.DaemonReload, m.StartUnit, m.StopUnit, m.RunContainer, m.StartContainer,
    m.RemoveContainer, m.PruneImages, m.NginxTest, m.NginxReload, m.DrainTest, m.AwaitIdle,
    m.CheckHealth, m.RunCommand,
)  # fmt: skip
NOT_RUN = "not run on a local node"

_REFUSE = """#!/bin/sh
echo "funops: ${{0##*/}} is not run for node {node}: a local node under a root prefix ({root}) is only \
files; this machine's services, users and packages are not the node's" >&2
exit 1
"""


class LocalTransport(ShellRunner):
    # A node under a root prefix runs no host-wide task (a simulated node with its own shims does).
    runs_host_wide = False

    def __init__(self, node: Node, repo_root: Path) -> None:
        self.node = node
        root = Path(node.root) if node.root else None
        self.root = None if root is None else (root if root.is_absolute() else repo_root / root).resolve()
        self._shims: str | None = None
        self._streams: set[subprocess.Popen[bytes]] = set()

    def _env(self) -> dict[str, str] | None:
        if self.root is None:
            return None
        if self._shims is None:
            shims = tempfile.mkdtemp(prefix="funops-local-")
            for name in HOST_SERVICES:
                shim = Path(shims, name)
                shim.write_text(_REFUSE.format(node=self.node.name, root=self.root))
                shim.chmod(0o755)
            # The node's users are this machine's: its files keep the owner funops runs as (owner
            # and group are not compared on such a node either: diff/differ.py).
            Path(shims, "chown").write_text("#!/bin/sh\nexit 0\n")
            Path(shims, "chown").chmod(0o755)
            self._shims = shims
        return {**os.environ, "PATH": f"{self._shims}:{os.environ.get('PATH', '/usr/bin:/bin')}"}

    def run(self, script: str, *, stdin: bytes | None = None, timeout: float | None = None) -> CommandResult:
        return run_sh(script, stdin, timeout, self._env(), f"node {self.node.name}: ")

    @property
    def files_only(self) -> bool:
        """Only files under a root prefix: host-wide tasks are not run, their resources are taken as
        applied (gather/gatherer.py)."""
        return self.root is not None and not self.runs_host_wide

    def run_tasks(
        self, tasks: list[m.Task], timeout: float | None = None
    ) -> tuple[list[StepResult], CommandResult]:
        """This machine itself (pull mode's converge on its node) runs a batch as the agent does:
        in-process where a task has a form there, its results typed (no marker text to parse). Under
        a root prefix the bundle runs (files only: its sh maps every path, its `chown` is a no-op)
        and the host-wide tasks are recorded as not run; the others run in order, in bundles
        between them, stopping at the first failure."""
        if self.root is None:
            run = lambda s, i, t: self.run(s, stdin=i, timeout=t)  # noqa: E731
            return native.run_tasks(tasks, self.path, run, timeout), CommandResult(0, b"", b"")
        if not self.files_only or not any(isinstance(t, HOST_WIDE) for t in tasks):
            return super().run_tasks(tasks, timeout)
        results: list[StepResult] = []
        result = CommandResult(0, b"", b"")
        i = 0
        while i < len(tasks):
            if isinstance(tasks[i], HOST_WIDE):
                results.append(StepResult(i, 0, 0.0, "", not_run=NOT_RUN))
                i += 1
                continue
            end = next((j for j in range(i, len(tasks)) if isinstance(tasks[j], HOST_WIDE)), len(tasks))
            ran, result = super().run_tasks(tasks[i:end], timeout)
            results += [StepResult(r.index + i, r.exit_code, r.seconds, r.output) for r in ran]
            if len(ran) < end - i or any(r.exit_code != 0 for r in ran):
                break
            i = end
        return results, result

    def call(self, task: m.Task, timeout: float | None = None) -> CommandResult:
        if self.files_only and isinstance(task, HOST_WIDE):
            return CommandResult(0, f"{NOT_RUN}\n".encode(), b"")
        return super().call(task, timeout)

    def stream_script(self, script: str, on_line: Callable[[str], None], timeout: float | None = None) -> int:
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", script],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self._env(),
                start_new_session=True,  # its own process group: close() ends it and its children
            )
        except OSError as exc:
            raise TransportError(f"node {self.node.name}: {exc}") from exc
        self._streams.add(proc)
        timer = threading.Timer(timeout, _end, (proc,)) if timeout else None
        if timer is not None:
            timer.start()
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                on_line(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
            return proc.wait()
        finally:
            if timer is not None:
                timer.cancel()
            if proc.stdout is not None:
                proc.stdout.close()
            self._streams.discard(proc)

    def path(self, node_path: str) -> str:
        return node_path if self.root is None else f"{self.root}{node_path}"

    def close(self) -> None:
        for proc in list(self._streams):
            _end(proc)
        if self._shims is not None:
            shutil.rmtree(self._shims, ignore_errors=True)
            self._shims = None


def _end(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
