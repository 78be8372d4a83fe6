"""Typed tasks run in this process (the agent, on its node) instead of through sh: a file write or
the apply lock is then a few system calls, not a dozen processes (dirname, mktemp, cat, chmod,
chown, sync, cp, mv), the bulk of a first apply's CPU on the node; systemd and nginx tasks ask
systemd's bus what the sh asked systemctl, and run only the command that acts. Each does what its
sh rendering (node/shell.py) does, to the mode, owner and error exit; the unit tests run both on the
same trees and compare them (the lock's: tests/unit/test_lock.py). A task without an entry here runs
as its sh. Standard library only (the node side)."""

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
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from functools import singledispatch
from typing import Any

from ..kinds import systemd_bus
from ..tasks import model as m
from ..tasks.results import CommandResult, StepResult, TransportError
from . import nofollow
from .dial import dial
from .shell import FIRST_PAUSE, NO_RELOAD, RELOAD_PROPERTIES, health_host, reload_checks, render
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


# ---- the apply lock: what node/shell.py's sh does (a dozen processes for a TakeLock), in calls ----


CALLED = (m.TakeLock, m.RenewLock, m.ReleaseLock)  # run here when sent alone too (node/host.py)


@run.register(m.TakeLock)
def _(task: m.TakeLock, path: PathMap) -> Outcome | None:
    """Built aside and renamed into place (rename(2) of a directory fails onto a non-empty one, as
    the sh's `mv -T`); an expired lock is broken only under the `.break` mutex, as the sh does."""
    d, key = path(task.lock_dir), path(task.key_file)
    now, brk = int(time.time()), f"{d}.break"
    try:
        os.makedirs(os.path.dirname(d), exist_ok=True)
        aside = tempfile.mkdtemp(prefix=f"{os.path.basename(d)}.new.", dir=os.path.dirname(d))  # 0700
        for name, data in (("info", task.info), ("token", f"{task.token}\n".encode())):
            _write_plain(f"{aside}/{name}", data)
        _write_plain(f"{aside}/expires", f"{now + task.ttl}\n".encode())
    except OSError as exc:
        return 1, _message(exc)
    for _ in range(20):
        try:
            os.rename(aside, d)
        except OSError:
            pass
        else:
            return _make_key(key)
        if not os.path.isdir(d):
            continue
        try:
            os.mkdir(brk)
        except OSError:
            with contextlib.suppress(OSError):  # a breaker killed mid-way: its mutex goes after a minute
                if time.time() - os.lstat(brk).st_mtime > 60:
                    os.rmdir(brk)
            time.sleep(0.1)
            continue
        with contextlib.suppress(OSError):  # left empty: a rename takes its place (see the sh's)
            os.rmdir(d)
        expired = True  # gone: the rename is tried again
        if os.path.isdir(d):  # non-empty: no rename can replace it while the mutex is held
            expires = _read_text(f"{d}/expires").strip()
            expired = not expires.isdigit() or not _read_text(f"{d}/token") or int(expires) < now
            if expired:
                shutil.rmtree(d, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rmdir(brk)
        if not expired:
            break
    shutil.rmtree(aside, ignore_errors=True)
    return m.LOCK_HELD, _read_text(f"{d}/info")


@run.register(m.RenewLock)
def _(task: m.RenewLock, path: PathMap) -> Outcome | None:
    d = path(task.lock_dir)
    if _read_text(f"{d}/token").rstrip("\n") != task.token:
        return m.LOCK_HELD, ""
    try:
        aside = f"{d}/expires.{os.getpid()}.{threading.get_ident()}"
        _write_plain(aside, f"{int(time.time()) + task.ttl}\n".encode())
        os.replace(aside, f"{d}/expires")  # a reader never sees it empty
    except OSError as exc:
        return 1, _message(exc)
    return 0, ""


@run.register(m.ReleaseLock)
def _(task: m.ReleaseLock, path: PathMap) -> Outcome | None:
    d = path(task.lock_dir)
    if _read_text(f"{d}/token").rstrip("\n") != task.token:
        return 1, ""
    shutil.rmtree(d, ignore_errors=True)
    return 0, ""


def _write_plain(p: str, data: bytes) -> None:
    """As the sh's `cat > p`: created with the process's umask, or truncated."""
    with open(p, "wb") as f:
        f.write(data)


def _read_text(p: str) -> str:
    """As the sh's `cat -- p 2>/dev/null`: empty when it cannot be read."""
    try:
        with open(p, "rb") as f:
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _make_key(key: str) -> Outcome:
    """The node's digest key (64 hex digits, 0600), made by the first lock holder."""
    with contextlib.suppress(OSError):
        if os.path.getsize(key) > 0:
            return 0, ""
    aside = f"{key}.{os.getpid()}.{threading.get_ident()}"
    try:
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32).hex().encode())
        os.replace(aside, key)
    except OSError:
        pass  # as the sh: the lock is taken all the same
    return 0, ""


