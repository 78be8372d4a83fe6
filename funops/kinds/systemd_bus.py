"""What `systemctl show -p P… -- UNIT…` prints, read from systemd over its private D-Bus socket
instead: a fork and exec of systemctl costs the node ~8 ms of CPU a probe, these few messages well
under one. Standard library only (the agent runs it).

Only what the kinds ask for is spoken: properties.Get of a string, an integer, a boolean or a
timestamp on a unit's object, the calls pipelined on one connection, kept for the process's life
(the agent's): PID 1 spends ~3 ms of CPU setting up each new connection (its object tree, for that
connection), ten times what a probe's Gets cost it. Anything else — no socket, a
unit name or a property this does not know, an error systemd did not foresee — raises BusError, and
the caller runs systemctl as before. A property the unit's type does not have is left out, as
systemctl leaves it.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import threading
import time

# A connection unused this long is closed (close_idle): longer than metrics scrapes come (a minute by
# default), which would otherwise each connect anew (~3 ms of PID 1's CPU).
IDLE_SECONDS = 300.0
SOCKET = "/run/systemd/private"  # systemd's own, peer to peer (no bus daemon, no Hello): root only
_DEST, _ROOT = "org.freedesktop.systemd1", "/org/freedesktop/systemd1/unit/"
_PROPS = "org.freedesktop.DBus.Properties"
_UNIT = "Unit"  # the interface every unit has; the others are the unit type's (Service, Timer, …)
# property → (its interface, how systemctl prints it: "s" as is, "n" a number, "t" a timestamp,
# "b" yes or no)
KNOWN = {
    "Id": (_UNIT, "s"),
    "LoadState": (_UNIT, "s"),
    "ActiveState": (_UNIT, "s"),
    "SubState": (_UNIT, "s"),
    "UnitFileState": (_UNIT, "s"),
    "FragmentPath": (_UNIT, "s"),
    "NeedDaemonReload": (_UNIT, "b"),
    "ActiveEnterTimestamp": (_UNIT, "t"),
    "NRestarts": (None, "n"),
    "Result": (None, "s"),
    "ExecMainStatus": (None, "n"),
    "ExecMainExitTimestamp": (None, "t"),
    "NextElapseUSecRealtime": (None, "t"),
}
_OMITTED = ("org.freedesktop.DBus.Error.UnknownProperty", "org.freedesktop.DBus.Error.UnknownInterface")
_TYPES = (
    "service",
    "socket",
    "target",
    "device",
    "mount",
    "automount",
    "swap",
    "timer",
    "path",
    "slice",
    "scope",
)


class BusError(Exception):
    """Not answered here: run systemctl."""


def show(units: list[str], properties: tuple[str, ...], timeout: float = 10) -> str:
    """`systemctl show`'s blocks (blank-line separated, one per unit, `Key=value` lines)."""
    if any(p not in KNOWN for p in properties):
        raise BusError("a property not known here")
    calls = [(unit, prop, *_interface(unit, prop)) for unit in units for prop in properties]
    messages = [(_ROOT + _escape(unit), (iface, prop)) for unit, prop, iface, _ in calls]
    replies = _BUS.get(messages, timeout)
    blocks = []
    for unit in units:
        lines = []
        for i, (u, prop, _, how) in enumerate(calls):
            if u != unit:
                continue
            error, value = replies[i]
            if error in _OMITTED:
                continue
            if error is not None:
                raise BusError(f"{unit} {prop}: {error}")
            lines.append(f"{prop}={_format(value, how)}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def active_state(unit: str, timeout: float = 10) -> str:
    """The unit's ActiveState (`systemctl is-active` prints it; a unit not loaded is `inactive`)."""
    iface, _ = _interface(unit, "ActiveState")
    ((error, value),) = _BUS.get([(_ROOT + _escape(unit), (iface, "ActiveState"))], timeout)
    if error is not None:
        raise BusError(f"{unit} ActiveState: {error}")
    return str(value)


def unit_file_state(unit: str, timeout: float = 10) -> str:
    """What `systemctl is-enabled` prints: the manager's GetUnitFileState, read from the unit files
    on disk now (a loaded unit's UnitFileState property is cached until a daemon-reload)."""
    _escape(unit)  # the same names as the rest of this module
    manager = (f"{_DEST}.Manager", "GetUnitFileState")
    ((error, value),) = _BUS.get([("/org/freedesktop/systemd1", (unit,))], timeout, manager)
    if error is not None:
        raise BusError(f"{unit} GetUnitFileState: {error}")
    return str(value)


def run_job(verb: str, unit: str, timeout: float) -> str:
    """`systemctl VERB UNIT` (start, restart, reload) as systemctl does it: the manager's
    `<Verb>Unit(unit, "replace")`, then that job's JobRemoved: its result ("done": it succeeded).
    BusError when systemd could not be asked or refused the call (the caller runs systemctl, which
    says why: a start or reload run again is harmless); TimeoutError when the job outlasts `timeout`."""
    _escape(unit)
    method = (f"{_DEST}.Manager", f"{verb.capitalize()}Unit")
    return _JOBS.job(("/org/freedesktop/systemd1", (unit, "replace")), method, timeout)


def enable(unit: str, timeout: float = 10) -> bool:
    """`systemctl enable --no-reload`: the manager's EnableUnitFiles(unit, runtime no, force no);
    False when the unit file has no [Install] section (systemctl then says so: run it instead)."""
    _escape(unit)
    method = (f"{_DEST}.Manager", "EnableUnitFiles")
    ((error, value),) = _BUS.get([("/org/freedesktop/systemd1", ((unit,), False, False))], timeout, method)
    if error is not None:
        raise BusError(f"{unit} EnableUnitFiles: {error}")
    return bool(value)


def service_result(unit: str, timeout: float = 10) -> str:
    """A service's Result (why its job failed, as systemctl explains a failed job)."""
    iface, _ = _interface(unit, "Result")
    ((error, value),) = _BUS.get([(_ROOT + _escape(unit), (iface, "Result"))], timeout)
    return str(value) if error is None else ""


def values(units: list[str], properties: tuple[str, ...], timeout: float = 5) -> dict[str, dict[str, object]]:
    """Each unit's properties as systemd holds them (a timestamp in microseconds since the epoch, 0 for
    never), for the agent's /metrics; a property the unit's type does not have is left out."""
    if any(p not in KNOWN for p in properties):
        raise BusError("a property not known here")
    calls = [(unit, prop, _interface(unit, prop)[0]) for unit in units for prop in properties]
    replies = _BUS.get([(_ROOT + _escape(unit), (iface, prop)) for unit, prop, iface in calls], timeout)
    out: dict[str, dict[str, object]] = {unit: {} for unit in units}
    for i, (unit, prop, _) in enumerate(calls):
        error, value = replies[i]
        if error is not None and error not in _OMITTED:
            raise BusError(f"{unit} {prop}: {error}")
        if error is None:
            out[unit][prop] = value
    return out


class _Connection:
    """The one connection to systemd, opened at first use. A failure on it closes it (nothing half
    read is left for the next exchange). A connection that was already open and broke (PID 1
    re-executed since: daemon-reexec, an upgrade) is replaced and the exchange tried once more; a
    timeout is not tried again.

    systemd sends each of its private connections every signal it emits, unasked: a unit's start or a
    daemon-reload, dozens of PropertiesChanged. Only a connection that waits for `jobs` reads its
    JobRemoved; every other signal is passed over unparsed (the signals of 300 job runs read in
    19 ms, against 29 parsed), and a JobRemoved is kept only until that connection's next job (kept
    for good, every job the node ran piled up in the agent's memory). Unread, the signals
    pile up (≈ 16 kB for each `systemctl start` of a oneshot unit, measured): in the socket, whose
    buffer systemd raises to 8 MB, then in PID 1's own queue. So a connection left unused is closed
    (close_idle) and its next use connects anew."""

    def __init__(self, jobs: bool = False) -> None:
        self._lock = threading.Lock()  # the agent's request threads take turns
        self.sock: socket.socket | None = None
        self._pending = bytearray()  # read past the last reply (nothing, unless systemd said more)
        self._serial = 0
        # job path → its result, from the JobRemoved signals read; None: not a jobs connection
        self._removed: dict[str, str] | None = {} if jobs else None
        self._used = 0.0  # time.monotonic() of its last exchange

    def get(
        self,
        calls: list[tuple[str, tuple[object, ...]]],
        timeout: float,
        method: tuple[str, str] = (_PROPS, "Get"),
    ) -> list[tuple[str | None, object]]:
        """`method` (interface, member; Properties.Get: each call's args are (interface, property))
        called on each (object path, string args): (error name or None, value)."""
        with self._lock:
            reused = self.sock is not None
            try:
                return self._exchange(calls, timeout, method)
            except (OSError, BusError) as exc:
                self._close()
                if not reused or isinstance(exc, socket.timeout):  # 3.9: not TimeoutError
                    raise BusError(str(exc)) from exc
            try:
                return self._exchange(calls, timeout, method)
            except (OSError, BusError) as exc:
                self._close()
                raise BusError(str(exc)) from exc

    def job(self, call: tuple[str, tuple[object, ...]], method: tuple[str, str], timeout: float) -> str:
        """Queue a job (`method` returns its object path), then wait for its JobRemoved: systemd
        sends every signal to each of its private connections, unasked."""
        deadline = time.monotonic() + timeout
        with self._lock:
            removed = self._removed
            assert removed is not None, "job() needs a connection made for jobs (_JOBS)"
            removed.clear()  # other jobs' ends (timers', systemctl's): nobody waits for them
            try:
                ((error, job),) = self._exchange([call], timeout, method)
            except (OSError, BusError) as exc:
                self._close()  # a kept connection that broke: the next one is new
                raise BusError(str(exc)) from exc
            if error is not None:
                raise BusError(f"{method[1]} {call[1][0]}: {error}")
            try:
                while job not in removed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError()
                    assert self.sock is not None
                    self.sock.settimeout(left)
                    _replies(self.sock, range(0), self._pending, removed)
            except (OSError, BusError) as exc:
                self._close()
                if isinstance(exc, (socket.timeout, TimeoutError)):  # 3.9: socket.timeout is not one
                    why = f"{call[1][0]}: its job did not finish in {timeout:g}s"
                    raise TimeoutError(why) from exc
                raise BusError(str(exc)) from exc
            self._used = time.monotonic()
            return removed.pop(str(job))

    def close_if_idle(self, seconds: float) -> None:
        """Closed if open and unused for `seconds`; never waits for an exchange under way."""
        if self.sock is None or not self._lock.acquire(blocking=False):
            return
        try:
            if self.sock is not None and time.monotonic() - self._used > seconds:
                self._close()
        finally:
            self._lock.release()

    def _exchange(
        self, calls: list[tuple[str, tuple[object, ...]]], timeout: float, method: tuple[str, str]
    ) -> list[tuple[str | None, object]]:
        if self.sock is None or self._serial > 2**31:  # serials are 32-bit, never 0
            self._close()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock = sock
            sock.settimeout(timeout)
            sock.connect(SOCKET)
            _authenticate(sock)
            self._awaken(sock, timeout)
        self._used = time.monotonic()
        self.sock.settimeout(timeout)
        first = self._serial + 1
        self._serial += len(calls)
        self.sock.sendall(
            b"".join(_method_call(first + i, path, method, args) for i, (path, args) in enumerate(calls))
        )
        found = _replies(self.sock, range(first, first + len(calls)), self._pending, self._removed)
        return [found[first + i] for i in range(len(calls))]

    def _awaken(self, sock: socket.socket, timeout: float) -> None:
        """Ping a new connection until systemd answers: PID 1 may leave what came with the end of
        the authentication (or its reply to it) unsent until the connection next sends it something
        (seen on a busy node: a job run, its reply held back for good)."""
        deadline, wait = time.monotonic() + timeout, 0.002
        while True:
            self._serial += 1
            sock.sendall(_method_call(self._serial, "/", ("org.freedesktop.DBus.Peer", "Ping"), ()))
            ready, _, _ = select.select([sock], [], [], min(wait, max(deadline - time.monotonic(), 0)))
            if ready or time.monotonic() >= deadline:
                break
            wait = min(wait * 2, 0.05)
        _replies(sock, range(1, self._serial + 1), self._pending, self._removed)

    def _close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self._pending, self._serial = None, bytearray(), 0
        if self._removed is not None:
            self._removed.clear()


_BUS = _Connection()
# Jobs wait on their own connection (made once): a restart may take seconds, which the reads on
# _BUS (health checks, /metrics) must not wait behind.
_JOBS = _Connection(jobs=True)


def close_idle(seconds: float = IDLE_SECONDS) -> None:
    """Close the connections unused for `seconds` (the agent calls it between requests)."""
    for connection in (_BUS, _JOBS):
        connection.close_if_idle(seconds)


def _interface(unit: str, prop: str) -> tuple[str, str]:
    iface, how = KNOWN[prop]
    if iface is None:  # the unit type's own interface
        kind = unit.rpartition(".")[2]
        if kind not in _TYPES:
            raise BusError(f"unit type of {unit!r}")
        iface = kind.capitalize()
    return f"{_DEST}.{iface}", how


def _escape(name: str) -> str:
    """A unit's object path label (sd-bus's bus_label_escape): [A-Za-z0-9] kept, but for a leading
    digit, everything else as _xx."""
    if not name or not name.isascii():
        raise BusError(f"unit name {name!r}")
    return "".join(
        c if c.isalnum() and not (i == 0 and c.isdigit()) else f"_{ord(c):02x}" for i, c in enumerate(name)
    )


def _format(value: object, how: str) -> str:
    if how == "t":
        usec = int(value)  # type: ignore[call-overload]
        if usec in (0, 2**64 - 1):
            return ""
        return time.strftime("%a %Y-%m-%d %H:%M:%S %Z", time.localtime(usec // 1_000_000))
    if how == "b":
        return "yes" if value else "no"
    return str(value)


# ---- the wire: little-endian messages, as systemd sends them on x86 and arm ---------------------------


def _authenticate(sock: socket.socket) -> None:
    sock.sendall(b"\0AUTH EXTERNAL " + str(os.geteuid()).encode().hex().encode() + b"\r\n")
    line = b""
    while not line.endswith(b"\r\n"):
        chunk = sock.recv(256)
        if not chunk:
            raise BusError("the bus closed during authentication")
        line += chunk
    if not line.startswith(b"OK "):
        raise BusError(f"authentication refused: {line[:80]!r}")
    sock.sendall(b"BEGIN\r\n")


def _pad(buf: bytearray, n: int) -> None:
    buf.extend(b"\0" * (-len(buf) % n))


def _string(buf: bytearray, text: str, code: str = "s") -> None:
    data = text.encode()
    if code == "g":
        buf.append(len(data))
    else:
        _pad(buf, 4)
        buf.extend(struct.pack("<I", len(data)))
    buf.extend(data + b"\0")


def _method_call(serial: int, path: str, method: tuple[str, str], args: tuple[object, ...]) -> bytes:
    """`args`: strings, tuples of strings (an array) and booleans."""
    body, signature = bytearray(), ""
    for arg in args:
        if isinstance(arg, tuple):
            items = bytearray()
            for item in arg:
                _string(items, item)
            _pad(body, 4)
            body.extend(struct.pack("<I", len(items)))
            body.extend(items)  # strings align to 4: from an aligned offset, the padding is the same
            signature += "as"
        elif isinstance(arg, bool):
            _pad(body, 4)
            body.extend(struct.pack("<I", arg))
            signature += "b"
        else:
            _string(body, str(arg))
            signature += "s"
    fields = bytearray()
    for code, sig, value in (
        (1, "o", path), (2, "s", method[0]), (3, "s", method[1]), (6, "s", _DEST), (8, "g", signature),
    ):  # fmt: skip
        if not value:  # no arguments: no signature
            continue
        _pad(fields, 8)
        fields.append(code)
        _string(fields, sig, "g")
        _string(fields, value, sig)
    head = bytearray(b"l\x01\x00\x01" + struct.pack("<III", len(body), serial, len(fields)))
    head.extend(fields)
    _pad(head, 8)
    return bytes(head + body)


class _Reader:
    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data, self.at = data, offset

    def align(self, n: int) -> None:
        self.at += -self.at % n

    def take(self, fmt: str, size: int) -> int:
        self.align(size)
        (value,) = struct.unpack_from(fmt, self.data, self.at)
        self.at += size
        return int(value)

    def string(self, code: str) -> str:
        n = self.data[self.at] if code == "g" else self.take("<I", 4)
        start = self.at + (1 if code == "g" else 0)
        self.at = start + n + 1
        return self.data[start : start + n].decode()

    def value(self, code: str) -> object:
        if code in "sog":
            return self.string(code)
        if code in "ub":
            return self.take("<I", 4)
        if code == "i":
            return self.take("<i", 4)
        if code == "t":
            return self.take("<Q", 8)
        raise BusError(f"a value of type {code!r}")


def _recv(sock: socket.socket, n: int, pending: bytearray) -> bytes:
    while len(pending) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise BusError("the bus closed")
        pending.extend(chunk)
    out = bytes(pending[:n])
    del pending[:n]
    return out


def _replies(
    sock: socket.socket, serials: range, pending: bytearray, removed: dict[str, str] | None
) -> dict[int, tuple[str | None, object]]:
    """serial → (error name or None, the variant's value) for the replies to the calls `serials`;
    the JobRemoved signals met on the way go to `removed` (job path → result), unless it is None.
    With no serials: read one message."""
    found: dict[int, tuple[str | None, object]] = {}
    while len(found) < len(serials) or not serials:
        fixed = _recv(sock, 16, pending)
        if fixed[:1] != b"l":
            raise BusError("a big-endian message")
        kind = fixed[1]
        body_len, _, fields_len = struct.unpack_from("<III", fixed, 4)
        rest = _recv(sock, fields_len + (-(16 + fields_len) % 8) + body_len, pending)
        message = fixed + rest
        if kind == 4 and (removed is None or b"JobRemoved" not in message):
            if not serials:
                return found
            continue  # a signal not waited for: not parsed (a daemon-reload sends dozens)
        header = _Reader(message, 16)
        end = 16 + fields_len
        info: dict[int, object] = {}
        while header.at < end:
            header.align(8)
            code = message[header.at]
            header.at += 1
            info[code] = header.value(header.string("g"))
        body = _Reader(message, end + (-end % 8))
        serial = info.get(5)
        if kind == 4 and removed is not None and info.get(3) == "JobRemoved" and info.get(8) == "uoss":
            body.take("<I", 4)
            job, _unit, result = body.string("o"), body.string("s"), body.string("s")
            removed[job] = result
        if not serials:
            return found
        if kind not in (2, 3) or serial not in serials:
            continue  # a signal or a call: not ours
        if kind == 3:
            found[serial] = (str(info.get(4)), None)
        elif info.get(8) == "v":
            found[serial] = (None, body.value(body.string("g")))
        elif info.get(8) in ("s", "o"):  # a method's string (GetUnitFileState), a job's path
            found[serial] = (None, body.string("s"))
        elif info.get(8) == "ba(sss)":  # EnableUnitFiles: whether the file has [Install]
            found[serial] = (None, body.take("<I", 4))
        elif info.get(8) is None:  # Ping's
            found[serial] = (None, None)
        else:
            raise BusError(f"a reply of signature {info.get(8)!r}")
    return found
