"""Tasks on the wire: a task value ↔ JSON, and nothing else. Only the task types of tasks/model.py
decode: there is no way to send a script, and a field that does not hold what it may (a string where
a number goes, a line break in a path, a host that is not one) is refused before anything runs.
Bytes travel as base64, tuples and sets as lists."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from typing import Any

from ..tasks import model as m
from ..tasks.values import ValueProblem, type_ok

TASK_TYPES: dict[str, type[m.Task]] = {
    cls.__name__: cls
    for cls in vars(m).values()
    if isinstance(cls, type) and issubclass(cls, m.Task) and cls is not m.Task
}


# Tasks that only read: what the agent's `gather` endpoint runs (no task id needed, nothing changes).
READS = (m.Probe, m.ReadFiles, m.ProbeExtras, m.ReadLogs)


class WireError(ValueError):
    """A request that is not a valid task (unknown type, missing or unknown field)."""


def encode(task: m.Task) -> dict[str, Any]:
    """A field at its default is left out: an agent older than a new optional field then still reads
    every task that does not use it."""
    out: dict[str, Any] = {"type": type(task).__name__}
    for f in dataclasses.fields(task):
        value = getattr(task, f.name)
        if f.default is dataclasses.MISSING or value != f.default:
            out[f.name] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()}
    if isinstance(value, frozenset | set):
        return sorted(_plain(v) for v in value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def decode(data: Any) -> m.Task:
    """A task from its JSON, refused (WireError, a 400) unless every field holds what it may: the
    task's own check (tasks/values.py) runs as it is made, before anything can run it."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise WireError("a task is an object with a type")
    cls = TASK_TYPES.get(data["type"])
    if cls is None:
        raise WireError(f"unknown task type {data['type']!r}")
    return _made(cls, data, data["type"], frozenset({"type"}))


def decode_all(data: Any) -> list[m.Task]:
    """A request's list of tasks, each decoded."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise WireError("tasks: a list of tasks")
    return [decode(t) for t in data]


def _made(cls: type[Any], data: dict[str, Any], where: str, extra: frozenset[str] = frozenset()) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields) - extra
    if unknown:
        raise WireError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    values = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise WireError(f"{where}: missing field {name}")
            continue
        values[name] = _shaped(str(f.type), data[name], f"{where}.{name}")
    try:
        return cls(**values)
    except ValueProblem as exc:  # named where it sits in the request: CheckHealth.check.retries
        text, own = str(exc), f"{cls.__name__}."
        raise WireError(f"{where}.{text[len(own) :]}" if text.startswith(own) else text) from None


def _shaped(annotation: str, value: Any, where: str) -> Any:
    """The JSON value in the shape of the field's annotation (a string: tasks/model.py postpones
    annotations): bytes from base64, tuples and sets from lists, a HealthProbe from its object.
    Scalars pass as they came: their types are the task's check to refuse (values.type_ok)."""
    if value is None:
        return None
    base = annotation.removesuffix(" | None")
    if base == "bytes":
        if not isinstance(value, dict) or set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise WireError(f"{where}: bytes travel as {{b64: ...}}")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except ValueError:
            raise WireError(f"{where}: not base64") from None
    if base == "HealthProbe":
        if not isinstance(value, dict):
            raise WireError(f"{where}: expected an object")
        return _made(m.HealthProbe, value, where)
    if base.startswith(("tuple", "frozenset")):
        if not isinstance(value, list):
            raise WireError(f"{where}: expected {annotation} (a list)")
        items = [tuple(v) if base.startswith("tuple[tuple") and isinstance(v, list) else v for v in value]
        if base.startswith("tuple"):
            return tuple(items)
        try:
            return frozenset(items)
        except TypeError:
            raise WireError(f"{where}: expected {annotation}") from None
    if base.startswith("Mapping") and not isinstance(value, dict):
        raise WireError(f"{where}: expected an object")
    if base in ("str", "int", "float", "bool") and not type_ok(base, value):
        raise WireError(f"{where}: expected {annotation}, got {type(value).__name__}")
    return value


def timeout(value: Any) -> float | None:
    """A request's `timeout`: none, or seconds over 0 (the node caps it at its own most)."""
    if value is None:
        return None
    if not type_ok("float", value) or not 0 < value <= 7 * 86400:
        raise WireError(f"timeout: {value!r} is not a number of seconds over 0 up to a week")
    return float(value)
