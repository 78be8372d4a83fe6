"""Tasks on the wire: a task value ↔ JSON, and what running a batch gave back ↔ JSON. Only the task
types of tasks/model.py decode: there is no way to send a script, and a field that does not hold what
it may (a string where a number goes, a line break in a path, a host that is not one) is refused
before anything runs. Bytes travel as base64, tuples and sets as lists. A batch's results travel
typed (`encode_steps`, `decode_steps`): no marker text to parse, nothing to base64."""

from __future__ import annotations

import base64
import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from ..tasks import model as m
from ..tasks.results import StepResult
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


# ---- results: a batch's steps, typed ------------------------------------------------------------

RESULTS_VERSION = 1  # the results document's shape; a controller refuses any other, naming it
_STEP_FIELDS = frozenset({"index", "exit", "seconds", "output", "notRun"})
_STEP_OPTIONAL = frozenset({"output", "notRun"})  # left out when empty
_SURROGATE = re.compile("[\ud800-\udfff]")


class ResultError(ValueError):
    """A results document that is not one (another version, a missing field, a wrong type): its
    message names the field, as `steps[1].exit: expected int, got str`."""


def encode_steps(steps: Sequence[StepResult]) -> dict[str, Any]:
    """What a batch gave back, as the agent answers it: `{"version": 1, "steps": [{"index", "exit",
    "seconds"[, "output"][, "notRun"]}, ...]}`, the steps that ran in order (all, or up to and
    including the first failure); an empty output or notRun is left out."""
    out = []
    for s in steps:
        step: dict[str, Any] = {"index": s.index, "exit": s.exit_code, "seconds": s.seconds}
        if s.output:
            step["output"] = s.output
        if s.not_run:
            step["notRun"] = s.not_run
        out.append(step)
    return {"version": RESULTS_VERSION, "steps": out}


def decode_steps(doc: Any, sent: int) -> list[StepResult]:
    """The StepResults of a batch of `sent` tasks from its results document, every field checked
    (ResultError naming it); keys beside `version` and `steps` are the reply's (`replayed`)."""
    if not isinstance(doc, dict):
        raise ResultError(f"expected an object, got {type(doc).__name__}")
    if "version" not in doc:
        raise ResultError("missing field version (an agent older than this funops?)")
    version = doc["version"]
    if version != RESULTS_VERSION or not type_ok("int", version):
        raise ResultError(f"version: {version!r} is not one this funops reads ({RESULTS_VERSION})")
    steps = doc.get("steps")
    if not isinstance(steps, list):
        raise ResultError("missing field steps" if steps is None else "steps: expected a list")
    if len(steps) > sent:
        raise ResultError(f"steps: {len(steps)} results for {sent} tasks sent")
    return [_step(step, i) for i, step in enumerate(steps)]


def _step(data: Any, position: int) -> StepResult:
    """One step, checked inline (a batch has dozens: this is the controller's cost per result);
    anything off goes to `_refuse`, which names the field."""
    if type(data) is dict and _STEP_FIELDS.issuperset(data):
        index, code, seconds = data.get("index"), data.get("exit"), data.get("seconds")
        output, not_run = data.get("output", ""), data.get("notRun", "")
        if (
            type(index) is int
            and index == position
            and type(code) is int
            and type(seconds) in (int, float)
            and 0 <= seconds < math.inf
            and type(output) is str
            and type(not_run) is str
        ):
            return StepResult(
                position,
                code,
                float(seconds),
                output if output.isascii() else utf8_text(output),
                not_run if not_run.isascii() else utf8_text(not_run),
            )
    _refuse(data, f"steps[{position}]", position)


def _refuse(data: Any, where: str, position: int) -> NoReturn:
    if not isinstance(data, dict):
        raise ResultError(f"{where}: expected an object, got {type(data).__name__}")
    unknown = set(data) - _STEP_FIELDS
    if unknown:
        raise ResultError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    for name, kind in (
        ("index", "int"),
        ("exit", "int"),
        ("seconds", "float"),
        ("output", "str"),
        ("notRun", "str"),
    ):
        if name not in data:
            if name in _STEP_OPTIONAL:
                continue
            raise ResultError(f"{where}: missing field {name}")
        value = data[name]
        if not (type_ok(kind, value) or (kind == "float" and isinstance(value, float))):  # inf: below
            raise ResultError(f"{where}.{name}: expected {kind}, got {type(value).__name__}")
    if data["index"] != position:
        raise ResultError(f"{where}.index: {data['index']} out of order (steps come in the order sent)")
    raise ResultError(f"{where}.seconds: {data['seconds']!r} is not a duration")


def utf8_text(text: str) -> str:
    """`text` as UTF-8 can carry it. A message may hold bytes of a path that are not UTF-8 (Python's
    surrogate escapes), a JSON string a lone surrogate: they become U+FFFD, as the undecodable bytes
    of a command's output do (decoded with errors="replace")."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:  # a surrogate that stands for no byte
            return _SURROGATE.sub("\ufffd", text)
    return text
