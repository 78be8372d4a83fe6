"""The bake window (issue 15): after the last batch, every updated instance keeps being
health-checked for `strategy.bakeSeconds`; one that fails makes its node fail, as a failed batch
would (the rollout halts, autoRollback takes the release back)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ..plan.planner import Plan
from ..transports import Transport, TransportError
from .executor import Emit


def bake(
    plan: Plan,
    connect: Callable[[str], Transport],
    emit: Emit,
    nodes: list[str],
    seconds: float,
) -> dict[str, str]:
    """node → why it failed in the window (empty: every instance stayed healthy)."""
    rounds = {n: c for n in nodes if (c := list(plan.program.nodes[n].bake))}
    if not rounds:
        return {}
    interval = 1.0  # seconds between rounds
    emit({"event": "bake", "seconds": seconds, "nodes": sorted(rounds)})
    failed: dict[str, str] = {}
    deadline = time.monotonic() + seconds

    def probe(node: str) -> tuple[str, str | None]:
        try:
            results, _ = connect(node).run_tasks(rounds[node])
        except TransportError as exc:
            return node, str(exc)
        bad = next((r for r in results if r.exit_code != 0), None)
        if bad is not None:
            return (
                node,
                f"{rounds[node][bad.index].name} failed in the bake window: {bad.output.strip()[-300:]}",
            )
        if len(results) < len(rounds[node]):
            return node, "the bake window's health checks did not finish"
        return node, None

    while rounds and time.monotonic() < deadline:
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(rounds)))) as pool:
            for node, error in pool.map(probe, sorted(rounds)):
                if error:
                    failed[node] = error
                    del rounds[node]
                    emit({"event": "bake-failed", "node": node, "error": error})
        if failed:
            break  # a failure is enough to roll back; the others need not be watched longer
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    if not failed:
        emit({"event": "baked", "seconds": seconds, "nodes": sorted(rounds)})
    return failed
