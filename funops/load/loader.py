"""Load and validate a funops repo. Every problem is collected (not just the first) and located."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..apptypes.application import KINDS
from ..errors import InputError, Problem
from ..model.common import PATTERN_WORDS, FieldError
from ..model.inventory import InventoryFile, Node
from ..model.text import shown
from ..settings import Settings
from . import reparse
from .checks import check_references
from .project import Origin, Project
from .source import Source, SourceError, open_source
from .suggest import did_you_mean, field_names
from .text_check import text_problems
from .yaml_marks import Document, YamlError, load_documents

M = TypeVar("M", bound=BaseModel)

SETTINGS_FILE = "funops.yaml"
INVENTORY_DIR = "inventory"
MANIFEST_DIR = "manifests"


def load_project(
    root: Path, revision: str | None = None, inventory: list[Path] | None = None, manifests: bool = True
) -> Project:
    """Read and check the whole repo (without `manifests`: settings and inventory only, enough to
    reach the nodes); raises InputError listing every problem found."""
    source = open_source(root, revision)
    problems: list[Problem] = []
    settings = _load_settings(source, problems)
    project = Project(source=source, settings=settings or Settings())
    project.settings_origin = _settings_origin(source)
    inventory_files = [str(p) for p in inventory] if inventory else source.list(INVENTORY_DIR)
    for path in inventory_files:
        _load_inventory(project, path, problems)
    for path in source.list(MANIFEST_DIR) if manifests else []:
        _load_manifests(project, path, problems)
    if not inventory_files:
        problems.append(Problem(INVENTORY_DIR, None, "", "no inventory files (inventory/*.yaml)"))
    if not problems:  # cross-references only make sense between documents that are valid themselves
        problems.extend(check_references(project))
    if problems:
        raise InputError(problems)
    for origin in [*project.origins.values(), project.settings_origin]:
        if origin is not None:
            origin.doc.forget_marks(reparse.documents)  # read again if a later stage reports a problem
    return project


MAX_YAML_BYTES = 1 << 20  # 1 MiB: far above any real manifest, far below what could stall a plan


def _read_docs(source: Source, path: str, problems: list[Problem]) -> list[Document]:
    try:
        data = _read(source, path)
    except SourceError as exc:
        problems.append(Problem(path, None, "", str(exc)))
        return []
    if data is None:
        problems.append(Problem(path, None, "", "file not found"))
        return []
    if len(data) > MAX_YAML_BYTES:
        problems.append(Problem(path, None, "", f"{len(data)} bytes is above the limit of {MAX_YAML_BYTES}"))
        return []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problems.append(Problem(path, line, "", f"not UTF-8 text (byte {data[exc.start]:#04x})"))
        return []
    try:
        return load_documents(text)
    except YamlError as exc:
        problems.append(_yaml_problem(path, text, exc))
    return []


def _yaml_problem(path: str, text: str, exc: YamlError) -> Problem:
    lines = text.splitlines()
    source = lines[exc.line - 1] if exc.line and 0 < exc.line <= len(lines) else None
    column = exc.column if source is not None else None
    end = (exc.end_column or column + 1) if column is not None else None
    return Problem(path, exc.line, exc.field, str(exc), column, end, source, exc.help)


def _read(source: Source, path: str) -> bytes | None:
    if Path(path).is_absolute():  # an --inventory given on the command line
        p = Path(path)
        return p.read_bytes() if p.is_file() else None
    return source.read_bytes(path)


def _exists(source: Source, path: str) -> bool:
    try:
        return source.read_bytes(path) is not None
    except SourceError:
        return True  # it is there, and _read_docs reports what is wrong with it


def _load_settings(source: Source, problems: list[Problem]) -> Settings | None:
    if not _exists(source, SETTINGS_FILE):
        return Settings()
    docs = _read_docs(source, SETTINGS_FILE, problems)
    if len(docs) > 1:
        problems.append(Problem(SETTINGS_FILE, docs[1].line, "", "funops.yaml must hold one document"))
    data = docs[0].data if docs else {}
    origin = Origin(SETTINGS_FILE, docs[0]) if docs else None
    if origin and _has_text_problems(origin, data, problems):
        return None
    return _validate(Settings, data, origin, problems)


def _settings_origin(source: Source) -> Origin | None:
    try:
        docs = load_documents(source.read(SETTINGS_FILE) or "")
    except (YamlError, SourceError, UnicodeDecodeError):
        return None
    return Origin(SETTINGS_FILE, docs[0]) if docs else None


def _load_inventory(project: Project, path: str, problems: list[Problem]) -> None:
    for doc in _read_docs(project.source, path, problems):
        if _has_text_problems(Origin(path, doc), doc.data, problems):
            continue
        file = _validate(InventoryFile, doc.data, Origin(path, doc), problems)
        if file is None:
            continue
        for i, raw in enumerate(file.nodes):
            origin = Origin(path, doc, ("nodes", i))
            if not isinstance(raw, dict):
                problems.append(origin.problem((), "a node must be a mapping"))
                continue
            defaults = Origin(path, doc, ("defaults",))
            node = _validate(Node, _merge(file.defaults, raw), origin, problems, defaults)
            if node is None:
                continue
            if node.name in project.nodes:
                first = project.origin("Node", node.name)
                problems.append(
                    origin.problem(
                        ("name",),
                        f"node {node.name!r} is already defined at {first.file}:"
                        f"{first.doc.line_of(first.base)}",
                    )
                )
                continue
            project.nodes[node.name] = node
            project.origins[("Node", node.name)] = origin


def _merge(defaults: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Inventory defaults under each node; nested sections (ssh, labels, vars) merge one level deep."""
    merged = dict(defaults)
    for key, value in node.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _load_manifests(project: Project, path: str, problems: list[Problem]) -> None:
    for doc in _read_docs(project.source, path, problems):
        origin = Origin(path, doc)
        data = doc.data
        if not isinstance(data, dict):
            problems.append(origin.problem((), "a manifest must be a mapping"))
            continue
        if _has_text_problems(origin, data, problems):
            continue
        kind = data.get("kind")
        if kind is None:
            problems.append(origin.problem(("kind",), "required field is missing"))
            continue
        if kind not in KINDS:
            message = f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}"
            problems.append(origin.problem(("kind",), message, did_you_mean(kind, KINDS)))
            continue
        manifest = _validate(KINDS[kind], data, origin, problems)
        if manifest is None:
            continue
        name = manifest.metadata.name
        if (kind, name) in project.origins:
            first = project.origins[(kind, name)]
            problems.append(
                origin.problem(
                    ("metadata", "name"),
                    f"{kind} {name!r} is already defined at {first.file}:{first.doc.line}",
                )
            )
            continue
        project.origins[(kind, name)] = origin
        {
            "Application": project.apps,
            "Service": project.services,
            "Ingress": project.ingresses,
            "Release": project.releases,
            "Certificate": project.certificates,
        }[kind][name] = manifest


