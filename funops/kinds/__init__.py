"""The registry of resource kinds: every stage loops over it, none names a kind.

Adding a kind = one module here (a `ResourceKind` subclass), its line in `_MODULES`, its tests and
the regenerated schemas.
"""

from __future__ import annotations

from importlib import import_module
from typing import Literal

from ..ids import Handler, ResourceId
from .base import ResourceKind
from .facts import LiveFacts

# Registry order is planning order within a stage (files before containers in housekeeping, …).
# A certificate's switch (its own `nginx -t` and reload) comes before the sites', which may name it.
_MODULES = ("cert", "file", "directory", "unit", "job", "container", "artifact")


def _load() -> dict[str, ResourceKind]:
    kinds = {}
    for module in _MODULES:
        kind = import_module(f"{__name__}.{module}").KIND
        kinds[kind.name] = kind
    return kinds


REGISTRY: dict[str, ResourceKind] = _load()
NAMES: tuple[str, ...] = tuple(REGISTRY)
KindName = Literal[NAMES]  # type: ignore[valid-type]  # for documents and schemas: the kinds there are
LiveFacts.register({k.facts_alias: k.name for k in REGISTRY.values()})


def kind_of(rid: str) -> ResourceKind:
    """The kind of a resource id; a clear error for one no funops module knows (a state file written
    by a newer funops)."""
    name = ResourceId(rid).kind
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown resource kind {name!r} in {rid!r} (known: {', '.join(NAMES)})") from None


def is_file_kind(kind: str) -> bool:
    """Whether resources of this kind (a name; drift also reports handlers and nginx) are files on the
    node holding their content."""
    found = REGISTRY.get(kind)
    return found is not None and found.file_content


def handler_order(handler: str) -> tuple[int, str]:
    """Handlers run once per node in this order: daemon-reload, unit restarts, other restarts, nginx."""
    for kind in REGISTRY.values():
        if handler in kind.node_handlers:
            return kind.node_handlers[handler], handler
    target = Handler(handler).restarts
    kind = REGISTRY.get(target.kind) if target else None
    return (kind.handler_rank if kind else 2), handler


def app_of_handler(handler: str) -> str | None:
    """The app a restart handler restarts; None for node-wide handlers."""
    target = Handler(handler).restarts
    kind = REGISTRY.get(target.kind) if target else None
    return kind.app_of(target.name) if kind and target else None
