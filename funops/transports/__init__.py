"""transports: how commands reach a node (local, ssh, agent). Nothing above this package knows which."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from .base import CommandResult, Transport, TransportError

if TYPE_CHECKING:
    from pathlib import Path

    from ..model.inventory import Node
    from ..settings import Settings

__all__ = ["CommandResult", "Connections", "Transport", "TransportError", "open_transport"]


def open_transport(node: Node, settings: Settings, repo_root: Path) -> Transport:
    if node.transport == "local":
        from .local import LocalTransport

        return LocalTransport(node, repo_root)
    if node.transport == "ssh" and node.ssh.client == "openssh":
        from .openssh import OpensshTransport

        return OpensshTransport(node, settings.ssh, repo_root)
    if node.transport == "ssh":
        from .ssh import SshTransport

        return SshTransport(node, settings.ssh, repo_root)
    if node.transport == "agent":
        from .agent import AgentTransport, WithFallback

        agent = AgentTransport(node, settings, repo_root)
        if node.agent is not None and node.agent.fallback == "ssh":
            over_ssh = node.model_copy(update={"transport": "ssh"})  # with its ssh.client
            return WithFallback(agent, lambda: open_transport(over_ssh, settings, repo_root))
        return agent
    raise TransportError(f"node {node.name}: the {node.transport} transport is not available")


class Connections:
    """One transport per node, opened on first use and reused for the whole run: a run pays one
    connection (ssh handshake, agent TLS) per node, not one per stage."""

    def __init__(self, nodes: dict[str, Node], settings: Settings, repo_root: Path) -> None:
        self._nodes, self._settings, self._root = nodes, settings, repo_root
        self._open: dict[str, Transport] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str) -> Transport:
        with self._lock:
            if name not in self._open:
                self._open[name] = open_transport(self._nodes[name], self._settings, self._root)
            return self._open[name]

    def rest(self, name: str) -> None:
        """The node's connection will not be needed for a while (a plan that gathered it): an agent
        transport closes its kept-alive connection and forgets its TLS session, ~35 KB a node, to
        dial again if it is used again; other transports keep theirs (an ssh handshake costs far
        more than the memory)."""
        with self._lock:
            transport = self._open.get(name)
        rest = getattr(transport, "rest", None)
        if rest is not None:
            rest()

    def close(self) -> None:
        with self._lock:
            for transport in self._open.values():
                transport.close()
            self._open.clear()
