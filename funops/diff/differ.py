"""Desired vs live per resource → create / update / delete / unchanged, with field-level changes.

Delete is only ever proposed for what the node's state file says funops created.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import kinds
from ..gather.probe import LiveFacts
from ..ids import Handler, Owner, ResourceId
from ..kinds.change import Change, FieldChange
from ..resources import NodeDesired, Resource


# replace: the resource is deleted and created anew (a container with a new image); its kind decides.
@dataclass
class NodeDiff:
    """A node's changes, unchanged resources included, and the handlers it still owes."""

    node: str
    changes: list[Change] = field(default_factory=list)
    owed: list[Handler] = field(default_factory=list)  # handlers owed by an earlier, unfinished apply

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action != "unchanged"]

    def handlers(self) -> list[Handler]:
        """What this node's changes and earlier debts trigger, each once, in a stable order."""
        wanted = dict.fromkeys([*self.owed, *(h for c in self.pending for h in c.handlers)])
        return [Handler(h) for h in sorted(wanted, key=kinds.handler_order)]


def live_attributes(
    resource_id: str, facts: LiveFacts, desired: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """The live counterpart of a resource's desired attributes; None when it does not exist.
    With `desired`, in its terms (a directory owned by uid 1000 is compared as "1000", not by name)."""
    kind = kinds.kind_of(resource_id)
    if facts.files_only:
        return _files_only(kind, resource_id, facts, desired)
    live = kind.live(ResourceId(resource_id).name, facts)
    return kind.in_terms_of(desired, live, ResourceId(resource_id).name, facts) if desired and live else live


OWNERSHIP = ("owner", "group")


def _files_only(
    kind: kinds.ResourceKind, resource_id: str, facts: LiveFacts, desired: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """A local node under a root prefix: its units and containers were not run (transports/local.py),
    so they are as funops last applied them; its files are real, but their owners are this
    machine's users, not the node's: not compared."""
    applied = facts.node_state.managed.get(resource_id)
    recorded = (applied.applied if applied is not None else None) or {}
    if kind.host_wide:
        return dict(recorded) if applied is not None else None
    name = ResourceId(resource_id).name
    live = kind.live(name, facts)
    if live is None:
        return None
    if desired:
        live = kind.in_terms_of(desired, live, name, facts)
    wanted = desired or recorded
    return {**live, **{k: wanted[k] for k in OWNERSHIP if k in live and k in wanted}}


def diff_node(desired: NodeDesired, facts: LiveFacts, apps: set[str] | None = None) -> NodeDiff:
    """`apps`: the plan covers only these apps (a rollback): only their resources may be deleted."""
    state = facts.node_state
    result = NodeDiff(node=desired.node.name, owed=[Handler(h) for h in state.owed])
    for res in desired.resources:
        live = live_attributes(res.id, facts, res.desired)
        result.changes.append(_compare(res, live))
    wanted = {r.id for r in desired.resources}
    for rid, managed in sorted(state.managed.items()):
        in_scope = Owner(managed.owner).deletable_in(apps)
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
    if dict(live) == dict(res.desired):  # the common case, a no-op: no deepdiff import, no tree walk
        return Change(action="unchanged", handlers=(), **{k: v for k, v in base.items() if k != "handlers"})
    from deepdiff import DeepDiff  # slow to import (~40 ms): only once something differs

    delta = DeepDiff(dict(live), dict(res.desired), view="tree", verbose_level=2)
    fields = []
    for level in sorted((lv for levels in delta.values() for lv in levels), key=lambda lv: lv.path()):
        name = ".".join(str(p) for p in level.path(output_format="list"))
        old = None if _missing(level.t1) else level.t1
        new = None if _missing(level.t2) else level.t2
        fields.append(FieldChange(name, old, new))
    if not fields:
        return Change(action="unchanged", handlers=(), **{k: v for k, v in base.items() if k != "handlers"})
    action = kinds.kind_of(res.id).update_action({f.field.split(".", 1)[0] for f in fields})
    return Change(action=action, fields=tuple(fields), **base)


def _missing(value: Any) -> bool:
    return type(value).__name__ == "NotPresent"
