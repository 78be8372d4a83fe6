"""Scheduled jobs: an app of `type: job` runs as `<app>.service` (a oneshot) on `<app>.timer`.

The job resource (`job:<app>`) is its timer, enabled and active; the service and timer unit files are
files. Its last run (result, exit status, when) is a live fact shown with the node, not compared: a
failed run is the app's business, not drift.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..compile.resources import DAEMON_RELOAD
from ..tasks import model as m
from .base import DAEMON, DELETE, START, DriftClass, NodeWork, PathMap, ResourceKind, Sections, Step

if TYPE_CHECKING:
    from ..gather.probe import LiveFacts
from .unit import enabled_active, settled, show_blocks, show_probe, stopped_or_modified

TIMER_PROPERTIES = ("Id", "LoadState", "ActiveState", "UnitFileState", "NextElapseUSecRealtime")
SERVICE_PROPERTIES = ("Id", "Result", "ExecMainStatus", "ExecMainExitTimestamp", "ActiveState")


def timer(app: str) -> str:
    return f"{app}.timer"


def service(app: str) -> str:
    return f"{app}.service"


class JobKind(ResourceKind):
    name = "job"
    article = "a scheduled job"
    facts_alias = "jobs"
    delete_rank = 1
    summary_fields = ("enabled", "active")
    handler_rank = 1

    def probe(self, names: list[str], path: PathMap) -> str:
        units = [u for app in names for u in (timer(app), service(app))]
        return show_probe("jobs", units, tuple(dict.fromkeys(TIMER_PROPERTIES + SERVICE_PROPERTIES)))

    def parse(self, sections: Sections, unmap: PathMap, facts: LiveFacts) -> dict[str, dict[str, Any]]:
        units = show_blocks(sections.get("jobs", []), facts)
        apps = {u.removesuffix(".timer") for u in units if u.endswith(".timer")}
        return {app: {"timer": units[timer(app)], "service": units.get(service(app), {})} for app in apps}

    def live(self, name: str, facts: LiveFacts) -> dict[str, Any] | None:
        info = facts.live[self.name].get(name)
        return enabled_active(info["timer"]) if info else None

    def observed(self, live: dict[str, Any] | None) -> dict[str, Any] | None:
        return settled(live)

    def reported(self, facts: LiveFacts) -> dict[str, Any]:
        """`jobs`: each job's last run on the node (null: it never ran) and its next one."""
        jobs = {}
        for app, info in sorted(facts.live[self.name].items()):
            run = info["service"]
            ran = run.get("ExecMainExitTimestamp") or ""
            jobs[app] = {
                "lastRun": {"result": run.get("Result"), "exitStatus": run.get("ExecMainStatus"), "at": ran}
                if ran
                else None,
                "next": info["timer"].get("NextElapseUSecRealtime") or None,
            }
        return {"jobs": jobs} if jobs else {}

    def tasks(self, work: NodeWork) -> list[Step]:
        steps = [Step(DELETE + self.delete_rank, m.StopUnit(timer(c.id.name))) for c in work.deletes]
        if DAEMON_RELOAD in work.handlers or work.deletes:
            steps.append(Step(DAEMON, m.DaemonReload()))
        restart = set(work.restarts(self.name))
        start = {c.id.name for c, _ in work.writes}
        steps += [
            Step(START, m.StartUnit(timer(app), restart=app in restart))
            for app in sorted(restart | start)
            if self.resource_id(app) in work.desired
        ]
        return steps

    def app_of(self, name: str) -> str | None:
        return name

    def drift_class(self, changed: set[str]) -> DriftClass:
        return stopped_or_modified(changed)


KIND = JobKind()