# systemd and nginx without a sh around them: each systemctl the sh ran was a process (~5 ms of
# CPU) and a new connection PID 1 set up (~3 ms), where the agent's kept bus connection answers the
# questions. What changes state is still systemctl, run directly, so its output and exit are the sh's.

# The states `systemctl is-enabled` exits 0 for (systemd's systemctl-is-enabled.c): no enable then.
IS_ENABLED = ("enabled", "enabled-runtime", "static", "alias", "indirect", "generated")


def _start_unit(task: m.StartUnit, path: PathMap, timeout: float) -> Outcome | None:
    systemctl = _systemd(path)
    if systemctl is None:
        return None
    try:
        enabled = systemd_bus.unit_file_state(task.unit) in IS_ENABLED
    except systemd_bus.BusError:
        return None
    output = ""
    if not enabled:  # --no-reload: the sh's reason (node/shell.py)
        started = time.monotonic()
        code, output = _enable(systemctl, task.unit, timeout)
        if code != 0:
            return code, output
        timeout = max(timeout - (time.monotonic() - started), 0.001)
    code, out = _job(systemctl, "restart" if task.restart else "start", task.unit, timeout)
    return code, output + out


def _enable(systemctl: str, unit: str, timeout: float) -> Outcome:
    """`systemctl enable --no-reload --quiet`, asked of the bus; systemctl itself when the bus cannot
    answer or the file has no [Install] section (systemctl's notice about it is the output)."""
    with contextlib.suppress(systemd_bus.BusError):
        if systemd_bus.enable(unit, min(timeout, 10)):
            return 0, ""
    return _command([systemctl, "enable", "--no-reload", "--quiet", unit], timeout)


def _job(systemctl: str, verb: str, unit: str, timeout: float) -> Outcome:
    """`systemctl VERB UNIT`: the job queued over the agent's bus and waited for, as systemctl waits
    for it (a process and a new bus connection less; PID 1 set up each of systemctl's at ~3 ms). A
    job that did not succeed is told as systemctl tells it; systemctl itself when the bus could not
    queue it."""
    try:
        result = systemd_bus.run_job(verb, unit, timeout)
    except systemd_bus.BusError:
        return _command([systemctl, verb, unit], timeout)
    except TimeoutError as exc:
        raise TransportError(str(exc)) from exc
    return (0, "") if result == "done" else (1, job_failed(unit, result))


# systemctl's words for a job that did not succeed (its check_wait_response), and for the service's
# Result when the job failed (log_job_error_with_service_result).
_JOB_RESULTS = {
    "canceled": "Job for {u} canceled.",
    "timeout": "Job for {u} timed out.",
    "dependency": "A dependency job for {u} failed. See 'journalctl -xe' for details.",
    "invalid": "{u} is not active, cannot reload.",
    "assert": "Assertion failed on job for {u}.",
    "unsupported": "Operation on or unit type of {u} not supported on this system.",
    "collected": "Queued job for {u} was garbage collected.",
    "once": "Unit {u} was started already once and can't be started again.",
}
_SERVICE_RESULTS = {
    "resources": "of unavailable resources or another system error",
    "protocol": "the service did not take the steps required by its unit configuration",
    "timeout": "a timeout was exceeded",
    "exit-code": "the control process exited with error code",
    "signal": "a fatal signal was delivered to the control process",
    "core-dump": "a fatal signal was delivered causing the control process to dump core",
    "watchdog": "the service failed to send watchdog ping",
    "start-limit-hit": "start of the service was attempted too often",
}


def job_failed(unit: str, result: str) -> str:
    if result in _JOB_RESULTS:
        return _JOB_RESULTS[result].format(u=unit)
    why = ""
    if unit.endswith(".service"):
        with contextlib.suppress(systemd_bus.BusError):
            why = _SERVICE_RESULTS.get(systemd_bus.service_result(unit), "")
    see = f'See "systemctl status {unit}" and "journalctl -xeu {unit}" for details.'
    return f"Job for {unit} failed{' because ' + why if why else ''}.\n{see}"


