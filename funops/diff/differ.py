"""Desired vs live per resource → create / update / delete / unchanged, with field-level changes.

Delete is only ever proposed for what the node's state file says funops created.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..compile.resources import DAEMON_RELOAD, NGINX_RELOAD, RESTART_UNIT, NodeDesired, Resource
from ..gather.probe import LiveFacts
from ..state.node_state import NodeState

Action = Literal["create", "update", "delete", "unchanged"]


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Change:
    id: str
    kind: str
    owner: str
    action: Action
    fields: tuple[FieldChange, ...] = ()
    handlers: tuple[str, ...] = ()
    secret: bool = False


@dataclass
class NodeDiff:
    node: str
    changes: list[Change] = field(default_factory=list)
    owed: list[str] = field(default_factory=list)  # handlers owed by an earlier, unfinished apply

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action != "unchanged"]

    def handlers(self) -> list[str]:
        """What this node's changes and earlier debts trigger, each once, in a stable order."""
        wanted = dict.fromkeys([*self.owed, *(h for c in self.pending for h in c.handlers)])
        return sorted(wanted, key=_handler_order)


def _handler_order(handler: str) -> tuple[int, str]:
    return (
        {DAEMON_RELOAD: 0, NGINX_RELOAD: 3}.get(handler, 1 if handler.startswith(RESTART_UNIT) else 2),
        handler,
    )


def live_attributes(resource_id: str, facts: LiveFacts) -> dict[str, Any] | None:
    """The live counterpart of a resource's desired attributes; None when it does not exist."""
    kind, name = resource_id.split(":", 1)
    if kind == "file":
        info = facts.files.get(name)
        if info is None:
            return None
        if info.get("type") != "file":
            return {"type": info.get("type")}
        return {k: info.get(k) for k in ("sha256", "mode", "owner", "group")}
    if kind == "unit":
        unit = facts.units.get(name)
        if unit is None or unit.get("LoadState") in (None, "not-found"):
            return None
        return {"enabled": unit.get("UnitFileState", ""), "active": unit.get("ActiveState", "")}
    if kind == "container":
        info = facts.containers.get(name)
        if info is None:
            return None
        return {
            "image": info.get("image"),
            "specHash": (info.get("labels") or {}).get("funops.spec-hash"),
            "status": info.get("status"),
        }
    if kind == "artifact":
        info = facts.artifacts.get(name)
        return None if info is None else {"release": info["release"], "sha256": info["sha256"]}
    raise ValueError(f"unknown resource kind in {resource_id!r}")


def diff_node(desired: NodeDesired, facts: LiveFacts, apps: set[str] | None = None) -> NodeDiff:
    """`apps`: the plan covers only these apps (a rollback): only their resources may be deleted."""
    state = NodeState.from_facts(facts.state)
    result = NodeDiff(node=desired.node.name, owed=list(state.owed))
    for res in desired.resources:
        live = live_attributes(res.id, facts)
        result.changes.append(_compare(res, live))
    wanted = {r.id for r in desired.resources}
    for rid, managed in sorted(state.managed.items()):
        in_scope = apps is None or managed.owner in {f"app/{a}" for a in apps}
        if rid not in wanted and in_scope and live_attributes(rid, facts) is not None:
            result.changes.append(Change(id=rid, kind=managed.kind, owner=managed.owner, action="delete"))
    return result


def _compare(res: Resource, live: Mapping[str, Any] | None) -> Change:
    base = {
        "id": res.id,
        "kind": res.kind,
        "owner": res.owner,
        "handlers": res.handlers,
        "secret": res.secret,
    }
    if live is None:
        fields = tuple(FieldChange(k, None, v) for k, v in res.desired.items())
        return Change(action="create", fields=fields, **base)
    from deepdiff import DeepDiff  # slow to import: only once there is something to compare

    delta = DeepDiff(dict(live), dict(res.desired), view="tree", verbose_level=2)
    fields = []
    for level in sorted((lv for levels in delta.values() for lv in levels), key=lambda lv: lv.path()):
        name = ".".join(str(p) for p in level.path(output_format="list"))
        old = None if _missing(level.t1) else level.t1
        new = None if _missing(level.t2) else level.t2
        fields.append(FieldChange(name, old, new))
    if not fields:
        return Change(action="unchanged", handlers=(), **{k: v for k, v in base.items() if k != "handlers"})
    return Change(action="update", fields=tuple(fields), **base)


def _missing(value: Any) -> bool:
    return type(value).__name__ == "NotPresent"
