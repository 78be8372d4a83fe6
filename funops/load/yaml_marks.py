"""YAML → plain data, remembering the line of every key and item so errors can name it."""

from __future__ import annotations

import re
from typing import Any

import yaml
import yaml.reader

from .document import Document, Path, Span

__all__ = ["Document", "Path", "Span", "YamlError", "load_documents"]


class YamlError(ValueError):
    def __init__(
        self,
        line: int | None,
        message: str,
        path: Path = (),
        column: int | None = None,
        help: str = "",
        span: Span | None = None,
    ) -> None:
        self.line = line
        self.column = span.column if span and span.line == line else column
        self.end_column = span.end_column if span and span.line == span.end_line == line else None
        self.help = help
        self.field = ".".join(map(str, path))
        super().__init__(message)


class _Loader(yaml.SafeLoader):
    """SafeLoader without implicit timestamps: a date-looking string stays a string."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

# libyaml's parser where PyYAML was built with it: the same nodes ~8x faster (a repo of 20 nodes
# loads in 4 ms instead of 30). It composes plain scalars with style "" where Python's has None.
_CLoader: type[yaml.CSafeLoader] | None = None
if yaml.__with_libyaml__:

    class _CLoader(yaml.CSafeLoader):
        yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers


# Bounds: a "billion laughs" file (aliases of aliases) must fail fast, not expand for minutes.
MAX_VALUES = 100_000  # values of one document, counting each alias expansion again
MAX_DEPTH = 64  # nesting of mappings and lists

MERGE_TAG = "tag:yaml.org,2002:merge"
_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9]*)")


def load_documents(text: str) -> list[Document]:
    """Parse multi-document YAML; raises YamlError with a line on syntax errors, duplicate keys,
    meaning-changing YAML 1.1 coercions and documents past the bounds."""
    if _CLoader is not None and not yaml.reader.Reader.NON_PRINTABLE.search(text):
        try:
            return _documents(_CLoader, text)
        except (yaml.YAMLError, RecursionError):
            pass  # errors are worded as the Python parser words them: parse again with it
    try:
        return _documents(_Loader, text)  # checks every character first: may raise ReaderError
    except yaml.MarkedYAMLError as exc:
        raise _plain(exc) from exc
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        char = chr(exc.character) if isinstance(exc.character, int) else str(exc.character)
        raise YamlError(line, f"invalid YAML: unacceptable character {char!r}", column=column) from exc
    except yaml.YAMLError as exc:
        raise YamlError(None, f"invalid YAML: {exc}") from exc
    except RecursionError as exc:  # the parser itself recurses on nesting
        raise YamlError(None, f"invalid YAML: nested deeper than {MAX_DEPTH} levels") from exc


def _plain(exc: yaml.MarkedYAMLError) -> YamlError:
    """PyYAML's scanner wording in plain words, at the mark where the user has to look (for an
    unclosed quote: where it opens, not the end of the file where the parser gave up)."""
    problem, context = exc.problem or "", exc.context or ""
    mark = exc.problem_mark or exc.context_mark
    message, help = f"invalid YAML: {problem}", ""
    if "'\\t'" in problem:  # PyYAML: found character '\\t' that cannot start any token
        message, help = "invalid YAML: tabs cannot indent YAML; use spaces", "replace the tab with spaces"
    elif "quoted scalar" in context and exc.context_mark is not None:
        mark = exc.context_mark
        message, help = "invalid YAML: this quote is never closed", "end the value with the same quote"
    elif "expected <block end>" in problem:
        message = "invalid YAML: bad indentation: this line does not line up with the lines around it"
        help = "indent keys of one mapping (and items of one list) by the same number of spaces"
    elif problem == "mapping values are not allowed here":
        help = "quote a value that holds ': ', or indent this key like its neighbours"
    elif context.startswith("while parsing a flow") and exc.context_mark is not None:
        opened = exc.context_mark
        help = f"close the bracket opened at line {opened.line + 1}, column {opened.column + 1}"
    if mark is None:
        return YamlError(None, message, help=help)
    return YamlError(mark.line + 1, message, column=mark.column + 1, help=help)


def _documents(loader_class: type[yaml.SafeLoader] | type[yaml.CSafeLoader], text: str) -> list[Document]:
    docs: list[Document] = []
    lines = text.splitlines()
    loader = loader_class(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            doc = Document(data=None, line=node.start_mark.line + 1, lines=lines, text=text, index=len(docs))
            doc.data = _Converter(loader, doc).convert(node, (), 0)
            if doc.data is not None:
                docs.append(doc)
    finally:
        loader.dispose()
    return docs


class _Converter:
    """YAML nodes → plain data, recording the line of every path; aliases count against MAX_VALUES."""

    def __init__(self, loader: yaml.SafeLoader | yaml.CSafeLoader, doc: Document) -> None:
        self.loader = loader
        self.doc = doc
        self.marks = doc.marks
        self.values = 0

    def convert(self, node: yaml.Node, path: Path, depth: int) -> Any:
        line = node.start_mark.line + 1
        self.values += 1
        if self.values > MAX_VALUES:  # named by the field that holds the expanding list
            field = path[: next((i for i, p in enumerate(path) if isinstance(p, int)), len(path))]
            message = f"more than {MAX_VALUES} values once aliases are expanded"
            raise YamlError(self.marks.get(field, line), message, field)
        if depth > MAX_DEPTH:
            raise YamlError(line, f"nested deeper than {MAX_DEPTH} levels")
        self.marks[path] = line
        self.doc.value_spans.setdefault(path, Span.of(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: Path, depth: int) -> dict[str, Any]:
        """Explicit keys first; then `<<` merges add the keys not set yet (an explicit key wins; of two
        merged mappings, the first listed wins, as the YAML merge spec says)."""
        out: dict[str, Any] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                merges.extend(value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node])
                continue
            key = self._key(key_node, path)
            if key in out:
                first = self.doc.key_spans.get((*path, key))
                raise YamlError(
                    key_node.start_mark.line + 1,
                    f"duplicate key {key!r}",
                    span=Span.of(key_node),
                    help=f"the first {key!r} is at line {first.line}: keep one" if first else "",
                )
            out[key] = self.convert(value_node, (*path, key), depth + 1)
            self.marks[(*path, key)] = key_node.start_mark.line + 1
            self.doc.key_spans.setdefault((*path, key), Span.of(key_node))
        for merged in merges:
            if not isinstance(merged, yaml.MappingNode):
                line = merged.start_mark.line + 1
                raise YamlError(line, "a merge key (<<) takes a mapping or a list of them")
            saved, self.marks = self.marks, {}
            try:
                inner = self._mapping(merged, path, depth)
            finally:
                inner_marks, self.marks = self.marks, saved
            for key, value in inner.items():
                if key not in out:  # lines of merged values: where the merged mapping says them
                    out[key] = value
                    here = (*path, key)
                    self.marks.update((p, n) for p, n in inner_marks.items() if p[: len(here)] == here)
        return out

    def _key(self, node: yaml.Node, path: Path) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise YamlError(node.start_mark.line + 1, "mapping keys must be scalars")
        key = self.loader.construct_object(node, deep=True)
        if isinstance(key, bool) and not node.style:
            message = f'key {node.value} is read by YAML as {str(key).lower()}: quote it ("{node.value}")'
            raise YamlError(node.start_mark.line + 1, message, path, span=Span.of(node))
        key = self._scalar(node, path)
        if not isinstance(key, str | int | float):
            raise YamlError(node.start_mark.line + 1, "mapping keys must be scalars")
        return key if isinstance(key, str) else str(key)

    def _scalar(self, node: yaml.ScalarNode, path: Path) -> Any:
        """YAML 1.1 reads some plain words and numbers as something else (`NO` → false, `010` → 8,
        `1.10` → 1.1): refused, since the user almost always meant the text."""
        value = self.loader.construct_object(node, deep=True)
        text = node.value
        if node.style or isinstance(value, str) or value is None:
            return value
        line = node.start_mark.line + 1
        if isinstance(value, bool):
            if text.lower() not in ("true", "false"):
                word = str(value).lower()
                message = f'{text} is read by YAML as {word}: write {word}, or quote it ("{text}")'
                raise YamlError(line, message, path, span=Span.of(node))
        elif (isinstance(value, int) and not _DECIMAL.fullmatch(text)) or (
            isinstance(value, float) and text.lstrip("+") != repr(value)
        ):
            message = f'{text} is read by YAML as the number {value!r}: quote it ("{text}")'
            raise YamlError(line, message, path, span=Span.of(node))
        return value
