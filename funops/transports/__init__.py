"""transports: how commands reach a node (local, ssh, agent). Nothing above this package knows which."""

from __future__ import annotations

from pathlib import Path

from ..model.inventory import Node
from ..model.settings import Settings
from .base import CommandResult, Transport, TransportError

__all__ = ["CommandResult", "Transport", "TransportError", "open_transport"]


def open_transport(node: Node, settings: Settings, repo_root: Path) -> Transport:
    if node.transport == "local":
        from .local import LocalTransport

        return LocalTransport(node, repo_root)
    if node.transport == "ssh":
        from .ssh import SshTransport

        return SshTransport(node, settings.ssh, repo_root)
    raise TransportError(f"node {node.name}: the {node.transport} transport is not available yet")
