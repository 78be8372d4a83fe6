"""Saved plans: `funops plan --out plan.json`, then `funops apply plan.json` applies exactly that plan
— or refuses, when a node changed since it was made, the repo renders differently, or it is too old.

A plan saved with its program (plan/carry.py) runs without the repo: the program's tasks, on the
nodes its connection section names, once each node was probed again and found as the plan saw it.
Drains and certificate orders are in the program too (plan/drains.py, plan/certorders.py). A plan
whose program needs the repo (unsealed secrets; `program.needsRepo`), or an older plan without one,
is made again from the repo at its commit and must come out the same."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ..errors import FunopsError
from .document import PlanDoc
from .planner import Plan

if TYPE_CHECKING:
    from ..transports import Transport


@dataclass
class SavedPlan:
    path: Path
    doc: PlanDoc

    @property
    def targets(self) -> list[str]:
        return self.doc.targets

    def revision_to_load(self, asked: str | None) -> str | None:
        """The plan's own commit (later edits of the working tree do not matter); a plan made from
        a dirty tree can only be checked against the working tree as it is now."""
        rev = self.doc.revision
        if asked is not None and asked != rev.commit:
            raise FunopsError(f"{self.path} was made at {rev.commit or rev.ref}; do not pass --revision")
        return rev.commit if rev.commit and not rev.dirty else None

    @property
    def self_contained(self) -> bool:
        """Runs without the repo: it carries its program and the program needs nothing more."""
        return self.doc.program is not None and not self.doc.program.needs_repo

    def check_age(self, max_age_seconds: float) -> None:
        made = dt.datetime.fromisoformat(self.doc.created_at)
        age = (dt.datetime.now(dt.UTC) - made).total_seconds()
        if age > max_age_seconds:
            raise FunopsError(
                f"{self.path} is {age / 60:.0f} min old (savedPlanMaxAgeSeconds: {max_age_seconds:g}): "
                "make a new plan"
            )

    def check_still_valid(self, plan: Plan, max_age_seconds: float) -> None:
        saved = self.doc
        self.check_age(max_age_seconds)
        fresh = plan.doc
        if saved.project != fresh.project:
            raise FunopsError(f"{self.path} is a plan of project {saved.project!r}, not {fresh.project!r}")
        changed = []
        for before, now in zip(saved.nodes, fresh.nodes, strict=True):
            if not now.reachable:
                changed.append(f"{now.name} is unreachable now")
            elif before.observed != now.observed:
                changed.append(f"{now.name} changed since the plan was made")
            elif [c.model_dump(exclude={"diff"}) for c in before.changes] != [
                c.model_dump(exclude={"diff"}) for c in now.changes
            ]:  # how a change is shown (its diff, its context lines) is not what it does
                changed.append(f"{now.name}: the repo now renders other changes")
        if not changed and saved.program is not None:  # the same changes, and the same tasks for them
            from .carry import program_doc, public_units

            ours = public_units(program_doc(plan, None))
            for name, units in public_units(saved.program).items():
                if ours.get(name) != units:
                    changed.append(f"{name}: the repo now makes other tasks")
            if saved.schedule != fresh.schedule:
                changed.append("the repo now schedules the rollout otherwise")
        if changed:
            raise FunopsError(f"refusing {self.path}: {'; '.join(changed)}. Make a new plan and review it.")

    def plan(self, root: Path, key: Path | None, connect: Callable[[str], Transport]) -> Plan:
        """The saved plan as apply runs it, without the repo: its program (secrets opened with `key`),
        its nodes reached through `connect` and probed again — each must be as the plan saw it."""
        from .carry import connection, load_program
        from .seal import open_units
        from .verify import project_of, regather

        doc, where = self.doc, str(self.path)
        assert doc.program is not None
        settings, nodes = connection(doc.program)
        self.check_age(settings.saved_plan_max_age_seconds)
        units = {}
        if doc.program.sealed:
            units = open_units(doc.program.sealed, doc.program.sealed_to or "", key, where)
        program = load_program(doc.program, units, where)
        project = project_of(doc, settings, nodes, root)
        gathered, changed = regather(doc, program, connect, settings)
        if changed:
            raise FunopsError(f"refusing {self.path}: {'; '.join(changed)}. Make a new plan and review it.")
        from ..certificates import Decision
        from ..compile.compiler import DesiredState
        from ..model.strategy import UpdateStrategy
        from ..resources import NodeDesired
        from .planner import Intent

        desired = DesiredState(
            nodes={n: NodeDesired(nodes[n]) for n in doc.targets},
            placements={a: list(ns) for a, ns in doc.placements.items()},
            versions=dict(doc.versions),
        )
        # The strategies of the apps that auto-rollback: a halt's rollback is planned from the
        # nodes' release records (release/restore.py), which need no repo.
        strategies = {
            app: UpdateStrategy.model_validate(r["strategy"]) for app, r in doc.program.rollback.items()
        }
        plan = Plan(
            project, desired, gathered, {}, doc, Intent(kind=doc.program.intent, strategies=strategies)
        )
        plan.program = program
        # What apply's ACME phase orders or copies: the plan's decisions, their parameters in
        # `program.orders` (plan/certorders.py).
        orders = doc.program.orders
        plan.certificates = [
            Decision(c.name, c.action, c.reason, list(c.domains), c.issuer, c.challenge, c.serial,
                     source=(orders[c.name].get("copyFrom") or {}).get("node"))
            for c in doc.certificates
            if c.name in orders
        ]  # fmt: skip
        return plan


def read_saved_plan(path: Path) -> SavedPlan:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FunopsError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise FunopsError(f"{path}:{exc.lineno}: not a saved plan (invalid JSON: {exc.msg})") from None
    if not isinstance(data, dict) or data.get("kind") != "plan":
        raise FunopsError(f"{path}: not a saved plan (write one with `funops plan --out {path.name}`)")
    try:
        doc = PlanDoc.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise FunopsError(f"{path}: {where}: {err['msg']} (made by another funops version?)") from None
    if any(n.observed is None and n.reachable for n in doc.nodes):
        raise FunopsError(f"{path}: the plan does not record what it saw on the nodes; make a new plan")
    _check_created_at(path, doc.created_at)
    if sorted(n.name for n in doc.nodes) != sorted(doc.targets) or len(doc.nodes) != len(doc.targets):
        raise FunopsError(
            f"{path}: nodes: the plan covers {len(doc.nodes)} node(s) but targets {len(doc.targets)} "
            f"({', '.join(doc.targets) or 'none'}): not a plan funops wrote; make a new plan"
        )
    return SavedPlan(path, doc)


def _check_created_at(path: Path, created_at: str) -> None:
    """An ISO 8601 time with its zone, not in the future (a forged or clock-skewed plan would
    otherwise never grow old)."""
    try:
        made = dt.datetime.fromisoformat(created_at)
    except ValueError:
        raise FunopsError(f"{path}: createdAt: {created_at!r} is not an ISO 8601 time") from None
    if made.tzinfo is None:
        raise FunopsError(f"{path}: createdAt: {created_at!r} has no time zone (funops writes UTC)")
    if made > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5):
        raise FunopsError(f"{path}: createdAt: {created_at!r} is in the future; make a new plan")
