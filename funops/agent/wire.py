"""Tasks on the wire: a task value ↔ JSON, and nothing else. Only the task types of tasks/model.py
decode: there is no way to send a script. Bytes travel as base64, tuples and sets as lists."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from typing import Any

from ..tasks import model as m

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
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise WireError("a task is an object with a type")
    cls = TASK_TYPES.get(data["type"])
    if cls is None:
        raise WireError(f"unknown task type {data['type']!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields) - {"type"}
    if unknown:
        raise WireError(f"{data['type']}: unknown field(s) {', '.join(sorted(unknown))}")
    values = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise WireError(f"{data['type']}: missing field {name}")
            continue
        values[name] = _typed(str(f.type), data[name], f"{data['type']}.{name}")
    return cls(**values)


def _typed(annotation: str, value: Any, where: str) -> Any:
    """The JSON value as the field's annotation (a string: tasks/model.py postpones annotations)."""
    if value is None:
        if "None" not in annotation:
            raise WireError(f"{where}: may not be null")
        return None
    if annotation.startswith("bytes"):
        if not isinstance(value, dict) or not isinstance(value.get("b64"), str):
            raise WireError(f"{where}: bytes travel as {{b64: ...}}")
        return base64.b64decode(value["b64"], validate=True)
    if annotation.startswith("HealthProbe"):
        if not isinstance(value, dict):
            raise WireError(f"{where}: an object")
        return m.HealthProbe(**value)
    if annotation.startswith("tuple[tuple"):
        return tuple(tuple(_typed("tuple[str, ...]", v, where)) for v in _list(value, where))
    if annotation.startswith(("tuple", "frozenset")):
        inner = annotation[annotation.index("[") + 1 :].split(",")[0].rstrip("]")
        items = [_typed(inner, v, where) for v in _list(value, where)]
        return frozenset(items) if annotation.startswith("frozenset") else tuple(items)
    if annotation.startswith("Mapping") and not isinstance(value, dict):
        raise WireError(f"{where}: an object")
    expected = {"str": str, "int": int, "float": (int, float), "bool": bool}.get(annotation.split(" ")[0])
    wrong_bool = isinstance(value, bool) and expected is not bool  # True is an int to isinstance
    if expected is not None and (not isinstance(value, expected) or wrong_bool):
        raise WireError(f"{where}: expected {annotation}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise WireError(f"{where}: a list")
    return value
