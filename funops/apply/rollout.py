"""Batched, health-gated rollout of a plan (README.md, "Using it"; docs/architecture.md, "The pipeline").

Nodes that change are split into batches by the strictest strategy among the apps that change;
a batch's nodes converge in parallel (bounded by --parallel) and each must pass its health gate.
The failure budget (maxFailures) is counted across all batches, and an unreachable node counts as a
failure (Ansible does not: ansible/ansible#18782). Past the budget the rollout halts: later batches
stay untouched, and every node's outcome is recorded.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..model.strategy import UpdateStrategy
from ..plan.planner import Plan
from ..plan.releases import NodeReleases, now
from ..transports import Transport, TransportError
from .bake import bake
from .drain import Drainer
from .executor import Emit, NodeOutcome, NodeRun
from .locking import NodeLocks


@dataclass
class RolloutResult:
    id: str
    outcomes: dict[str, NodeOutcome] = field(default_factory=dict)
    batches: list[list[str]] = field(default_factory=list)
    halted: bool = False
    halt_reason: str | None = None
    seconds: float = 0.0
    releases: dict[str, NodeReleases] = field(default_factory=dict)  # node → what it recorded

    @property
    def release_ids(self) -> dict[str, str]:
        """app → the id of the release this rollout made."""
        return {r.app: r.id for nr in self.releases.values() for r in nr.records}

    @property
    def changed(self) -> dict[str, list[str]]:
        """app → the nodes where this rollout released it and ran (succeeded, or failed midway)."""
        ran = {n for n, o in self.outcomes.items() if o.status in ("succeeded", "failed")}
        found: dict[str, set[str]] = {}
        for name, node in self.releases.items():
            for record in node.records:
                if name in ran:
                    found.setdefault(record.app, set()).add(name)
        return {app: sorted(nodes) for app, nodes in found.items()}

    @property
    def failed(self) -> list[str]:
        return sorted(n for n, o in self.outcomes.items() if o.failed)


def plan_digest(plan: Plan) -> str:
    """What the plan would do, independent of when it was made: for the journal and saved plans."""
    body = plan.doc.model_dump(by_alias=True, exclude={"created_at"})
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def execute(
    plan: Plan,
    connect: Callable[[str], Transport],
    emit: Emit,
    parallel: int | None = None,
    skip_unreachable: bool = False,
) -> RolloutResult:
    """Run the plan. Unreachable nodes are recorded as such and count against the failure budget,
    unless `skip_unreachable` (then they are only reported: exit 4 when all else went well)."""
    started = time.monotonic()
    project = plan.project
    settings = project.settings
    result = RolloutResult(id=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + plan_digest(plan)[:8])
    strategy = plan.program.strategy  # decided with the plan: apply follows it, never re-derives it
    result.releases = stamped(plan, result.id, who())
    parallel = parallel or settings.parallel

    unreachable = [n.name for n in plan.doc.nodes if not n.reachable]
    for name in unreachable:
        result.outcomes[name] = NodeOutcome(name, "unreachable", error=plan.gathered[name].error)
    changed = [n.name for n in plan.doc.nodes if n.reachable and (n.changes or n.owed)]
    for n in plan.doc.nodes:
        if n.reachable and n.name not in changed:
            result.outcomes[n.name] = NodeOutcome(n.name, "unchanged")
    result.batches = [list(batch) for batch in plan.program.batches]
    emit(
        {
            "event": "start",
            "rollout": result.id,
            "batches": result.batches,
            "unreachable": unreachable,
            "strategy": strategy.model_dump(by_alias=True),
            "kind": plan.intent.kind,
            "releases": result.release_ids,
        }
    )

    drainer = Drainer(plan, connect, emit)  # ingress nodes change too: they are locked as well
    locks = NodeLocks(connect, settings.state_dir)
    # LockHeld: nothing was changed; PlanStale: a locked node changed since the plan (another apply
    # got there first). Each node is confirmed as soon as it is locked.
    locks.take(sorted({*changed, *drainer.ingress_nodes()}), confirm=plan)
    locks.start_heartbeat()
    try:
        failures = 0 if skip_unreachable else len(unreachable)
        if not _certificates(plan, connect, emit, result):
            failures = strategy.max_failures + 1  # halts before the first batch: no node is touched
        for index, batch in enumerate(result.batches, start=1):
            if failures > strategy.max_failures:
                result.halted = True
                result.halt_reason = (
                    result.halt_reason
                    or f"{failures} failure(s), more than maxFailures={strategy.max_failures}"
                )
                for later in result.batches[index - 1 :]:
                    for name in later:
                        result.outcomes[name] = NodeOutcome(name, "skipped")
                emit(
                    {
                        "event": "halt",
                        "reason": result.halt_reason,
                        "skipped": sorted(n for b in result.batches[index - 1 :] for n in b),
                    }
                )
                break
            if index > 1 and strategy.pause_seconds:
                emit({"event": "pause", "seconds": strategy.pause_seconds})
                time.sleep(strategy.pause_seconds)
            emit({"event": "batch-start", "batch": index, "of": len(result.batches), "nodes": batch})
            locks.renew(batch, unless_within=FRESH_LOCK_SECONDS)

            drainer.before(batch)
            converge = partial(_converge, plan, connect, emit, index, result.releases, locks.usable)
            with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(batch)))) as pool:
                outcomes = list(pool.map(converge, batch))
            for outcome in outcomes:
                result.outcomes[outcome.node] = outcome
            batch_failures = sum(1 for o in outcomes if o.failed)
            failures += batch_failures
            # The next batch, when it follows at once, is drained in the reload that restores this one.
            follows = index < len(result.batches) and failures <= strategy.max_failures
            upcoming = result.batches[index] if follows and not strategy.pause_seconds else None
            drainer.after(batch, [o.node for o in outcomes if not o.failed], then=upcoming)
            emit(
                {
                    "event": "batch-done",
                    "batch": index,
                    "healthy": batch_failures == 0,
                    "failed": sorted(o.node for o in outcomes if o.failed),
                }
            )
        if not result.halted and failures > strategy.max_failures:
            result.halted = True
            result.halt_reason = f"{failures} failure(s), more than maxFailures={strategy.max_failures}"
        if not result.halted and strategy.bake_seconds:
            _bake(plan, connect, emit, strategy, result, drainer)
        drainer.finish()
    finally:
        locks.release()
    result.seconds = round(time.monotonic() - started, 3)
    emit(
        {
            "event": "done",
            "rollout": result.id,
            "halted": result.halted,
            "seconds": result.seconds,
            "outcomes": {n: o.status for n, o in sorted(result.outcomes.items())},
        }
    )
    return result


def _certificates(plan: Plan, connect: Callable[[str], Transport], emit: Emit, result: RolloutResult) -> bool:
    """The ACME phase (certs/phase.py): every certificate the plan changes gets its key and
    certificate before any batch. False when one could not be had: the reason is the halt's."""
    if not any(c.action != "none" for c in plan.certificates):
        return True
    from ..certs.phase import CertificateFailed, obtain

    try:
        obtain(plan, connect, emit, ACME_ORDER)
    except CertificateFailed as exc:
        result.halt_reason = str(exc)
        emit({"event": "certificate-failed", "error": str(exc)})
        return False
    return True


