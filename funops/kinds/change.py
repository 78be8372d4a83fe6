"""A change of one resource on a node, as the diff finds it (diff/differ.py) and the kinds plan
its tasks from it (kinds/base.py, `NodeWork`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..ids import Handler, Owner, ResourceId

Action = Literal["create", "update", "replace", "delete", "unchanged"]


@dataclass(frozen=True)
class FieldChange:
    """One attribute of a resource: live (`old`) against declared (`new`)."""

    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Change:
    """One resource on a node: what happens to it (`unchanged` too) and the fields that differ."""

    id: ResourceId
    kind: str
    owner: Owner
    action: Action
    fields: tuple[FieldChange, ...] = ()
    handlers: tuple[Handler, ...] = ()
    secret: bool = False

    def __post_init__(self) -> None:  # typed names, also from a state file's or a saved plan's strings
        object.__setattr__(self, "id", ResourceId(self.id))
        object.__setattr__(self, "owner", Owner(self.owner))
        object.__setattr__(self, "handlers", tuple(Handler(h) for h in self.handlers))
