"""Open a TCP connection, dialling an IP address as it is.

`socket.create_connection` asks getaddrinfo even for an address: on a node that sets glibc's resolver
up in the agent for good (~0.25 MB), and on the controller it costs each connection the lookup. Node
addresses and health-check hosts are nearly always addresses; a name is still resolved.
Runs on nodes too (the agent's health checks): Python 3.9, stdlib only."""

from __future__ import annotations

import socket


def address_family(host: str) -> int | None:
    """AF_INET or AF_INET6 when `host` is an IP address, else None (a name)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return family
    return None


def dial(host: str, port: int, timeout: float | None) -> socket.socket:
    family = address_family(host)
    if family is None:
        return socket.create_connection((host, port), timeout=timeout)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock
