"""The full path's side of the no-op cache: while a run may be recorded (`cli/entry.py` found no
entry for its key), the plan's probes and answers are watched (`connect`), and a plan that found
nothing to do over the agent leaves what a replay needs (`noop`); the entry point writes it with the
run's output once the command ended with exit 0."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .replay import fingerprint

# Set by cli/entry.py for one run: whether to watch, and what was seen.
active = False
secret = b""  # the repo's key for the answers' digests (store.local_key)
seen: dict[str, tuple[str, float, str | None]] = {}  # node → (probe body, reply timeout, digest)
pending: dict[str, Any] | None = None  # the nodes' part of the entry, once the plan was a no-op


class _Watched:
    """A node's transport whose probes are noted (the last one is what the plan's facts are)."""

    def __init__(self, inner: Any, name: str, command_timeout: float) -> None:
        self._inner, self._name, self._command_timeout = inner, name, command_timeout

    def call(self, task: Any, timeout: float | None = None) -> Any:
        result = self._inner.call(task, timeout)
        if type(task).__name__ == "Probe":
            from ..node.wire import encode

            body = json.dumps({"task": encode(task), "timeout": timeout})
            wait = (timeout or self._command_timeout) + 30  # as transports/agent.py waits
            seen[self._name] = (body, wait, fingerprint(result.exit_code, result.text(), secret))
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Plans:
    """A plan's own connections (make_plan's, when none is given), watched: like make_plan's own, each
    node's rests once gathered (`rest_once_gathered`)."""

    def __init__(self, connections: Any, command_timeout: float) -> None:
        self._connections, self._command_timeout = connections, command_timeout
        self.rest_once_gathered = connections.rest

    def __call__(self, name: str) -> _Watched:
        return _Watched(self._connections(name), name, self._command_timeout)


def connect(project: Any, connections: Any = None) -> Callable[[str], Any] | None:
    """What make_plan should reach the nodes with: `connections` (or make_plan's own, None) as is
    when not recording, else the same watched. Without `connections` the plan's own are made here,
    and rest as make_plan's own would: kept open, 2,000 agent connections held ~55 MB."""
    if not active:
        return connections
    timeout = project.settings.ssh.command_timeout
    if connections is None:
        from ..transports import Connections

        return _Plans(Connections(project.nodes, project.settings, project.root), timeout)
    return lambda name: _Watched(connections(name), name, timeout)


def noop(project: Any, plan: Any, text_output: bool) -> None:
    """Note a plan a later run may replay: nothing to do anywhere, every target an agent node that
    answered, text output, no certificates (their renewal is a matter of time), no `replicas` app
    (placed by the free disk the digest leaves out), the working tree (not a --revision)."""
    global pending
    if not active or not text_output:
        return
    doc = plan.doc
    if doc.has_changes() or doc.certificates or doc.summary.nodes_unreachable:
        return
    if project.revision.ref != "working tree" or any(a.spec.replicas for a in project.apps.values()):
        return
    from ..transports.agent import client_paths, endpoint, pins_path, token_path

    nodes = {}
    for name in doc.targets:
        node = project.nodes[name]
        if node.transport != "agent" or node.agent is None or name not in seen or seen[name][2] is None:
            return
        body, wait, digest = seen[name]
        host, port = endpoint(node)
        client = client_paths(project.root, node)
        nodes[name] = {
            "host": host,
            "port": port,
            "pins": str(pins_path(project.root, node)),
            "tokenEnv": node.agent.token_from_env,
            "tokenFile": str(token_path(project.root, node)),
            "client": [str(p) for p in client] if client else None,
            "connectTimeout": project.settings.ssh.connect_timeout,
            "timeout": wait,
            "body": body,
            "digest": digest,
        }
    pending = {"root": str(project.root), "parallel": project.settings.parallel, "nodes": nodes}
