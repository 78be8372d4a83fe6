"""The agent's `/v1/stream`: an app's logs (a ReadLogs task, `logs -f` included) sent back as they
come, in HTTP/1.1 chunks. Standard library only.

The body is lines: `| <a line of output>`, then `= <exit code>` when the reader ended, or `! <why>`
when it could not run. A stream holds a worker for as long as it lasts, so there are at most `cap`
of them (the rest get 503): plans still find a worker. When the client goes away (Ctrl-C closes the
connection) the reader's whole process group is killed: nothing is left on the node.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from typing import BinaryIO

from ..tasks import model as m
from .shell import render

MAX_LINE = 64 << 10  # a longer run without a newline goes out as a line of its own
END_GRACE_SECONDS = 2  # from SIGTERM to SIGKILL for a reader that does not go


class Slots:
    """How many streams are open; `take` refuses beyond the cap."""

    def __init__(self, cap: int) -> None:
        self.cap, self._open, self._lock = max(1, cap), 0, threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._open >= self.cap:
                return False
            self._open += 1
            return True

    def give(self) -> None:
        with self._lock:
            self._open -= 1


def start(task: m.ReadLogs) -> subprocess.Popen[bytes]:
    """The reader the ssh and local transports run for this task (the same sh), in its own session so
    the whole group (sh, journalctl or docker logs) can be ended at once."""
    step = render(task, str)
    return subprocess.Popen(
        ["/bin/sh", "-c", step.script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def pump(
    proc: subprocess.Popen[bytes],
    client: socket.socket,
    send: Callable[[bytes], None],
    timeout: float | None,
) -> None:
    """Forward the reader's output to `send` line by line until it ends, the client goes away, or
    `timeout` passes; then end the reader (its group) in every case. `client` is only watched: the
    client sends nothing after its request, so the socket turning readable means it closed it."""
    assert proc.stdout is not None
    out: BinaryIO = proc.stdout
    deadline = None if timeout is None else time.monotonic() + timeout
    partial = b""
    try:
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([out, client], [], [], wait)
            if client in ready:
                return  # gone (EOF, a reset or a TLS close_notify): nobody reads any more
            if not ready:
                send(b"! the reader timed out\n")
                return
            data = os.read(out.fileno(), 1 << 16)
            if not data:
                if partial:
                    send(b"| " + partial + b"\n")
                send(f"= {_wait(proc)}\n".encode())
                return
            lines = (partial + data).split(b"\n")
            partial = lines.pop()
            if len(partial) > MAX_LINE:
                lines.append(partial)
                partial = b""
            if lines:
                send(b"".join(b"| " + line.rstrip(b"\r") + b"\n" for line in lines))
    finally:
        end(proc)


def end(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the reader's group, SIGKILL if it lingers; reaped either way (no zombie)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.returncode is not None:  # reaped: its pid may be another's by now
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(END_GRACE_SECONDS)
    if proc.stdout is not None:
        proc.stdout.close()


def _wait(proc: subprocess.Popen[bytes]) -> int:
    try:
        return proc.wait(END_GRACE_SECONDS)  # its output closed: it is ending
    except subprocess.TimeoutExpired:
        return -1
