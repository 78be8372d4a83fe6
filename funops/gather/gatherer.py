"""Run the probe on every targeted node in parallel; an unreachable node never blocks the others."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pydantic import ValidationError

from ..errors import FunopsError
from ..ids import Owner
from ..resources import NodeDesired
from ..state.node_state import state_path
from ..tasks.model import Probe
from ..transports import Transport, TransportError
from .probe import LiveFacts, parse


@dataclass
class NodeGather:
    """What gathering one node gave: its facts, or the error that kept them out."""

    node: str
    facts: LiveFacts | None = None
    error: str | None = None
    probed: set[str] = field(default_factory=set)  # resource ids the facts cover
    seconds: float = 0.0

    @property
    def reachable(self) -> bool:
        return self.facts is not None


def probe_node(
    transport: Transport, resource_ids: Iterable[str], state_dir: str, timeout: float, containers: bool = True
) -> LiveFacts:
    """The node's facts for these resources (`containers`: count its running containers too)."""
    probe = Probe(tuple(resource_ids), state_path(state_dir), containers)
    result = transport.call(probe, timeout=timeout)
    try:
        facts = parse(result.text(), transport.path)
    except ValueError as exc:
        raise TransportError(
            f"{exc}; stderr: {result.stderr.decode(errors='replace').strip()[:300]}"
        ) from exc
    facts.files_only = getattr(transport, "files_only", False)  # a local node under a root prefix
    if facts.has_state:
        try:
            facts.node_state  # noqa: B018 (parsed once here: what does not fit the format is refused)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            facts.state = None
            facts.state_error = f"state file does not fit the state format ({where}: {err['msg']})"
    return facts


def refuse_unreadable_states(gathered: dict[str, NodeGather], state_dir: str) -> None:
    """A node whose state file cannot be read is refused, never taken as never applied: an apply
    would drop its release records and the handlers it still owes."""
    bad = [
        f"{name}: {g.facts.state_error}"
        for name, g in sorted(gathered.items())
        if g.facts is not None and g.facts.state_error
    ]
    if bad:
        raise FunopsError(
            f"{'; '.join(bad)} ({state_path(state_dir)}): refusing to plan such a node. Repair the "
            "file (or move it away if the node should start afresh) and run again."
        )


def gather(
    desired: dict[str, NodeDesired],
    connect: Callable[[str], Transport],
    state_dir: str,
    parallel: int,
    timeout: float = 60,
    follow_managed: bool = True,
    containers: bool = True,
    done: Callable[[str], None] | None = None,
    apps: set[str] | None = None,
) -> dict[str, NodeGather]:
    """Facts for the resources each node should have, plus what its state file says funops manages
    (a second round trip only when those differ, i.e. when something is to be deleted; never
    without `follow_managed`). `apps`: the plan is of these apps only, so only their managed
    resources can be deleted and are followed (other apps' are left unread: a `restart web` used to
    read every container and unit of the node twice). `containers`: count each node's running
    containers too. `done` is called with each node's name once it is gathered (Connections.rest)."""

    def one(name: str) -> NodeGather:
        started = time.monotonic()
        result = NodeGather(node=name)
        try:
            transport = connect(name)
            ids = {r.id for r in desired[name].resources}
            facts = probe_node(transport, ids, state_dir, timeout, containers)
            managed = facts.node_state.managed if facts.has_state else {}
            deletable = {rid for rid, m in managed.items() if Owner(m.owner).deletable_in(apps)}
            if follow_managed and deletable - ids:
                ids |= deletable
                facts = probe_node(transport, ids, state_dir, timeout, containers)
            result.facts, result.probed = facts, ids
        except TransportError as exc:
            result.error = str(exc)
        result.seconds = time.monotonic() - started
        if done is not None:
            done(name)
        return result

    names = sorted(desired)
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(names) or 1))) as pool:
        return dict(zip(names, pool.map(one, names), strict=True))
