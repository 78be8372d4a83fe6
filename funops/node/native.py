"""Typed tasks run in this process (the agent, on its node) instead of through sh: a file write is
then a few system calls, not a dozen processes (dirname, mktemp, cat, chmod, chown, sync, cp, mv),
the bulk of a first apply's CPU on the node. Each does what its sh rendering (node/shell.py) does,
to the mode, owner and error exit; the unit tests run both on the same trees and compare them.
A task without an entry here runs as its sh. Standard library only (the node side)."""

from __future__ import annotations

import contextlib
import grp
import hashlib
import http.client
import os
import pwd
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Callable, Mapping
from functools import singledispatch

from ..kinds import systemd_bus
from ..tasks import model as m
from ..tasks.results import CommandResult, StepResult
from . import nofollow
from .dial import dial
from .shell import NO_RELOAD, RELOAD_PROPERTIES, health_host, reload_checks, render
from .wire import utf8_text

PathMap = Callable[[str], str]
Outcome = tuple[int, str]  # exit code, output


@singledispatch
def run(task: m.Task, path: PathMap) -> Outcome | None:
    """The task run here: its exit code and output; None when it has no in-process form. Each form
    registers by its class: from annotations alone, Python 3.9's singledispatch would evaluate
    `Outcome | None` (get_type_hints), which only 3.10 can."""
    return None


@run.register(m.WriteFile)
def _(task: m.WriteFile, path: PathMap) -> Outcome | None:
    """As its sh: the directory reached without a planted link (node/nofollow.py), the new version
    made beside the file (O_EXCL, by root) and set up through its descriptor, then renamed over it."""
    p = path(task.path)
    try:
        uid, gid = _ids(task.owner, task.group)
        head, name = nofollow.split(p)
        d = nofollow.open_dir(head, (0o700, (uid, gid)) if task.private_dirs else (0o755, (0, 0)), full=p)
        try:
            nofollow.no_link(d, name, p)
            if task.content is None and task.store:
                content = _kept(path(task.store), p, task.sha256)
                if isinstance(content, str):
                    return 1, content
            else:
                content = task.content or b""
            temp = _create(d, content, int(task.mode, 8), (uid, gid), None)
            try:
                if task.backup:
                    _keep_previous(d, name, p, path(task.backup))
                nofollow.no_link(d, name, p)
                os.replace(temp, name, src_dir_fd=d, dst_dir_fd=d)
            except BaseException:
                _remove(temp, d)
                raise
        finally:
            os.close(d)
    except (OSError, LookupError) as exc:
        return 1, _message(exc)
    return 0, ""


@run.register(m.WriteState)
def _(task: m.WriteState, path: PathMap) -> Outcome | None:
    return run(
        m.WriteFile(task.path, "", "0600", "root", "root", None, task.content, private_dirs=True), path
    )


@run.register(m.RestoreFile)
def _(task: m.RestoreFile, path: PathMap) -> Outcome | None:
    p, b = path(task.path), path(task.backup)
    head, name = nofollow.split(p)
    try:
        if os.path.isfile(b):
            d = nofollow.open_dir(head, full=p)
            try:
                nofollow.no_link(d, name, p)
                with open(b, "rb") as f:
                    st = os.fstat(f.fileno())
                    temp = _create(d, f.read(), stat.S_IMODE(st.st_mode), (st.st_uid, st.st_gid), st)
                try:
                    os.replace(temp, name, src_dir_fd=d, dst_dir_fd=d)
                except BaseException:
                    _remove(temp, d)
                    raise
            finally:
                os.close(d)
        else:
            try:
                d = nofollow.open_dir(head, full=p)
            except FileNotFoundError:
                return 0, ""
            try:
                nofollow.no_link(d, name, p)
                _remove(name, d)
            finally:
                os.close(d)
    except OSError as exc:
        return 1, _message(exc)
    return 0, ""


@run.register(m.RemoveFile)
def _(task: m.RemoveFile, path: PathMap) -> Outcome | None:
    p, b = path(task.path), path(task.backup)
    head, name = nofollow.split(p)
    try:
        try:
            d = nofollow.open_dir(head, full=p)
        except FileNotFoundError:
            return 0, ""
        try:
            st = nofollow.no_link(d, name, p)
            if st is not None and stat.S_ISREG(st.st_mode):
                _keep_previous(d, name, p, b)
                _remove(name, d)
        finally:
            os.close(d)
    except OSError as exc:
        return 1, _message(exc)
    return 0, ""


