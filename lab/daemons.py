"""The lab's own daemons (pebble, BIND, Prometheus, …): started in the background with their log and pid
files in a state dir, waited for until they answer, stopped by the pids they recorded."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from .config import LabError


def start(d: Path, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = open(d / f"{name}.log", "wb")  # noqa: SIM115 (the child keeps it); one run per log
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PEBBLE_")}
    process = subprocess.Popen(
        argv,
        cwd=d,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**environment, **env},
        start_new_session=True,  # not killed with the test session's terminal
    )
    log.close()
    (d / f"{name}.pid").write_text(f"{process.pid}\n")
    (d / f"{name}.cmd").write_text(" ".join(argv))
    return process


def pid(d: Path, name: str) -> int | None:
    """The pid in <name>.pid if that process still runs the command this module started."""
    try:
        pid = int((d / f"{name}.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
        started = (d / f"{name}.cmd").read_text().strip()
    except (OSError, ValueError):
        return None
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":  # exited, not yet reaped by its parent
        _reap(pid)
        return None
    return pid if cmdline == started else None


def _reap(pid: int) -> None:
    """A zombie child of this very process (started by `up` in the same session): collect it."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def tail(d: Path, name: str, lines: int = 15) -> str:
    try:
        return "\n".join((d / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_up(
    processes: Mapping[str, subprocess.Popen[bytes]],
    answers: Callable[[], bool],
    d: Path,
    what: str,
    seconds: float,
    down: Callable[[], None],
) -> None:
    """Until `answers()`; a daemon that exits or no answer within `seconds` brings them down and
    raises, with the end of each one's log."""
    deadline = time.monotonic() + seconds
    while not answers():
        exited = [(name, p.returncode) for name, p in processes.items() if p.poll() is not None]
        if exited or time.monotonic() > deadline:
            down()
            why = (
                ", ".join(f"{name} exited with {code}" for name, code in exited)
                or f"no answer within {seconds:g} s"
            )
            logs = "\n".join(f"--- {name}.log:\n{tail(d, name)}" for name in processes)
            raise LabError(f"{what} did not come up ({why}); logs in {d}\n{logs}")
        time.sleep(0.3)


def stop(d: Path, names: Iterable[str], grace: float) -> None:
    """SIGTERM each one this module started, SIGKILL after `grace` seconds; forget its pid."""
    for name in names:
        running = pid(d, name)
        if running is None:
            continue
        os.kill(running, signal.SIGTERM)
        for _ in range(int(grace * 10)):
            if pid(d, name) is None:
                break
            time.sleep(0.1)
        else:
            os.kill(running, signal.SIGKILL)
        (d / f"{name}.pid").unlink(missing_ok=True)
