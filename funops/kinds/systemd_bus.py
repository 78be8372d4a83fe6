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
import socket
import struct
import threading
import time

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
    timeout is not tried again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the agent's request threads take turns
        self.sock: socket.socket | None = None
        self._pending = bytearray()  # read past the last reply (nothing, unless systemd said more)
        self._serial = 0

    def get(
        self,
        calls: list[tuple[str, tuple[str, ...]]],
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

    def _exchange(
        self, calls: list[tuple[str, tuple[str, ...]]], timeout: float, method: tuple[str, str]
    ) -> list[tuple[str | None, object]]:
        if self.sock is None or self._serial > 2**31:  # serials are 32-bit, never 0
            self._close()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock = sock
            sock.settimeout(timeout)
            sock.connect(SOCKET)
            _authenticate(sock)
        self.sock.settimeout(timeout)
        first = self._serial + 1
        self._serial += len(calls)
        self.sock.sendall(
            b"".join(_method_call(first + i, path, method, args) for i, (path, args) in enumerate(calls))
        )
        found = _replies(self.sock, range(first, first + len(calls)), self._pending)
        return [found[first + i] for i in range(len(calls))]

    def _close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self._pending, self._serial = None, bytearray(), 0


_BUS = _Connection()


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


def _method_call(serial: int, path: str, method: tuple[str, str], args: tuple[str, ...]) -> bytes:
    body = bytearray()
    for arg in args:
        _string(body, arg)
    fields = bytearray()
    for code, sig, value in (
        (1, "o", path), (2, "s", method[0]), (3, "s", method[1]), (6, "s", _DEST), (8, "g", "s" * len(args)),
    ):  # fmt: skip
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


def _replies(sock: socket.socket, serials: range, pending: bytearray) -> dict[int, tuple[str | None, object]]:
    """serial → (error name or None, the variant's value) for the replies to the calls `serials`."""
    found: dict[int, tuple[str | None, object]] = {}
    while len(found) < len(serials):
        fixed = _recv(sock, 16, pending)
        if fixed[:1] != b"l":
            raise BusError("a big-endian message")
        kind = fixed[1]
        body_len, _, fields_len = struct.unpack_from("<III", fixed, 4)
        rest = _recv(sock, fields_len + (-(16 + fields_len) % 8) + body_len, pending)
        message = fixed + rest
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
        if kind not in (2, 3) or serial not in serials:
            continue  # a signal or a call: not ours
        if kind == 3:
            found[serial] = (str(info.get(4)), None)
        elif info.get(8) == "v":
            found[serial] = (None, body.value(body.string("g")))
        elif info.get(8) == "s":  # a method's string (GetUnitFileState)
            found[serial] = (None, body.string("s"))
        else:
            raise BusError(f"a reply of signature {info.get(8)!r}")
    return found