def _has_text_problems(origin: Origin, data: Any, problems: list[Problem]) -> bool:
    """Control characters and line breaks where the schema wants one line (model/text.py)."""
    found = text_problems(origin, data)
    problems.extend(found)
    return bool(found)


def _validate(
    model: type[M], data: Any, origin: Origin | None, problems: list[Problem], defaults: Origin | None = None
) -> M | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problems(model, exc, data, origin, defaults))
        return None


def _problems(
    model: type[BaseModel], exc: ValidationError, data: Any, origin: Origin | None, defaults: Origin | None
) -> list[Problem]:
    """Pydantic errors → located problems. Union members add names to `loc` that are not in the
    data (e.g. 'str'); they are dropped, and of the errors a union raises for one value the most
    specific is kept (a bad secret reference beats 'Input should be a valid string'). With
    `defaults` (an inventory node), a wrong value the node took from the file's defaults is located
    there, once, not at every node."""
    found: dict[tuple, list[tuple[bool, Wording]]] = {}
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, FieldError):
            loc = (*loc, *cause.path)
        path, via_union = _data_path(data, loc)
        wording = _message(err, cause, model, loc)
        found.setdefault(path, []).append((via_union and err["type"].endswith("_type"), wording))
    problems = []
    for path, messages in found.items():
        specific = [m for generic, m in messages if not generic] or [m for _, m in messages]
        at = defaults if defaults is not None and _from_defaults(data, defaults, path) else origin
        for message, suggestion, on_key in dict.fromkeys(specific):
            if at is None:
                field = ".".join(map(str, path))
                problems.append(Problem(SETTINGS_FILE, None, field, message, suggestion=suggestion))
            else:
                problems.append(at.problem(path, message, suggestion, key=on_key))
    return problems


