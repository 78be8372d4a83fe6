"""What systemd sends a private bus connection unasked (kinds/systemd_bus.py): every signal. Only the
jobs connection keeps a JobRemoved, until its next job; a connection left unused is closed. The
exchanges with a real systemd are tests/lab/test_systemd_bus.py's."""

from __future__ import annotations

import socket
import struct
import time

from funops.kinds import systemd_bus as bus

SIGNAL, REPLY = 4, 2


def _message(
    kind: int, serial: int, fields: list[tuple[int, str, object]], signature: str, body: bytes
) -> bytes:
    """A little-endian D-Bus message as systemd writes one (header fields, then the body)."""
    head_fields = bytearray()
    for code, sig, value in [*fields, (8, "g", signature)]:
        bus._pad(head_fields, 8)
        head_fields.append(code)
        bus._string(head_fields, sig, "g")
        if sig == "u":
            bus._pad(head_fields, 4)
            head_fields.extend(struct.pack("<I", value))
        else:
            bus._string(head_fields, str(value), sig)
    head = bytearray(bytes([ord("l"), kind, 1, 1]) + struct.pack("<III", len(body), serial, len(head_fields)))
    head.extend(head_fields)
    bus._pad(head, 8)
    return bytes(head + body)


def _signal(member: str, signature: str, body: bytes) -> bytes:
    path, iface = (1, "o", "/org/freedesktop/systemd1"), (2, "s", "org.freedesktop.systemd1.Manager")
    return _message(SIGNAL, 900, [path, iface, (3, "s", member)], signature, body)


def _job_removed(job: str, result: str) -> bytes:
    body = bytearray(struct.pack("<I", 42))
    for text, code in ((job, "o"), ("x.service", "s"), (result, "s")):
        bus._string(body, text, code)
    return _signal("JobRemoved", "uoss", bytes(body))


def _properties_changed() -> bytes:
    body = bytearray()
    bus._string(body, "org.freedesktop.systemd1.Unit")
    return _signal("PropertiesChanged", "s", bytes(body))


def _reply(to: int, text: str) -> bytes:
    body = bytearray()
    bus._string(body, text)
    return _message(REPLY, 901, [(5, "u", to)], "s", bytes(body))


def _read(
    stream: bytes, serials: range, removed: dict[str, str] | None
) -> dict[int, tuple[str | None, object]]:
    ours, systemd = socket.socketpair()
    with ours, systemd:
        systemd.sendall(stream)
        return bus._replies(ours, serials, bytearray(), removed)


def test_a_connection_not_waiting_for_jobs_passes_every_signal_over() -> None:
    stream = _properties_changed() + _job_removed("/org/freedesktop/systemd1/job/7", "done") + _reply(3, "x")
    assert _read(stream, range(3, 4), None) == {3: (None, "x")}


def test_the_jobs_connection_keeps_each_job_removed_it_reads() -> None:
    removed: dict[str, str] = {}
    stream = (
        _properties_changed() + _job_removed("/org/freedesktop/systemd1/job/7", "failed") + _reply(3, "x")
    )
    assert _read(stream, range(3, 4), removed) == {3: (None, "x")}
    assert removed == {"/org/freedesktop/systemd1/job/7": "failed"}


def test_a_connection_unused_for_long_is_closed_and_one_in_use_is_not() -> None:
    connection = bus._Connection()
    ours, systemd = socket.socketpair()
    with systemd:
        connection.sock = ours
        connection._used = time.monotonic()
        connection.close_if_idle(60)
        assert connection.sock is ours  # used a moment ago
        connection._used = time.monotonic() - 61
        with connection._lock:  # an exchange under way: not waited for, not closed
            connection.close_if_idle(60)
        assert connection.sock is ours
        connection.close_if_idle(60)
        assert connection.sock is None and ours.fileno() == -1
