"""`funops history`'s figures over a window: per app, from the nodes' release records, how many
deploys finished, how many succeeded and how long they took (median, p95); per command, the same
from the controller's journal (apply and rollback runs, drift --fix included)."""

from __future__ import annotations

import datetime as dt
import math
import re
import statistics
from dataclasses import dataclass
from typing import Any

from ..errors import FunopsError
from .history import Release

_WINDOW = re.compile(r"^([1-9][0-9]{0,5})([mhdw])$")
_UNIT = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
FINISHED = ("succeeded", "failed", "rolled_back")  # a rolled-back release counts as not a success


@dataclass(frozen=True)
class Figures:
    name: str  # the app, or the journal's kind (deploy, rollback)
    runs: int  # finished within the window
    succeeded: int
    median_seconds: float | None
    p95_seconds: float | None

    @property
    def success_rate(self) -> float | None:
        return round(self.succeeded / self.runs, 4) if self.runs else None


def parse_window(text: str) -> dt.timedelta:
    """`30m`, `24h`, `7d`, `2w`."""
    found = _WINDOW.match(text.strip())
    if not found:
        raise FunopsError(f"--since {text!r}: give a number and a unit, e.g. 30m, 24h, 7d or 2w")
    return dt.timedelta(seconds=int(found.group(1)) * _UNIT[found.group(2)])


def percentile(values: list[float], p: float) -> float | None:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def figures(name: str, outcomes: list[tuple[bool, float | None]]) -> Figures:
    seconds = [s for _, s in outcomes if s is not None]
    return Figures(
        name=name,
        runs=len(outcomes),
        succeeded=sum(1 for ok, _ in outcomes if ok),
        median_seconds=round(statistics.median(seconds), 3) if seconds else None,
        p95_seconds=percentile(seconds, 95),
    )


def since(rels: list[Release], start: dt.datetime) -> list[Release]:
    return [r for r in rels if r.started and dt.datetime.fromisoformat(r.started) >= start]


def per_app(rels: list[Release], start: dt.datetime) -> list[Figures]:
    """Deploys (not rollbacks) started in the window and finished, per app."""
    found: dict[str, list[tuple[bool, float | None]]] = {}
    for r in since(rels, start):
        if r.kind == "deploy" and r.status in FINISHED:
            found.setdefault(r.app, []).append((r.status == "succeeded", r.seconds))
    return [figures(app, outcomes) for app, outcomes in sorted(found.items())]


def per_kind(entries: list[dict[str, Any]], start: dt.datetime) -> list[Figures]:
    """The journal's rollouts in the window by kind (deploy, rollback): exit 0 is a success."""
    found: dict[str, list[tuple[bool, float | None]]] = {}
    for e in entries:
        if e.get("event") != "apply" or not isinstance(e.get("when"), str):
            continue
        try:
            when = dt.datetime.fromisoformat(e["when"].replace("Z", "+00:00"))
        except ValueError:
            continue
        if when >= start:
            seconds = e.get("seconds")
            found.setdefault(str(e.get("kind", "deploy")), []).append(
                (e.get("exitCode") == 0, float(seconds) if isinstance(seconds, int | float) else None)
            )
    return [figures(kind, outcomes) for kind, outcomes in sorted(found.items())]
