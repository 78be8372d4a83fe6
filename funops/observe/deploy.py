"""The metrics of one command run: what `apply`, `rollback` and `publish` did (funops_deploy_*) and
what `drift` found (funops_drift_*). The command fills a `Run` as it goes; rollouts report themselves
through `note` (cli/converge.py), so apply, rollback, their auto-rollbacks and drift --fix count alike."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .exposition import Family

if TYPE_CHECKING:
    from ..apply.rollout import RolloutResult
    from ..drift.document import DriftDoc

_FAILED = ("failed", "unreachable")


@dataclass
class Run:
    command: str
    project: str = ""
    started: float = field(default_factory=time.time)
    exit_code: int = 0
    rollouts: list[RolloutResult] = field(default_factory=list)
    drift: DriftDoc | None = None
    published: list[Any] | None = None  # pull.publish's Published: node, changed


_current: Run | None = None


def start(command: str, project: str) -> Run:
    global _current
    _current = Run(command, project)
    return _current


def note(result: RolloutResult) -> None:
    """A rollout ran (apply, rollback, auto-rollback, drift --fix): count it in the current run."""
    if _current is not None:
        _current.rollouts.append(result)


def record(**facts: Any) -> None:
    """What the command learnt that the metrics need (project, drift, published), if they are asked."""
    if _current is not None:
        for key, value in facts.items():
            setattr(_current, key, value)


def stop() -> None:
    global _current
    _current = None


def families(run: Run, now: float | None = None) -> list[Family]:
    now = time.time() if now is None else now
    if run.command == "drift":
        return _drift(run, now)
    ok = 1 if run.exit_code == 0 else 0
    out = [
        Family("funops_deploy_last_success", "1 if the last run of the command succeeded, else 0.").add(ok),
        Family(
            "funops_deploy_exit_code",
            "The exit code of the last run (0 ok, 1 error, 3 failed, 4 unreachable).",
        ).add(run.exit_code),
        Family("funops_deploy_duration_seconds", "Wall time of the last run, plan included.").add(
            round(now - run.started, 3)
        ),
        Family("funops_deploy_last_timestamp_seconds", "When the last run ended (Unix time).").add(
            round(now, 3)
        ),
    ]
    if run.published is not None:  # publish: the nodes given a new bundle (they converge later)
        changed, failed = sum(1 for p in run.published if p.changed), 0
    else:
        changed = len({n for r in run.rollouts for n, o in r.outcomes.items() if o.status == "succeeded"})
        failed = len({n for r in run.rollouts for n, o in r.outcomes.items() if o.status in _FAILED})
    out.append(Family("funops_deploy_nodes_changed", "Nodes the last run changed.").add(changed))
    out.append(
        Family("funops_deploy_nodes_failed", "Nodes that failed or were unreachable in the last run.").add(
            failed
        )
    )
    apps = Family(
        "funops_deploy_app_success", "Per app released by the last run: 1 if it succeeded on all its nodes."
    )
    for app, ok_app in sorted(app_results(run.rollouts).items()):
        apps.add(1 if ok_app else 0, app=app)
    out.append(apps)
    return out


def app_results(rollouts: list[RolloutResult]) -> dict[str, bool]:
    """app → whether every node it was released on succeeded, over the run's rollouts (a later
    auto-rollback does not make the failed deploy a success)."""
    found: dict[str, bool] = {}
    for result in rollouts:
        for app, nodes in result.changed.items():
            good = all(result.outcomes[n].status == "succeeded" for n in nodes)
            found[app] = found.get(app, True) and good
    return found


def _drift(run: Run, now: float) -> list[Family]:
    doc = run.drift
    out = [
        Family("funops_drift_last_success", "1 if the last drift check ran and found every node clean.").add(
            1 if run.exit_code == 0 else 0
        ),
        Family("funops_drift_last_timestamp_seconds", "When the last drift check ended (Unix time).").add(
            round(now, 3)
        ),
    ]
    if doc is None:
        return out
    changes = Family("funops_drift_changes", "Unacknowledged drift items on the node at the last check.")
    unreachable = Family("funops_drift_node_unreachable", "1 if the node could not be checked.")
    for node in doc.nodes:
        changes.add(sum(1 for i in node.drift if not i.acknowledged), node=node.name)
        unreachable.add(0 if node.reachable else 1, node=node.name)
    return [*out, changes, unreachable]
