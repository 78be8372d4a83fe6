"""Systemd units: enabled and active. Their unit files are files (file kind); a unit is started after
the daemon-reload those files owe, restarted when a handler says its files changed."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from ..resources import DAEMON_RELOAD, UNIT_DIR
from ..tasks import model as m
from . import native
from .base import DAEMON, DELETE, START, DriftClass, NodeWork, PathMap, ResourceKind, Sections, Step

if TYPE_CHECKING:
    from .facts import LiveFacts

# Only where systemd is the running init; `systemctl show` prints one block per unit.
PROPERTIES = (
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "UnitFileState",
    "ActiveEnterTimestamp",
    "NRestarts",
)
_PROBE = """\
echo '@@funops {tag}'
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl show {props} -- {units} 2>/dev/null
else echo 'nosystemd'; fi
"""
# A unit on its way somewhere (its start still running when the plan was made, settled by the time
# apply re-reads it under the lock) has not been changed by anyone: compare where it is going.
SETTLING = {"activating": "active", "reloading": "active", "deactivating": "inactive"}


def show_probe(tag: str, units: list[str], properties: tuple[str, ...] = PROPERTIES) -> str:
    props = " ".join(f"-p {p}" for p in properties)
    return _PROBE.format(tag=tag, props=props, units=" ".join(shlex.quote(u) for u in units))


def show_blocks(lines: list[str], facts: LiveFacts) -> dict[str, dict[str, str]]:
    """`systemctl show` of several units: blank-line separated blocks (blank lines were dropped, so a
    new block starts whenever a property repeats). `nosystemd` marks a node without systemd."""
    if lines[:1] == ["nosystemd"]:
        facts.systemd = False
        return {}
    units: dict[str, dict[str, str]] = {}
    block: dict[str, str] = {}
    for line in lines:
        key, _, value = line.partition("=")
        if key in block:
            units[block.get("Id", "")] = block
            block = {}
        block[key] = value
    if block:
        units[block.get("Id", "")] = block
    return units


def enabled_active(unit: dict[str, str] | None) -> dict[str, Any] | None:
    if unit is None or unit.get("LoadState") in (None, "not-found"):
        return None
    return {"enabled": unit.get("UnitFileState", ""), "active": unit.get("ActiveState", "")}


def settled(live: dict[str, Any] | None) -> dict[str, Any] | None:
    if live and live.get("active") in SETTLING:
        return {**live, "active": SETTLING[live["active"]]}
    return live


def stopped_or_modified(changed: set[str]) -> DriftClass:
    return "stopped" if changed & {"active", "enabled"} else "modified"  # inactive, failed or disabled


class UnitKind(ResourceKind):
    name = "unit"
    host_wide = True
    article = "a unit"
    facts_alias = "units"
    delete_rank = 1
    summary_fields = ("enabled", "active")
    handler_rank = 1
    node_handlers = {DAEMON_RELOAD: 0}

    def probe(self, names: list[str], path: PathMap) -> str:
        return show_probe("units", names)

    def read(self, names: list[str], path: PathMap) -> str | None:
        return native.systemctl_show("units", names, PROPERTIES) if path("/") == "/" else None

    def parse(self, sections: Sections, unmap: PathMap, facts: LiveFacts) -> dict[str, dict[str, Any]]:
        return show_blocks(sections.get("units", []), facts)

    def live(self, name: str, facts: LiveFacts) -> dict[str, Any] | None:
        return enabled_active(facts.live[self.name].get(name))

    def observed(self, live: dict[str, Any] | None) -> dict[str, Any] | None:
        return settled(live)

    def unit_of(self, name: str) -> str:
        """The systemd unit a resource of this kind starts and stops (a job: its timer)."""
        return name

    def units_of(self, name: str) -> tuple[str, ...]:
        """The units whose files a resource of this kind has in UNIT_DIR."""
        return (name,)

    def tasks(self, work: NodeWork) -> list[Step]:
        steps = [Step(DELETE + self.delete_rank, m.StopUnit(self.unit_of(c.id.name))) for c in work.deletes]
        restart = set(work.restarts(self.name))
        start = {c.id.name for c, _ in work.writes}
        # A unit file written comes with its unit's restart (compile): the units restarted, started
        # or deleted are all whose files the reload may be for (taskplan joins the kinds' reloads).
        touched = restart | start | {c.id.name for c in work.deletes}
        if (DAEMON_RELOAD in work.handlers or work.deletes) and touched:
            files = sorted(f"{UNIT_DIR}/{unit}" for name in touched for unit in self.units_of(name))
            steps.append(Step(DAEMON, m.DaemonReload(tuple(files))))
        steps += [
            Step(START, m.StartUnit(self.unit_of(name), restart=name in restart))
            for name in sorted(restart | start)
            if self.resource_id(name) in work.desired
        ]
        return steps

    def app_of(self, name: str) -> str | None:
        return name.removesuffix(".service")  # an app's unit is `<app>.service`

    def drift_class(self, changed: set[str]) -> DriftClass:
        return stopped_or_modified(changed)


KIND = UnitKind()
