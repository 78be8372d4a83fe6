"""A pull-mode node converging itself from its bundle, with push's engine: the node's lock (the same
lock push takes: the two never run at once), the probe, the diff, the release records, and NodeRun's
two round trips (changes, then the health gate and the gated nginx swap) — through the local
transport, on this machine."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..apply import lock
from ..apply.executor import NodeRun
from ..diff.differ import NodeDiff, diff_node
from ..errors import FunopsError
from ..gather.gatherer import gather, refuse_unreadable_states
from ..node.index import Index
from ..plan.program import node_program
from ..plan.releases import NodeReleases, now, release_record, touches
from ..plan.schedule import node_releasing_apps
from ..state.lock import LockInfo
from ..state.node_state import NodeState
from ..state.records import RevisionRef
from ..transports import Transport, TransportError
from ..transports.local import LocalTransport
from .bundle import Bundle, from_json


@dataclass
class Converged:
    status: str  # unchanged | succeeded | failed | unreachable (NodeRun's), or "locked"
    error: str | None = None
    seconds: float = 0.0
    changes: list[str] = field(default_factory=list)  # "update file:/etc/…", as the plan names them
    events: list[dict[str, Any]] = field(default_factory=list)


def converge(bundle: Bundle, generation: int, transport: Transport | None = None) -> Converged:
    """Bring this machine (or the node `transport` reaches: tests) to the bundle."""
    desired = bundle.desired
    name = desired.node.name
    transport = transport or LocalTransport(desired.node.model_copy(update={"transport": "local"}), Path("/"))
    holder = LockInfo(holder=f"funops-pull@{socket.gethostname()}")
    try:
        lock.acquire(transport, bundle.state_dir, holder)
    except FunopsError as exc:  # a push apply (or another poll) holds the node: the next poll retries
        return Converged("locked", str(exc))
    try:
        gathered = gather({name: desired}, lambda _: transport, bundle.state_dir, 1)[name]
        if gathered.facts is None:
            return Converged("failed", f"cannot read this node's facts: {gathered.error}")
        refuse_unreadable_states({name: gathered}, bundle.state_dir)
        diff = diff_node(desired, gathered.facts)
        releases = _releases(bundle, diff, gathered.facts.node_state, generation)
        events: list[dict[str, Any]] = []
        program = node_program(
            desired, diff, gathered.facts.node_state, state_dir=bundle.state_dir,
            strategies=bundle.strategies, cleanup_images=bundle.cleanup_images, records=releases.records,
            rolls_back=releases.rolls_back, keep=releases.keep, revision=bundle.revision.get("commit"),
        )  # fmt: skip
        outcome = NodeRun(
            node=name, program=program, state=gathered.facts.node_state, transport=transport,
            state_dir=bundle.state_dir, emit=events.append, releases=releases,
        ).run()  # fmt: skip
        changes = [f"{c.action} {c.id}" for c in diff.pending]
        return Converged(outcome.status, outcome.error, outcome.seconds, changes, events)
    except (FunopsError, TransportError) as exc:
        return Converged("failed", str(exc))
    finally:
        with contextlib.suppress(TransportError):  # else it expires
            lock.release(transport, bundle.state_dir, holder)
        transport.close()


def _releases(bundle: Bundle, diff: NodeDiff, state: NodeState, generation: int) -> NodeReleases:
    """A release for each app this run changes, numbered after this node's last one for the app (a
    pull node numbers its own releases: no controller sees the fleet's)."""
    desired = bundle.desired
    apps = node_releasing_apps(desired, diff)
    revision = RevisionRef(**bundle.revision)
    started, who = now(), f"funops-pull@{socket.gethostname()}"
    records = [
        release_record(
            desired,
            app,
            max((r.number for r in state.releases.get(app, [])), default=0) + 1,
            f"pull-{generation}",
            who,
            started,
            bundle.strategies[app],
            revision,
        )
        for app in sorted(apps)
        if app in bundle.strategies and touches(desired, diff, app)
    ]
    return NodeReleases(records, [], bundle.keep_releases)


def converge_index(index: Index, content: bytes, transport: Any) -> dict[str, Any]:
    """A poll's converge (node/poll.py): the opened bundle of a signed index applied to this node; the
    outcome for the status file."""
    bundle = from_json(content)
    done = converge(bundle, index.generation, transport)
    out: dict[str, Any] = {"attempt": {"generation": index.generation, "status": done.status,
                                       "seconds": done.seconds, "changes": done.changes[:50]}}  # fmt: skip
    if done.status in ("succeeded", "unchanged"):
        out.update(
            result="converged", error=None, generation=index.generation, revision=index.revision,
            digest=index.digest,
            appliedAt=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )  # fmt: skip
    else:
        out.update(result="failed", error=f"generation {index.generation}: {done.status}: {done.error}")
    return out
