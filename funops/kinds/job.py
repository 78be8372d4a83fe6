"""Scheduled jobs: an app of `type: job` runs as `<app>.service` (a oneshot) on `<app>.timer`.

The job resource (`job:<app>`) is its timer, enabled and active; the service and timer unit files are
files. Its last run (result, exit status, when) is a live fact shown with the node, not compared: a
failed run is the app's business, not drift.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import native
from .base import PathMap, Sections
from .unit import UnitKind, enabled_active, show_blocks, show_probe

if TYPE_CHECKING:
    from .facts import LiveFacts

TIMER_PROPERTIES = ("Id", "LoadState", "ActiveState", "UnitFileState", "NextElapseUSecRealtime")
SERVICE_PROPERTIES = ("Id", "Result", "ExecMainStatus", "ExecMainExitTimestamp", "ActiveState")


def timer(app: str) -> str:
    return f"{app}.timer"


def service(app: str) -> str:
    return f"{app}.service"


_PROPERTIES = tuple(dict.fromkeys(TIMER_PROPERTIES + SERVICE_PROPERTIES))


def _units(apps: list[str]) -> list[str]:
    return [u for app in apps for u in (timer(app), service(app))]


class JobKind(UnitKind):
    """Planned like a unit (started, restarted, stopped with daemon-reload), on its timer."""

    name = "job"
    article = "a scheduled job"
    facts_alias = "jobs"

    def probe(self, names: list[str], path: PathMap) -> str:
        return show_probe("jobs", _units(names), _PROPERTIES)

    def read(self, names: list[str], path: PathMap) -> str | None:
        return native.systemctl_show("jobs", _units(names), _PROPERTIES) if path("/") == "/" else None

    def parse(self, sections: Sections, unmap: PathMap, facts: LiveFacts) -> dict[str, dict[str, Any]]:
        units = show_blocks(sections.get("jobs", []), facts)
        apps = {u.removesuffix(".timer") for u in units if u.endswith(".timer")}
        return {app: {"timer": units[timer(app)], "service": units.get(service(app), {})} for app in apps}

    def live(self, name: str, facts: LiveFacts) -> dict[str, Any] | None:
        info = facts.live[self.name].get(name)
        return enabled_active(info["timer"]) if info else None

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

    def unit_of(self, name: str) -> str:
        return timer(name)

    def units_of(self, name: str) -> tuple[str, ...]:
        return timer(name), service(name)

    def app_of(self, name: str) -> str | None:
        return name


KIND = JobKind()