def _nginx_test(task: m.NginxTest, path: PathMap, timeout: float) -> Outcome | None:
    nginx = shutil.which("nginx")
    if path("/") != "/" or nginx is None:
        return None
    return _command([nginx, "-t", "-q"], timeout, merged=True)


def _nginx_reload(task: m.NginxReload, path: PathMap, timeout: float) -> Outcome | None:
    systemctl = _systemd(path)
    if systemctl is None:
        return None
    try:
        active = systemd_bus.active_state("nginx.service") in ("active", "reloading")
    except systemd_bus.BusError:
        return None
    return _job(systemctl, "reload" if active else "start", "nginx.service", timeout)


# Run with the time the batch has left; only by the agent for its own node (no `env`: not a
# simulated one, whose systemctl and nginx are its sh's shims).
COMMANDS: dict[type[m.Task], Callable[[Any, PathMap, float], Outcome | None]] = {
    m.StartUnit: _start_unit,
    m.NginxTest: _nginx_test,
    m.NginxReload: _nginx_reload,
}


MAX_COMMAND_SECONDS = 3600.0  # without a deadline (the agent bounds a task at that: node/host.py)


def _systemd(path: PathMap) -> str | None:
    """systemctl, where this process's node runs systemd (else the task's sh decides)."""
    if path("/") != "/" or not os.path.isdir("/run/systemd/system"):
        return None
    return shutil.which("systemctl")


def _command(argv: list[str], timeout: float, merged: bool = False) -> Outcome:
    """Run `argv` as the sh runs a step's command: stdin closed, its output (stdout, then stderr; or
    both in order with `merged`, as `2>&1`) and exit code; TransportError as run_sh gives it when it
    cannot run or times out."""
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merged else subprocess.PIPE,
            check=False,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TransportError(str(exc)) from exc
    output = done.stdout + (done.stderr or b"")
    return done.returncode, output.decode("utf-8", errors="replace")


@run.register(m.CheckHealth)
def _(task: m.CheckHealth, path: PathMap) -> Outcome | None:
    return check_health(task, None)


def check_health(task: m.CheckHealth, env: Mapping[str, str] | None) -> Outcome | None:
    """The sh's loop without a curl, a sleep and a shell per try (the unit's state from systemd's
    bus, what `systemctl is-active` reads). A container's liveness stays in sh (docker)."""
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

    # (retries - 1) intervals for an instance to come up, the first pauses shorter (FIRST_PAUSE,
    # doubling up to the interval) within that time: the sh's schedule (node/shell.py), in seconds.
    budget, waited, pause = (check.retries - 1) * check.interval, 0.0, FIRST_PAUSE
    while not healthy():
        if waited >= budget:
            return 1, f"unhealthy after {check.retries} tries"
        step = min(pause, check.interval, budget - waited)
        time.sleep(step)
        waited, pause = waited + step, pause * 2
    if task.min_healthy_seconds:
        time.sleep(task.min_healthy_seconds)
        if not healthy():
            return 1, f"unhealthy after {task.min_healthy_seconds:g}s"
    return 0, ""


def _unit_active(unit: str, env: Mapping[str, str] | None) -> bool:
    """`env`: the sh's environment (its PATH finds systemctl), None: this process's. This node's
    systemd is asked over its bus (the agent's kept connection), as `systemctl is-active` asks it: a
    systemctl per poll cost the node ~8 ms of CPU (its start, and PID 1 setting up its connection),
    dozens of polls while an app starts on a busy node."""
    if env is None and os.path.isdir("/run/systemd/system"):
        with contextlib.suppress(systemd_bus.BusError):
            return systemd_bus.active_state(unit) in ("active", "reloading")  # is-active's exit 0
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
        left = None if deadline is None else max(deadline - time.monotonic(), 0.001)
        command = COMMANDS.get(type(task)) if env is None else None
        if isinstance(task, m.CheckHealth):
            done = check_health(task, env)
        elif command is not None:
            done = command(task, path, MAX_COMMAND_SECONDS if left is None else left)
        else:
            done = run(task, path)
        if done is None:
            step = render(task, path)
            result = run_sh(f"umask 077\n{step.script}", step.stdin, left)
            done = (result.exit_code, (result.stdout + result.stderr).decode("utf-8", errors="replace"))
        code, output = done
        # As parse_bundle reads the bundle's steps: seconds to the millisecond, output stripped.
        seconds = round((time.monotonic_ns() - started) / 1e9, 3)
        steps.append(StepResult(i, code, seconds, utf8_text(output).strip()))
        if code != 0:
            break
    return steps
