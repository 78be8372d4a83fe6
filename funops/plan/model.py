"""What a plan is (`Plan`, made by planner.py's `make_plan`) and what it is for (`Intent`): the one
type the planner, the rollout schedule (schedule.py) and apply share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..certificates import Decision
from ..compile.compiler import DesiredState
from ..diff.differ import NodeDiff
from ..gather.gatherer import NodeGather
from ..kinds.base import GatedGroup
from ..load.project import Project
from ..model.strategy import UpdateStrategy
from ..state.node_state import AppRecord, ManagedResource
from ..state.records import ReleaseRecord, RevisionRef
from ..tasks import model as m
from .document import PlanDoc
from .drainsites import DrainTable


@dataclass
class Intent:
    """What a plan is for, as the release records it writes will say. A deploy covers the whole
    repo; a rollback covers some apps, puts back a recorded release, and undoes the current one."""

    kind: str = "deploy"  # deploy | rollback | auto-rollback
    apps: set[str] | None = None  # the apps the plan covers (what it may delete); None: all
    restores: dict[str, str] = field(default_factory=dict)  # app → release id it puts back
    rolls_back: dict[str, str] = field(default_factory=dict)  # app → release id it undoes
    revisions: dict[str, RevisionRef] = field(default_factory=dict)  # app → the restored one's revision
    strategies: dict[str, UpdateStrategy] = field(default_factory=dict)  # app → as recorded
    # certificate → node → a version the node keeps, switched back to (`funops certs rollback`)
    certificates: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class Plan:
    """A plan and what it was made from: what apply converges, and what its document shows."""

    project: Project
    desired: DesiredState
    gathered: dict[str, NodeGather]
    diffs: dict[str, NodeDiff]
    doc: PlanDoc
    intent: Intent = field(default_factory=Intent)
    certificates: list[Decision] = field(default_factory=list)  # per Certificate: what apply does
    program: Program = field(init=False)  # what apply runs, node by node (plan/program.py)

    def strategy_of(self, app: str) -> UpdateStrategy:
        """As recorded with a restored release; else the Release's, the app's, the project default."""
        if app in self.intent.strategies:
            return self.intent.strategies[app]
        return self.project.strategy_of(app)


@dataclass
class Program:
    """The whole plan as apply runs it: each node's program, the strategy in force and the batches."""

    nodes: dict[str, NodeProgram]
    strategy: UpdateStrategy
    batches: list[list[str]]
    # A saved plan run without the repo: its drains' ingress files (plan/drains.py); else None, and
    # apply renders them from the repo as it goes.
    drains: DrainTable | None = None
    # A saved plan run without the repo: its certificate orders (plan/certorders.py); else None.
    orders: dict[str, dict[str, Any]] | None = None


@dataclass
class NodeProgram:
    """One node's run. `changes` is the first round trip (after the record of what they owe);
    `checks`, `gated` and `housekeeping` the second, before the final record."""

    converge: bool  # False: nothing pending nor owed, the node is left alone
    changes: list[m.Task] = field(default_factory=list)
    checks: list[tuple[m.CheckHealth, str]] = field(default_factory=list)  # (task, the app it gates)
    gated: list[GatedGroup] = field(default_factory=list)
    housekeeping: list[m.Task] = field(default_factory=list)
    owed: list[str] = field(default_factory=list)  # handlers the changes owe
    deleted: list[str] = field(default_factory=list)  # resource ids no longer managed
    managed: dict[str, ManagedResource] = field(default_factory=dict)  # id → as applied
    apps: dict[str, AppRecord] = field(default_factory=dict)  # the node's apps once converged
    scope: list[str] | None = None  # the apps the run covers (a rollback); None: all
    records: list[ReleaseRecord] = field(default_factory=list)  # rollout/who/started set by apply
    rolls_back: list[str] = field(default_factory=list)  # release ids marked rolled_back on success
    keep: int = 5  # releases kept per app
    bake: list[m.CheckHealth] = field(default_factory=list)  # the bake window's probe round
    touched: list[str] = field(default_factory=list)  # apps this run restarts, replaces or stops