# A batch's locks are renewed before it runs, unless taken (and the nodes confirmed) this recently:
# the first batch's, moments ago, cost a round trip per node for nothing.
FRESH_LOCK_SECONDS = 30.0

ACME_ORDER = None  # the ACME order function (certs/phase.py acme_order); tests put another here


def _converge(
    plan: Plan,
    connect: Callable[[str], Transport],
    emit: Emit,
    batch: int,
    releases: dict[str, NodeReleases],
    unusable: Callable[[str], str | None],
    name: str,
) -> NodeOutcome:
    emit({"event": "node-start", "node": name, "batch": batch})
    if why := unusable(name):  # never touch a node without holding its lock
        outcome = NodeOutcome(name, "failed", error=f"not converged: {why}")
        # "seconds" as every node-done has it (the text output printed a traceback without it)
        done = {"status": "failed", "error": outcome.error, "seconds": 0.0}
        emit({"event": "node-done", "node": name, "batch": batch, **done})
        return outcome
    try:
        transport = connect(name)
    except TransportError as exc:
        return NodeOutcome(name, "unreachable", error=str(exc))
    facts = plan.gathered[name].facts
    assert facts is not None  # only reachable nodes are in batches
    outcome = NodeRun(
        node=name,
        program=plan.program.nodes[name],
        state=facts.node_state,
        transport=transport,
        state_dir=plan.project.settings.state_dir,
        emit=emit,
        releases=releases[name],
    ).run()
    done = {
        "event": "node-done",
        "node": name,
        "batch": batch,
        "status": outcome.status,
        "seconds": outcome.seconds,
    }
    emit(done | ({"error": outcome.error} if outcome.error else {}))
    return outcome


def _bake(
    plan: Plan,
    connect: Callable[[str], Transport],
    emit: Emit,
    strategy: UpdateStrategy,
    result: RolloutResult,
    drainer: Drainer,
) -> None:
    """The bake window: a node unhealthy in it fails (its endpoints drained) and the rollout halts."""
    updated = sorted(n for n, o in result.outcomes.items() if o.status == "succeeded")
    unhealthy = bake(plan, connect, emit, updated, strategy.bake_seconds)
    for name, error in sorted(unhealthy.items()):
        result.outcomes[name].status, result.outcomes[name].error = "failed", error
    if unhealthy:
        drainer.before(sorted(unhealthy), wait=False)
        result.halted = True
        result.halt_reason = (
            f"unhealthy in the bake window ({strategy.bake_seconds:g}s): {', '.join(unhealthy)}"
        )
        emit({"event": "halt", "reason": result.halt_reason, "skipped": []})


def stamped(plan: Plan, rollout: str, who: str) -> dict[str, NodeReleases]:
    """Each node's release records as the program planned them, stamped with this rollout."""
    started = now()
    stamp = {"rollout": rollout, "who": who, "started": started}
    return {
        name: NodeReleases([r.model_copy(update=stamp) for r in p.records], list(p.rolls_back), p.keep)
        for name, p in plan.program.nodes.items()
    }


def who() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def journal_entry(plan: Plan, result: RolloutResult, exit_code: int) -> dict[str, Any]:
    rev = plan.project.revision
    return {
        "event": "apply",
        "kind": plan.intent.kind,
        "releases": result.release_ids,
        "id": result.id,
        "who": who(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "project": plan.project.settings.project,
        "revision": {"commit": rev.commit, "dirty": rev.dirty, "ref": rev.ref},
        "planDigest": plan_digest(plan),
        "batches": result.batches,
        "certificates": [
            {"name": c.name, "action": c.action, "reason": c.reason, "serial": c.serial}
            for c in plan.certificates
            if c.action != "none"
        ],
        "halted": result.halted,
        "haltReason": result.halt_reason,
        "exitCode": exit_code,
        "seconds": result.seconds,
        "nodes": {
            name: {
                "status": o.status,
                "error": o.error,
                "seconds": o.seconds,
                "tasks": [{"name": t.name, "ok": t.ok, "seconds": t.seconds} for t in o.tasks],
            }
            for name, o in sorted(result.outcomes.items())
        },
    }
