"""`funops cordon` / `uncordon`: set a node's `cordoned` flag in the inventory file that declares
it, keeping the file's comments, order and quoting (a round-trip YAML edit with ruamel.yaml). The
repo is the truth: the change is a diff to commit, and placement reads it on the next plan."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from ..errors import FunopsError
from ..load.loader import INVENTORY_DIR


@dataclass(frozen=True)
class CordonEdit:
    file: Path
    node: str
    changed: bool


def _yaml() -> YAML:
    yaml = YAML()  # round trip: comments, key order, flow style and quotes survive
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def inventory_files(root: Path) -> list[Path]:
    folder = root / INVENTORY_DIR
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def set_cordoned(root: Path, node: str, cordoned: bool) -> CordonEdit:
    """Cordon (or uncordon) `node` in the inventory file that declares it."""
    yaml = _yaml()
    for file in inventory_files(root):
        text = file.read_text(encoding="utf-8")
        doc = yaml.load(text)
        nodes = doc.get("nodes") if isinstance(doc, CommentedMap) else None
        entry = next((n for n in nodes or [] if isinstance(n, CommentedMap) and n.get("name") == node), None)
        if entry is None:
            continue
        if bool(entry.get("cordoned", False)) == cordoned:
            return CordonEdit(file, node, changed=False)
        if cordoned:
            # After `address` when it is there (where a reader looks), else at the end.
            keys = list(entry.keys())
            at = keys.index("address") + 1 if "address" in keys else len(keys)
            entry.insert(at, "cordoned", True)
        else:
            del entry["cordoned"]
        tmp = file.with_name(f".{file.name}.funops")
        with tmp.open("w", encoding="utf-8") as out:
            yaml.dump(doc, out)
        tmp.replace(file)
        return CordonEdit(file, node, changed=True)
    raise FunopsError(f"node {node} is not declared in {INVENTORY_DIR}/*.yaml")