def _create(d: int, content: bytes, mode: int, owner: tuple[int, int], times: os.stat_result | None) -> str:
    """A new file in the directory `d` (a name no one had: O_EXCL), its content synced, its mode and
    owner (and times) set through its descriptor, never through a name; the name."""
    while True:
        temp = f".funops.{os.urandom(6).hex()}"
        try:
            fd = os.open(
                temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=d
            )
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), mode)
            os.fchown(f.fileno(), *owner)
            if times is not None:  # as `cp -p`: chown dropped any setuid bit, set the mode again
                os.fchmod(f.fileno(), mode)
                os.utime(f.fileno(), ns=(times.st_atime_ns, times.st_mtime_ns))
    except BaseException:
        _remove(temp, d)
        raise
    return temp


@run.register(m.KeepArtifacts)
def _(task: m.KeepArtifacts, path: PathMap) -> Outcome | None:
    """As the sh's: an entry whose digest does not match is copied again, and anything not kept
    goes (a dot file of a copy cut short too). The entries are 0600: their mode is the restoring
    task's to set."""
    store = path(task.store)
    try:
        if not os.path.isdir(store) and os.path.isdir(f"{store}.old"):
            os.rename(f"{store}.old", store)  # the sh's rebuild cut short
        _make_parents(store, 0o700, None)
        os.chmod(store, 0o700)
        for sha, node_path in sorted(set(task.files)):
            if _content(os.path.join(store, sha), sha) is None:
                _keep_copy(path(node_path), sha, store)
        for name in os.listdir(store):
            p = f"{store}/{name}"
            if name not in task.keep or os.path.islink(p) or not os.path.isfile(p):
                shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else _remove(p)
    except OSError as exc:
        return 1, _message(exc)
    return 0, ""


def _content(p: str, sha256: str) -> bytes | None:
    """A regular file's bytes if they have this digest."""
    try:
        if not os.path.isfile(p):
            return None
        with open(p, "rb") as f:
            content = f.read()
    except OSError:
        return None
    return content if hashlib.sha256(content).hexdigest() == sha256 else None


def _keep_copy(live: str, sha256: str, store: str) -> None:
    """The live file into the store under its digest, if it still has that content (best effort,
    as the sh's `|| true`)."""
    content = _content(live, sha256)
    if content is None:
        return
    with contextlib.suppress(OSError):
        aside = f"{store}/.{sha256}"
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.replace(aside, f"{store}/{sha256}")


@run.register(m.DaemonReload)
def _(task: m.DaemonReload, path: PathMap) -> Outcome | None:
    """Asked over systemd's bus; a reload (or no answer there) is left to the sh, which asks again."""
    checks = reload_checks(task)
    if not checks or path("/") != "/":
        return None
    try:
        shown = systemd_bus.show([unit for unit, _ in checks], RELOAD_PROPERTIES).split("\n\n")
    except systemd_bus.BusError:
        return None
    if len(shown) != len(checks):
        return None
    for (_, file), block in zip(checks, shown):  # noqa: B905  (the node's python may predate strict=)
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if props != {"FragmentPath": file, "LoadState": "loaded", "NeedDaemonReload": "no"}:
            return None
    return 0, NO_RELOAD


@run.register(m.CheckHealth)
def _(task: m.CheckHealth, path: PathMap) -> Outcome | None:
    return check_health(task, None)


def check_health(task: m.CheckHealth, env: Mapping[str, str] | None) -> Outcome | None:
    """The sh's loop without a curl, a sleep and a shell per try (the unit's `systemctl is-active`
    stays: systemd is asked the way the sh asks it). A container's liveness stays in sh (docker)."""
    check = task.check
    if task.container is not None or check.type not in ("http", "tcp", "process"):
        return None
    host = health_host(task.host)
    port = check.port or task.port

    def healthy() -> bool:
        if task.unit and not _unit_active(task.unit, env):
            return False
        if check.type == "http":
            return http_status(host, port, check.path, check.timeout) == check.expect_status
        if check.type == "tcp":
            return tcp_open(host, port, check.timeout)
        return True

    tries = 0
    while not healthy():
        tries += 1
        if tries >= check.retries:
            return 1, f"unhealthy after {check.retries} tries"
        time.sleep(check.interval)
    if task.min_healthy_seconds:
        time.sleep(task.min_healthy_seconds)
        if not healthy():
            return 1, f"unhealthy after {task.min_healthy_seconds:g}s"
    return 0, ""


