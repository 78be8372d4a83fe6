"""`funops nodes`: what each node is and runs, in one round trip per node (in parallel): the same
probe plan uses (disk, containers, nginx, the state file), plus the agent's hello on agent nodes."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ..gather.probe import parse
from ..load.project import Project
from ..state.node_state import state_path
from ..tasks.model import Probe
from ..transports import Transport, TransportError


@dataclass
class NodeStatus:
    name: str
    address: str
    transport: str
    cordoned: bool
    reachable: bool = False
    error: str | None = None
    agent: str | None = None  # the agent's version
    capabilities: list[str] = field(default_factory=list)
    disk_free_pct: float | None = None
    containers: int | None = None
    revisions: list[str] = field(default_factory=list)  # what the node's apps were last applied from
    fingerprint: str | None = None  # the host key (ssh) or certificate (agent) funops verified

    def to_json(self) -> dict[str, Any]:
        keys = {"disk_free_pct": "diskFreePct"}
        return {keys.get(k, k): v for k, v in self.__dict__.items()}


def node_statuses(project: Project, connect: Callable[[str], Transport]) -> list[NodeStatus]:
    def one(name: str) -> NodeStatus:
        node = project.nodes[name]
        status = NodeStatus(name, node.address, node.transport, node.cordoned)
        try:
            transport = connect(name)
            probe = transport.call(Probe((), state_path(project.settings.state_dir)))
            facts = parse(probe.text(), transport.path)
            hello = transport.hello() if hasattr(transport, "hello") else {}
            status.fingerprint = transport.fingerprint() if hasattr(transport, "fingerprint") else None
        except (TransportError, ValueError) as exc:
            status.error = str(exc)
            return status
        status.reachable = True
        status.agent = hello.get("agent")
        status.disk_free_pct, status.containers = facts.disk_free_pct, facts.container_count
        found = {"systemd": facts.systemd, "docker": facts.docker, "nginx": bool(facts.nginx)}
        # What funops may use there: a local node under a root prefix refuses this host's services.
        files_only = getattr(transport, "files_only", False)
        status.capabilities = sorted(k for k, present in found.items() if present and not files_only)
        try:
            status.revisions = sorted(
                {(a.revision or "")[:12] for a in facts.node_state.apps.values()} - {""}
            )
        except ValidationError:
            status.error = "its state file does not fit the state format"
        return status

    names = list(project.nodes)
    with ThreadPoolExecutor(max_workers=max(1, min(project.settings.parallel, len(names) or 1))) as pool:
        return list(pool.map(one, names))
