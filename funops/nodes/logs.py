"""`funops logs APP`: on which nodes to read an app's logs, and the ReadLogs task that reads them.

The nodes are those whose labels the app's selector matches (cordoned ones too: they keep what they
run). A `replicas` app runs on some of them only; the task prints nothing on the others, so no
node's state has to be gathered first."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from ..apptypes import app_type
from ..errors import FunopsError
from ..load.project import Project
from ..load.targets import select_nodes
from ..model.placement import matching_nodes
from ..tasks.model import ReadLogs


class LogsError(FunopsError):
    """An unknown app or node, a bad --since, or an app with no logs of its own."""


@dataclass(frozen=True)
class Since:
    seconds: int | None = None  # so long ago
    time: str | None = None  # node-local time, YYYY-MM-DDTHH:MM:SS


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d{1,9})([smhd])")


def parse_since(value: str) -> Since:
    """A duration (30s, 10m, 2h, 1d) or a time (2026-11-25, 2026-11-25T08:00, …:30): one syntax that
    funops translates for both journalctl and docker, which disagree on theirs."""
    if match := _DURATION.fullmatch(value):
        return Since(seconds=int(match[1]) * _UNITS[match[2]])
    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"):
        try:
            return Since(time=datetime.strptime(value, fmt).strftime("%Y-%m-%dT%H:%M:%S"))
        except ValueError:
            continue
    raise LogsError(
        f"--since {value!r}: expected a duration such as 30s, 10m, 2h or 1d, or a time such as "
        "2026-11-25T08:00 (the node's local time)"
    )


def log_nodes(project: Project, app_name: str, only: list[str] | None = None) -> list[str]:
    """The nodes to ask for `app_name`'s logs, sorted; `only` restricts them (each must be one)."""
    app = project.apps.get(app_name)
    if app is None:
        known = ", ".join(sorted(project.apps)) or "none"
        raise LogsError(f"unknown app {app_name!r}; the apps in this repo: {known}")
    if not app_type(app).runs:
        raise LogsError(f"app {app_name} is a {app.spec.type}: funops runs nothing for it, so it has no logs")
    nodes = [n.name for n in matching_nodes(app, project.nodes)]
    chosen: set[str] = set()
    for value in only or []:  # names, globs, label selectors (load/targets.py)
        try:
            found = select_nodes(project.nodes, [value])
        except FunopsError:
            raise LogsError(
                f"unknown node {value!r}; the nodes: {', '.join(sorted(project.nodes))}"
            ) from None
        if not set(found) & set(nodes):
            raise LogsError(
                f"app {app_name} does not run on {value} (its nodes: {', '.join(nodes) or 'none'})"
            )
        chosen.update(found)
    if not nodes:
        raise LogsError(f"app {app_name} runs on no node: its selector matches none")
    return [n for n in nodes if not only or n in chosen]


def logs_task(
    project: Project, app_name: str, since: Since | None, lines: int | None, follow: bool
) -> ReadLogs:
    """The units whose journal, or the container whose docker log, the app's type names
    (funops/apptypes: a job's timer too, for when it fired)."""
    units, container = app_type(project.apps[app_name]).logs(app_name)
    return ReadLogs(
        units=units,
        container=container,
        since_seconds=since.seconds if since else None,
        since_time=since.time if since else None,
        lines=lines,
        follow=follow,
    )
