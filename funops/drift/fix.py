"""What `funops drift --fix` may converge: only drift, reviewed as such. The CLI confirms and runs it.

A converge touches whole nodes, so a node that also has repo changes not applied yet (that is a
deploy: `funops apply`), or acknowledged drift a converge would overwrite, is refused; and a node that
moved since the check is refused too: only what was found and shown as drift is applied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import FunopsError
from ..load.project import Project
from ..plan.planner import Intent, Plan, make_plan
from ..transports import Transport
from .document import DriftDoc, FixDoc, FixOutcomeDoc

if TYPE_CHECKING:
    from ..apply.rollout import RolloutResult


class FixRefused(FunopsError):
    """--fix would change more than the drift it was shown; nothing was changed."""


def fixable(doc: DriftDoc) -> dict[str, set[str]]:
    """node → the ids of its unacknowledged drift that a converge can fix."""
    todo = {n.name: {i.id for i in n.drift if not i.acknowledged and i.fixable} for n in doc.nodes}
    return {n: ids for n, ids in todo.items() if ids}


def plan_fix(
    project: Project, doc: DriftDoc, connect: Callable[[str], Transport], intent: Intent | None = None
) -> Plan | None:
    """The plan that removes the drift `doc` found (in the apps of `intent`, as the check was scoped);
    None when there is none to fix."""
    todo = fixable(doc)
    if not todo:
        return None
    blockers = [
        f"{n.name}: {why} {', '.join(ids)}"
        for n in doc.nodes
        if n.name in todo
        for why, ids in (
            ("repo changes not applied yet:", [p.id for p in n.pending]),
            ("acknowledged drift a converge would overwrite:", [i.id for i in n.drift if i.acknowledged]),
        )
        if ids
    ]
    if blockers:
        raise FixRefused(
            "--fix converges whole nodes and would also touch what is not drift; run `funops apply` "
            "to deploy the repo, or fix these by hand:\n  " + "\n  ".join(blockers)
        )
    plan = make_plan(project, sorted(todo), connect, intent)
    surprise = [
        f"{n.name}: {c.id}" for n in plan.doc.nodes for c in n.changes if c.id not in todo.get(n.name, set())
    ]
    if surprise:
        raise FixRefused(f"the nodes changed since the drift check ({', '.join(surprise)}); run it again")
    return plan


def fix_doc(result: RolloutResult) -> FixDoc:
    """The report's record of the fix's rollout."""
    return FixDoc(
        rollout=result.id,
        halted=result.halted,
        nodes={n: FixOutcomeDoc(status=o.status, error=o.error) for n, o in sorted(result.outcomes.items())},
    )
