"""This machine as a node, optionally under a root directory (for the example and fast tests).

Under a root prefix only file paths are mapped: the node is a directory, and this machine's services
are not its services. Scripts then run with a PATH whose first entries refuse `systemctl`, `docker`,
`nginx` and their kin with a message (funops never calls them by absolute path), so a plan or apply
of the example can never reload the host's nginx, restart its units or touch its containers."""

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

from ..tasks.shell import ShellRunner
from .base import CommandResult, TransportError

if TYPE_CHECKING:
    from ..model.inventory import Node

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
            self._shims = shims
        return {**os.environ, "PATH": f"{self._shims}:{os.environ.get('PATH', '/usr/bin:/bin')}"}

    def run(self, script: str, *, stdin: bytes | None = None, timeout: float | None = None) -> CommandResult:
        return run_sh(script, stdin, timeout, self._env(), f"node {self.node.name}: ")

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


def run_sh(
    script: str, stdin: bytes | None, timeout: float | None, env: dict[str, str] | None, who: str = ""
) -> CommandResult:
    """A script run by this machine's /bin/sh (a local node's, the agent's): its exit code and output;
    TransportError, prefixed with `who`, when it cannot be run or times out."""
    try:
        done = subprocess.run(
            ["/bin/sh", "-c", script], input=stdin, capture_output=True, timeout=timeout, check=False, env=env
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TransportError(f"{who}{exc}") from exc
    return CommandResult(done.returncode, done.stdout, done.stderr)


def _end(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
