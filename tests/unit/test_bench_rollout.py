"""bench/rollout's accounting of a rollout's batches from apply's JSON events (the bench itself runs
on the lab: `python -m bench.rollout`)."""

from __future__ import annotations

from typing import Any

from bench.rollout.batches import batches


def at(second: float, event: str, **fields: Any) -> dict[str, Any]:
    return {"event": event, "time": f"2026-12-07T01:00:{second:06.3f}+00:00", **fields}


def test_each_batch_runs_to_the_next_and_its_overhead_is_what_the_steps_leave() -> None:
    events = [
        at(0, "start"),
        at(1, "batch-start", batch=1, nodes=["node1"]),
        at(1.5, "drain", node="node1", what="drain web@node1", seconds=0.3),
        at(2, "drained", node="node1", seconds=0.4, waited=0.25),
        at(3, "task", node="node1", task="restart unit:web.service", seconds=0.5),
        at(4.5, "task", node="node1", task="health http web", seconds=1.2),
        at(5, "drain", node="node1", what="restore web@node1; drain web@node2", seconds=0.3),
        at(5.5, "drained", node="node2", seconds=0.3, waited=0.2),  # the next batch's, in this window
        at(5.5, "batch-done", batch=1),
        at(5.5, "batch-start", batch=2, nodes=["node2"]),
        at(6, "task", node="node2", task="restart unit:web.service", seconds=0.25),
        at(7, "task", node="node2", task="health http web", seconds=0.5),
        at(7.25, "drain", node="node1", what="restore web@node2", seconds=0.25),
        at(7.25, "batch-done", batch=2),
        at(7.5, "done", seconds=7.5),
    ]
    first, second = batches(events)
    assert (first.index, first.nodes, first.wall) == (1, ["node1"], 4.5)
    assert (first.drains, first.restarts, first.health) == (1.05, 0.5, 1.2)
    assert round(first.overhead, 3) == 1.75
    assert (second.wall, second.drains, second.restarts, second.health) == (1.75, 0.25, 0.25, 0.5)
    assert second.row()["overhead"] == 0.75


def test_no_batch_no_rows() -> None:
    assert batches([at(0, "start"), at(1, "done", seconds=1)]) == []