def _unit_active(unit: str, env: Mapping[str, str] | None) -> bool:
    """`env`: the sh's environment (its PATH finds systemctl), None: this process's."""
    systemctl = shutil.which("systemctl", path=(env or os.environ).get("PATH"))
    if systemctl is None:  # as the sh: `systemctl` not found is not active
        return False
    done = subprocess.run(
        [systemctl, "is-active", "--quiet", unit], capture_output=True, check=False, timeout=30, env=env
    )
    return done.returncode == 0


class _HTTPConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = dial(self.host, self.port, self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def http_status(host: str, port: int | None, target: str, timeout: float) -> int | None:
    """The status of a GET, as `curl -w %{http_code}` gives it (redirects not followed)."""
    conn = _HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", target, headers={"Accept": "*/*"})
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def tcp_open(host: str, port: int | None, timeout: float) -> bool:
    try:
        with dial(host, port or 0, timeout):
            return True
    except OSError:
        return False


def _ids(owner: str, group: str) -> tuple[int, int]:
    """As chown takes them: a name, or a number."""
    uid = int(owner) if owner.isdigit() else pwd.getpwnam(owner).pw_uid
    gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    return uid, gid


def _make_parents(directory: str, mode: int, owner: tuple[int, int] | None) -> None:
    """The missing directories down to `directory`, each with exactly this mode (and owner; None:
    this process's), never touching one that exists."""
    missing = []
    while not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for d in reversed(missing):
        os.mkdir(d)
        os.chmod(d, mode)
        if owner is not None:
            os.chown(d, *owner)


def _kept(store: str, p: str, sha256: str) -> bytes | str:
    """The content kept in the artifact store, checked; a message when it is gone or damaged."""
    if not os.path.isfile(store):
        return f"the kept content of {p} is no longer on this node"
    with open(store, "rb") as f:
        content = f.read()
    if hashlib.sha256(content).hexdigest() != sha256:
        return f"the kept content of {p} is damaged"
    return content


def _keep_previous(d: int, name: str, p: str, backup: str) -> None:
    """The file's present version aside (as `cp -p`: mode, owner, times), or no stale backup. The
    backup is root's (funops's state dir); the file is read without following a link."""
    st = nofollow.no_link(d, name, p)
    if st is None or not stat.S_ISREG(st.st_mode):
        _remove(backup)
        return
    fd = nofollow.open_file(d, name, p)
    with os.fdopen(fd, "rb") as f:
        content = f.read()
    bhead, bname = nofollow.split(backup)
    bd = nofollow.open_dir(bhead, (0o700, None))  # as `mkdir -p` under the bundle's umask 077
    try:
        temp = _create(bd, content, stat.S_IMODE(st.st_mode), (st.st_uid, st.st_gid), st)
        os.replace(temp, bname, src_dir_fd=bd, dst_dir_fd=bd)
    finally:
        os.close(bd)


def _remove(p: str, dir_fd: int | None = None) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(p, dir_fd=dir_fd)


def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"no such user or group: {exc.args[0] if exc.args else exc}"
    return str(exc)


def run_tasks(
    tasks: list[m.Task],
    path: PathMap,
    run_sh: Callable[[str, bytes | None, float | None], CommandResult],
    timeout: float | None,
    env: Mapping[str, str] | None = None,
) -> list[StepResult]:
    """A batch as the sh bundle runs it (in order, stopping at the first failure, umask 077 for the
    sh ones), each step's result typed (the agent sends them as `node/wire.py`'s results document).
    A task with an in-process form runs here; another, as its own sh, without the bundle's per-step
    wrapping (a subshell, two `date`s and a `cat` each). `env`: the sh's environment, which a health
    check's `systemctl` is found and run with too."""
    deadline = None if timeout is None else time.monotonic() + timeout
    steps = []
    for i, task in enumerate(tasks):
        started = time.monotonic_ns()
        done = check_health(task, env) if isinstance(task, m.CheckHealth) else run(task, path)
        if done is None:
            step = render(task, path)
            left = None if deadline is None else max(deadline - time.monotonic(), 0.001)
            result = run_sh(f"umask 077\n{step.script}", step.stdin, left)
            done = (result.exit_code, (result.stdout + result.stderr).decode("utf-8", errors="replace"))
        code, output = done
        # As parse_bundle reads the bundle's steps: seconds to the millisecond, output stripped.
        seconds = round((time.monotonic_ns() - started) / 1e9, 3)
        steps.append(StepResult(i, code, seconds, utf8_text(output).strip()))
        if code != 0:
            break
    return steps
