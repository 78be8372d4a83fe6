"""Where each batch of a rollout spends its wall time, from `apply -o json`'s events (each carries
its `time`): the drains (the ingress's write, `nginx -t` and reload, then the wait for the drained
instance's connections, as the nodes timed them), the units' restarts and the health gates (the
nodes' own step durations); the overhead is whatever is left: the controller's work and the round
trips around those steps."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

RESTARTS = ("restart ", "run container", "stop ", "start ")  # task names that (re)start an instance


@dataclass
class Batch:
    index: int
    nodes: list[str]
    wall: float = 0.0  # from its batch-start to the next one's (the last: to its batch-done)
    drains: float = 0.0
    restarts: float = 0.0
    health: float = 0.0

    @property
    def overhead(self) -> float:
        return self.wall - self.drains - self.restarts - self.health

    def row(self) -> dict[str, Any]:
        return asdict(self) | {"overhead": round(self.overhead, 3)}


def when(event: dict[str, Any]) -> float:
    """The event's `time` as seconds since the epoch."""
    return datetime.fromisoformat(event["time"]).timestamp()


def batches(events: list[dict[str, Any]]) -> list[Batch]:
    """One Batch per batch-start: the events from it to the next batch-start (the last: to its
    batch-done), in the order apply printed them. The reload that restores a batch and drains the
    next one is the earlier batch's."""
    starts = [i for i, e in enumerate(events) if e["event"] == "batch-start"]
    ends = [i for i, e in enumerate(events) if e["event"] == "batch-done"]
    if not starts or not ends:
        return []
    found = []
    for lo, hi in itertools.pairwise([*starts, ends[-1]]):
        b = Batch(events[lo]["batch"], list(events[lo]["nodes"]))
        b.wall = round(when(events[hi]) - when(events[lo]), 3)
        for e in events[lo : hi + 1]:
            if e["event"] == "drain":
                b.drains += e.get("seconds", 0.0)
            elif e["event"] == "drained":
                b.drains += e.get("waited", e.get("seconds", 0.0))
            elif e["event"] == "task" and e["task"].startswith(RESTARTS):
                b.restarts += e["seconds"]
            elif e["event"] == "task" and e["task"].startswith("health "):
                b.health += e["seconds"]
        b.drains, b.restarts, b.health = round(b.drains, 3), round(b.restarts, 3), round(b.health, 3)
        found.append(b)
    return found
