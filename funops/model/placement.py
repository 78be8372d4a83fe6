"""Which nodes an app runs on: selector, cordons, replicas with a placement strategy.

Pure: disk facts and recorded placements are inputs. Placements are sticky, so an unchanged app
never moves. Disk-aware (settings.placement): skip < 15% free, avoid < 25%, most free first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Protocol

from pydantic import Field

from .common import Metadata, Selector, Strict
from .inventory import Node


class PlacementSettings(Strict):
    """Disk-aware placement: skip nodes under 15% free disk, avoid nodes under 25%, most free first."""

    disk_free_min_pct: Annotated[float, Field(ge=0, le=100)] = 15
    """Disk-aware placement skips nodes with less free disk than this percent (default 15)."""
    disk_free_avoid_pct: Annotated[float, Field(ge=0, le=100)] = 25
    """Disk-aware placement avoids nodes with less free disk than this percent (default 25)."""


class _PlacedSpec(Protocol):
    @property
    def selector(self) -> Selector | None: ...
    @property
    def replicas(self) -> int | None: ...
    @property
    def placement(self) -> str: ...


class Placed(Protocol):
    """What placement reads of an Application: its kind sits above the app types, this module below
    them (docs/architecture.md, "Layers and imports")."""

    @property
    def metadata(self) -> Metadata: ...
    @property
    def spec(self) -> _PlacedSpec: ...


@dataclass(frozen=True)
class NodeCapacity:
    """What placement weighs of a node's live facts; None: not known (not gathered, or unreachable)."""

    disk_free_pct: float | None = None
    container_count: int | None = None


def matching_nodes(app: Placed, nodes: Mapping[str, Node]) -> list[Node]:
    sel = app.spec.selector
    if sel is None:
        return []
    return sorted((n for n in nodes.values() if n.matches(sel.match_labels, sel.nodes)), key=lambda n: n.name)


def place(
    app: Placed,
    nodes: Mapping[str, Node],
    settings: PlacementSettings,
    capacity: Mapping[str, NodeCapacity] | None = None,
    recorded: frozenset[str] = frozenset(),
) -> list[str]:
    """The names of the nodes `app` runs on, sorted. `recorded`: where it runs now (sticky)."""
    matching = matching_nodes(app, nodes)
    # Cordoned nodes take no new placements but keep what they already run.
    candidates = [n for n in matching if not n.cordoned or n.name in recorded]
    if app.spec.replicas is None:
        return [n.name for n in candidates]
    capacity = capacity or {}
    keep = [n.name for n in candidates if n.name in recorded][: app.spec.replicas]
    fresh = [n for n in candidates if n.name not in recorded and not n.cordoned]

    def disk(n: Node) -> float:
        pct = capacity.get(n.name, NodeCapacity()).disk_free_pct
        return 100.0 if pct is None else pct

    if app.spec.placement == "disk-aware":
        fresh = [n for n in fresh if disk(n) >= settings.disk_free_min_pct]
        fresh.sort(key=lambda n: (disk(n) < settings.disk_free_avoid_pct, -disk(n), _spread_key(app, n)))
    else:
        fresh.sort(
            key=lambda n: (capacity.get(n.name, NodeCapacity()).container_count or 0, _spread_key(app, n))
        )
    chosen = keep + [n.name for n in fresh[: app.spec.replicas - len(keep)]]
    return sorted(chosen)


def _spread_key(app: Placed, node: Node) -> str:
    """A stable per-app order of nodes, so ties spread different apps over different nodes."""
    return hashlib.sha256(f"{app.metadata.name}/{node.name}".encode()).hexdigest()
