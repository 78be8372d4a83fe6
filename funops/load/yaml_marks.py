"""YAML → plain data, remembering the line of every key and item so errors can name it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]


@dataclass
class Document:
    """One YAML document: its data, and the 1-based line of each path inside it."""

    data: Any
    line: int
    marks: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int:
        """The line of `path`, or of its nearest ancestor that has one (a missing field → its parent)."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.marks:
                return self.marks[path[:end]]
        return self.line


class YamlError(ValueError):
    def __init__(self, line: int | None, message: str) -> None:
        self.line = line
        super().__init__(message)


class _Loader(yaml.SafeLoader):
    """SafeLoader without implicit timestamps: a date-looking string stays a string."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_documents(text: str) -> list[Document]:
    """Parse multi-document YAML; raises YamlError with a line on syntax errors or duplicate keys."""
    loader = _Loader(text)
    docs: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            doc = Document(data=None, line=node.start_mark.line + 1)
            doc.data = _convert(loader, node, (), doc.marks)
            if doc.data is not None:
                docs.append(doc)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlError(mark.line + 1 if mark else None, f"invalid YAML: {exc.problem}") from exc
    finally:
        loader.dispose()
    return docs


def _convert(loader: yaml.SafeLoader, node: yaml.Node, path: Path, marks: dict[Path, int]) -> Any:
    marks[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolve YAML merge keys (<<)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool):
                raise YamlError(key_node.start_mark.line + 1, "mapping keys must be scalars")
            key = str(key) if not isinstance(key, str) else key
            if key in out:
                raise YamlError(key_node.start_mark.line + 1, f"duplicate key {key!r}")
            out[key] = _convert(loader, value_node, (*path, key), marks)
            marks[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(loader, item, (*path, i), marks) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)
