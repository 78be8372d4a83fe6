"""A session over a running OpenSSH master, spoken from this process (OpenSSH's PROTOCOL.mux, passenger
mode): what `ssh -S SOCKET host command` does, without starting an `ssh` process per command (≈ 5 ms
of CPU and a fork each). The master already verified the host; it runs the command on its connection
with the pipes handed to it, and says the exit status on the socket.

Only a master that answers is used: any other state (no socket, a stale one, another protocol) is
`MuxUnavailable`, and the caller runs the `ssh` client instead, which makes a new master as a fresh
connection would.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import threading
import time

MUX_MSG_HELLO = 0x00000001
MUX_C_NEW_SESSION = 0x10000002
MUX_S_PERMISSION_DENIED = 0x80000002
MUX_S_FAILURE = 0x80000003
MUX_S_EXIT_MESSAGE = 0x80000004
MUX_S_SESSION_OPENED = 0x80000006
MUX_S_TTY_ALLOC_FAIL = 0x80000008
VERSION = 4
_NO_ESCAPE = 0xFFFFFFFF
_BUFSIZE = 65536


class MuxUnavailable(Exception):
    """No master answers on the socket (or not in a protocol we speak): use the ssh client."""


class MuxLost(Exception):
    """The session was opened and then lost (the master died, or the command outlived the timeout)."""


def _string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def _packet(*fields: bytes) -> bytes:
    body = b"".join(fields)
    return struct.pack(">I", len(body)) + body


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("the master closed the control connection")
        data += chunk
    return data


def _read_packet(sock: socket.socket) -> tuple[int, bytes]:
    (length,) = struct.unpack(">I", _recv_exact(sock, 4))
    if not 4 <= length <= 256 * 1024:
        raise EOFError(f"a mux packet of {length} bytes")
    body = _recv_exact(sock, length)
    return struct.unpack(">I", body[:4])[0], body[4:]


def new_session_request(request_id: int, command: str) -> bytes:
    """MUX_C_NEW_SESSION: no tty, no X11, no agent, no subsystem, no escape character (the flags are
    uint32 on the wire, as mux.c reads them, not the bool PROTOCOL.mux says)."""
    return _packet(
        struct.pack(">II", MUX_C_NEW_SESSION, request_id),
        _string(b""),  # reserved
        struct.pack(">IIIII", 0, 0, 0, 0, _NO_ESCAPE),  # tty, X11, agent, subsystem, escape char
        _string(b""),  # terminal type
        _string(command.encode()),
    )


def run(path: str, command: str, stdin: bytes, timeout: float) -> tuple[int, bytes, bytes]:
    """Run `command` over the master listening on `path`: its exit status, stdout and stderr."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            sock.settimeout(5)
            sock.connect(path)
            sock.sendall(_packet(struct.pack(">II", MUX_MSG_HELLO, VERSION)))
            kind, body = _read_packet(sock)
        except (OSError, EOFError) as exc:
            raise MuxUnavailable(str(exc) or type(exc).__name__) from exc
        if kind != MUX_MSG_HELLO or struct.unpack(">I", body[:4])[0] != VERSION:
            raise MuxUnavailable(f"the master speaks mux message {kind:#x}, version {body[:4].hex()}")
        return _session(sock, command, stdin, timeout)
    finally:
        sock.close()


def _session(sock: socket.socket, command: str, stdin: bytes, timeout: float) -> tuple[int, bytes, bytes]:
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    ours = [in_w, out_r, err_r]
    try:
        try:
            sock.sendall(new_session_request(1, command))
            for fd in (in_r, out_w, err_w):  # one descriptor a message, as ssh's mm_send_fd
                socket.send_fds(sock, [b"\0"], [fd])
        except OSError as exc:
            raise MuxUnavailable(str(exc)) from exc
        finally:
            for fd in (in_r, out_w, err_w):  # the master holds them now
                os.close(fd)
        try:  # the command may have started from here on: a failure is a lost link, never retried
            sock.settimeout(timeout)
            kind, body = _read_packet(sock)
        except (OSError, EOFError) as exc:
            raise MuxLost(str(exc) or type(exc).__name__) from exc
        if kind in (MUX_S_PERMISSION_DENIED, MUX_S_FAILURE):
            raise MuxUnavailable(body[8:].decode(errors="replace"))
        if kind != MUX_S_SESSION_OPENED:
            raise MuxUnavailable(f"unexpected mux message {kind:#x}")
        writer = threading.Thread(target=_feed, args=(in_w, stdin), daemon=True)
        ours.remove(in_w)  # _feed closes it
        writer.start()
        return _wait(sock, out_r, err_r, time.monotonic() + timeout)
    finally:
        for fd in ours:
            os.close(fd)


def _feed(fd: int, data: bytes) -> None:
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError:
        pass  # the command ended without reading all of it, as with any ssh client
    finally:
        os.close(fd)


def _wait(sock: socket.socket, out_r: int, err_r: int, deadline: float) -> tuple[int, bytes, bytes]:
    """Read stdout and stderr to their end, and the exit status from the socket."""
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    open_fds = {out_r, err_r, sock.fileno()}
    status: int | None = None
    pending = b""
    while open_fds:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise MuxLost("command timed out")
        ready, _, _ = select.select(list(open_fds), [], [], min(remaining, 1.0))
        for fd in ready:
            if fd == sock.fileno():
                data = sock.recv(_BUFSIZE)
                if not data:
                    open_fds.discard(fd)
                    continue
                pending += data
                while len(pending) >= 4 and len(pending) >= 4 + struct.unpack(">I", pending[:4])[0]:
                    length = struct.unpack(">I", pending[:4])[0]
                    kind, body = struct.unpack(">I", pending[4:8])[0], pending[8 : 4 + length]
                    pending = pending[4 + length :]
                    if kind == MUX_S_EXIT_MESSAGE:
                        status = struct.unpack(">I", body[4:8])[0]
                        open_fds.discard(fd)
                continue
            data = os.read(fd, _BUFSIZE)
            if data:
                chunks[fd].append(data)
            else:
                open_fds.discard(fd)
    if status is None:
        raise MuxLost("the session ended without an exit status (link lost)")
    return status, b"".join(chunks[out_r]), b"".join(chunks[err_r])
