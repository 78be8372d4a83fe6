"""What a plan is (`Plan`, made by planner.py's `make_plan`) and what it is for (`Intent`): the one
type the planner, the rollout schedule (schedule.py) and apply share."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..certificates import Decision
from ..compile.compiler import DesiredState
from ..diff.differ import NodeDiff
from ..gather.gatherer import NodeGather
from ..load.project import Project
from ..model.strategy import UpdateStrategy
from ..state.records import RevisionRef
from .document import PlanDoc


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

    def strategy_of(self, app: str) -> UpdateStrategy:
        """As recorded with a restored release; else the Release's, the app's, the project default."""
        if app in self.intent.strategies:
            return self.intent.strategies[app]
        return self.project.strategy_of(app)
