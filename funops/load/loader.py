"""Load and validate a funops repo. Every problem is collected (not just the first) and located."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import InputError, Problem
from ..model.common import PATTERN_WORDS, FieldError
from ..model.inventory import InventoryFile, Node
from ..model.manifests import KINDS
from ..model.settings import Settings
from ..model.text import shown
from .checks import check_references
from .project import Origin, Project
from .source import Source, SourceError, open_source
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
        problems.append(Problem(path, exc.line, exc.field, str(exc)))
    return []


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
            node = _validate(Node, _merge(file.defaults, raw), origin, problems)
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
            problems.append(
                origin.problem(("kind",), f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
            )
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


def _validate(model: type[M], data: Any, origin: Origin | None, problems: list[Problem]) -> M | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problems(exc, data, origin))
        return None


def _problems(exc: ValidationError, data: Any, origin: Origin | None) -> list[Problem]:
    """Pydantic errors → located problems. Union members add names to `loc` that are not in the
    data (e.g. 'str'); they are dropped, and of the errors a union raises for one value the most
    specific is kept (a bad secret reference beats 'Input should be a valid string')."""
    found: dict[tuple, list[tuple[bool, str]]] = {}
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, FieldError):
            loc = (*loc, *cause.path)
        path, via_union = _data_path(data, loc)
        found.setdefault(path, []).append((via_union and err["type"].endswith("_type"), _message(err, cause)))
    problems = []
    for path, messages in found.items():
        specific = [m for generic, m in messages if not generic] or [m for _, m in messages]
        for message in dict.fromkeys(specific):
            if origin is None:
                problems.append(Problem(SETTINGS_FILE, None, ".".join(map(str, path)), message))
            else:
                problems.append(origin.problem(path, message))
    return problems


def _message(err: Any, cause: Any) -> str:
    kind = err["type"]
    if isinstance(cause, FieldError):
        return cause.message
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a mapping (key: value)"
    if kind == "list_type":
        return "must be a list"
    bounds = {"less_than_equal": ("le", "above"), "greater_than_equal": ("ge", "below")}
    if kind in bounds and not isinstance(err["input"], bool):
        key, word = bounds[kind]
        return f"{shown(err['input'])} is {word} {err['ctx'][key]}"
    if kind == "literal_error":
        return f"{shown(err['input'])}: expected {err['ctx']['expected']}"
    if kind == "string_pattern_mismatch":
        words = PATTERN_WORDS.get(err["ctx"]["pattern"], f"text matching {err['ctx']['pattern']}")
        return f"{shown(err['input'])} is not {words}"
    return err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")


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
