"""Many simulated nodes in one process: one listening socket per address, the product's agent
server (TLS, token, wire) behind each, and a bounded pool of workers shared by all of them.

A real agent serves each connection with its own thread for the connection's life (the controller
keeps one per node for a whole run). Here one selector thread watches every listening socket and
every kept-alive connection; when a connection is accepted or has its next request, a worker of
the shared pool does the TLS handshake or answers that one request, then hands the connection back.
So a process serving 125 nodes holds `workers` threads however many controllers keep connections."""

from __future__ import annotations

import ipaddress
import queue
import selectors
import socket
import socketserver
import ssl
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from funops.node.server import AgentServer, Config, Handler

from .simnode import SimNode


def addresses(first: str, count: int) -> list[str]:
    """`count` loopback addresses from `first`, skipping those ending in .0 or .255."""

    def walk() -> Iterator[str]:
        address = ipaddress.IPv4Address(first)
        while True:
            if address.packed[-1] not in (0, 255):
                yield str(address)
            address += 1

    out = []
    for address in walk():
        if len(out) == count:
            return out
        if not ipaddress.IPv4Address(address).is_loopback:
            raise ValueError(f"{address} is not a loopback address")
        out.append(address)
    return out


class _SimAgentServer(AgentServer):
    def server_bind(self) -> None:
        # HTTPServer's would look the address's name up (gethostbyaddr: ~40 ms each, 5 s per 125)
        # only to set SERVER_NAME, which the agent never uses.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class _OneRequest(Handler):
    """The agent's handler, answering one request per call (the connection goes back to the selector)."""

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()


@dataclass(frozen=True)
class _Conn:
    server: AgentServer
    sock: Any  # ssl.SSLSocket once handed back
    address: Any


class Fleet:
    def __init__(self, configs: list[Config], roots: list[Path], workers: int) -> None:
        self.servers = [_SimAgentServer(c, node_side=SimNode(r)) for c, r in zip(configs, roots, strict=True)]
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="fleet-worker")
        self.selector = selectors.DefaultSelector()
        self._back: queue.SimpleQueue[_Conn] = queue.SimpleQueue()  # connections done with a request
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        for server in self.servers:
            server.socket.setblocking(False)
            self.selector.register(server.socket, selectors.EVENT_READ, server)

    def serve_forever(self) -> None:
        while True:
            for key, _ in self.selector.select():
                if key.data is None:
                    self._take_back()
                elif isinstance(key.data, AgentServer):
                    self._accept(key.data)
                else:  # a kept-alive connection has its next request (or was closed)
                    self.selector.unregister(key.fileobj)
                    self.pool.submit(self._answer, key.data)

    def _accept(self, server: AgentServer) -> None:
        while True:
            try:
                sock, address = server.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.pool.submit(self._handshake, _Conn(server, sock, address))

    def _take_back(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                conn = self._back.get_nowait()
            except queue.Empty:
                return
            self.selector.register(conn.sock, selectors.EVENT_READ, conn)

    def _handshake(self, conn: _Conn) -> None:
        sock, cfg = conn.sock, conn.server.config
        try:
            sock.setblocking(True)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(cfg.request_seconds)
            tls = conn.server.tls.wrap_socket(sock, server_side=True)
        except (OSError, ssl.SSLError):
            sock.close()
            return
        self._answer(_Conn(conn.server, tls, conn.address))  # its first request follows the handshake

    def _answer(self, conn: _Conn) -> None:
        try:
            while True:
                handler = _OneRequest(conn.sock, conn.address, conn.server)
                if handler.close_connection:
                    conn.sock.close()
                    return
                if not conn.sock.pending():  # a request already read into TLS buffers: answer it too
                    break
        except (OSError, ssl.SSLError):  # the client went away
            conn.sock.close()
            return
        except Exception:  # a bug: closed, so the client is not left waiting; said, as the pool would not
            conn.sock.close()
            traceback.print_exc()
            return
        self._back.put(conn)
        self._wake_w.send(b"\0")


def node_config(directory: Path, address: str, port: int) -> Config:
    """The agent configuration of one simulated node: the shared certificate and token of the fleet."""
    return Config(
        bind=address,
        port=port,
        cert=str(directory / "agent.crt"),
        key=str(directory / "agent.key"),
        token_sha256_file=str(directory / "token.sha256"),
    )


def serve(directory: Path, first: str, count: int, port: int, workers: int) -> None:
    """Serve `count` simulated nodes from `first` on `port`, their roots in `directory`/roots/ADDRESS;
    prints `ready` once every socket listens."""
    nodes = addresses(first, count)
    roots = [directory / "roots" / a for a in nodes]
    fleet = Fleet([node_config(directory, a, port) for a in nodes], roots, workers)
    print(f"ready {len(nodes)}", flush=True)
    fleet.serve_forever()
