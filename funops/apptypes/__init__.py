"""The registry of app types: an Application's `type:` is one of these modules, and nothing outside
this package decides by its name (tests/unit/test_apptypes_registry.py).

Adding an app type = one module here (an `AppType` subclass as `TYPE`), its line in `_MODULES`, and
its tests; see docs/architecture.md, "App types".
"""

from __future__ import annotations

from importlib import import_module
from typing import Literal

from .base import AppBuild, AppManifest, AppType

__all__ = ["NAMES", "REGISTRY", "RUNNING", "AppBuild", "AppType", "RunningTypeName", "TypeName", "app_type"]

# Registry order is the order of `type:`'s values in the schema and its error messages.
_MODULES = ("systemd", "container", "proxy", "job")


def _load() -> dict[str, AppType]:
    types = {}
    for module in _MODULES:
        app_type = import_module(f"{__name__}.{module}").TYPE
        types[app_type.name] = app_type
    return types


REGISTRY: dict[str, AppType] = _load()
NAMES: tuple[str, ...] = tuple(REGISTRY)
RUNNING: tuple[str, ...] = tuple(name for name, t in REGISTRY.items() if t.runs)  # what funops runs
TypeName = Literal[NAMES]  # type: ignore[valid-type]
RunningTypeName = Literal[RUNNING]  # type: ignore[valid-type]


def app_type(app: AppManifest) -> AppType:
    return REGISTRY[app.spec.type]
