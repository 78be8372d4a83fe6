"""The paramiko transport's socket (the lab's tests run the rest of it against real sshd)."""

from __future__ import annotations

import socket

from funops.transports.ssh import _aead_first


def test_the_connection_sends_at_once_and_prefers_gcm() -> None:
    # Nagle's algorithm held each small write (channel open, exec, EOF) for the node's delayed ACK:
    # ≈ 40 ms a command on loopback.
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        transport = _aead_first(client)
        try:
            assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            assert transport.get_security_options().ciphers[0].endswith("-gcm@openssh.com")
        finally:
            transport.close()