def _from_defaults(merged: Any, defaults: Origin, path: tuple) -> bool:
    """Whether the value at `path` of a merged node came from the inventory's defaults (present
    there, and not set by the node itself, which the merge let win)."""
    value: Any = defaults.doc.data.get("defaults") if isinstance(defaults.doc.data, dict) else None
    node: Any = merged
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return False
        value, node = value[part], node.get(part) if isinstance(node, dict) else None
    return bool(path) and value == node and not isinstance(value, dict)


Wording = tuple[str, str, bool]  # message, suggestion, whether it is about the key (not the value)

# pydantic's type errors keep its words ("Input should be a valid integer": scripts and tests match
# them) and add the value that was given, with a hint when it is a quoted number or boolean.
_TYPE_ERRORS = {
    "int_type": int,
    "int_parsing": int,
    "int_from_float": int,
    "float_type": float,
    "float_parsing": float,
    "bool_type": bool,
    "bool_parsing": bool,
    "string_type": str,
}


def _message(err: Any, cause: Any, model: type[BaseModel], loc: tuple) -> Wording:
    kind = err["type"]
    value = err.get("input")
    if isinstance(cause, FieldError):
        return cause.message, "", False
    if kind == "extra_forbidden":
        return "unknown field", did_you_mean(loc[-1], field_names(model, loc[:-1])), True
    if kind == "missing":
        return "required field is missing", "", False
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a mapping (key: value)", "", False
    if kind == "list_type":
        return "must be a list", "", False
    if kind in _TYPE_ERRORS:
        return f"{err['msg']}, got {shown(value)}", _hint(value, _TYPE_ERRORS[kind]), False
    bounds = {"less_than_equal": ("le", "above"), "greater_than_equal": ("ge", "below")}
    if kind in bounds and not isinstance(value, bool):
        key, word = bounds[kind]
        return f"{shown(value)} is {word} {err['ctx'][key]}", "", False
    if kind == "literal_error":
        choices = [c.strip().strip("'") for c in err["ctx"]["expected"].replace(" or ", ", ").split(",")]
        return f"{shown(value)}: expected {err['ctx']['expected']}", did_you_mean(value, choices), False
    if kind == "string_pattern_mismatch":
        words = PATTERN_WORDS.get(err["ctx"]["pattern"], f"text matching {err['ctx']['pattern']}")
        return f"{shown(value)} is not {words}", "", False
    if kind in ("string_too_short", "too_short"):
        return f"{shown(value)} is too short (at least {_count(err, 'min_length')})", "", False
    if kind in ("string_too_long", "too_long"):
        return f"{shown(value)} is too long (at most {_count(err, 'max_length')})", "", False
    message = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return message, "", False


def _count(err: Any, key: str) -> str:
    n = (err.get("ctx") or {}).get(key)
    unit = "character" if err["type"].startswith("string") else "item"
    return f"{n} {unit}{'' if n == 1 else 's'}"


def _hint(value: Any, wanted: type) -> str:
    """A quoted number or boolean is a string to YAML: say so."""
    if wanted is str:
        return "quote it to make it text" if isinstance(value, int | float) else ""
    if not isinstance(value, str):
        return ""
    word = value.strip()
    if wanted is bool:
        return (
            f"write {word.lower()} without quotes"
            if word.lower() in ("true", "false")
            else "write true or false"
        )
    try:
        wanted(word)
    except ValueError:
        return ""
    return f"write {word} without quotes"


def _data_path(data: Any, loc: tuple) -> tuple[tuple, bool]:
    path: list[str | int] = []
    skipped = False
    current = data
    for part in loc:
        in_dict = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if in_dict or in_list:
            current = current[part]
            path.append(part)
        elif isinstance(current, dict) and isinstance(part, str) and not _is_union_tag(part):
            path.append(part)  # a missing field: name it, the line is its parent's
            current = None
        else:
            skipped = True
    return tuple(path), skipped


def _is_union_tag(part: str) -> bool:
    return part in ("str", "int", "float", "bool") or "[" in part or part[:1].isupper()
