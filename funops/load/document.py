"""A YAML document as funops keeps it: its data, the line of every path and the spans of keys and
values (load/yaml_marks.py parses it). Apart from the parser, so a loaded project (a compiled-state
cache entry: funops/cache/compiled.py) needs no YAML library."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Span:
    """Where a node's text lies: 1-based line and column of its start, and of its end (exclusive)."""

    line: int
    column: int
    end_line: int
    end_column: int

    @classmethod
    def of(cls, node: yaml.Node) -> Span:
        start, end = node.start_mark, node.end_mark
        return cls(start.line + 1, start.column + 1, end.line + 1, end.column + 1)


@dataclass
class Document:
    """One YAML document: its data, and the 1-based line of each path inside it; the spans of keys
    and values, and the file's lines, for diagnostics that point at a column."""

    data: Any
    line: int
    marks: dict[Path, int] = field(default_factory=dict)
    key_spans: dict[Path, Span] = field(default_factory=dict)
    value_spans: dict[Path, Span] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list, repr=False)
    text: str = field(default="", repr=False)  # the file's text, and this document's place in it:
    index: int = field(default=-1, repr=False)  # to read the marks again once forgotten
    reread: Callable[[str], list[Document]] | None = field(default=None, repr=False)  # once forgotten

    def forget_marks(self, reread: Callable[[str], list[Document]]) -> None:
        """Drop the line and spans of every path once the document is validated (~3 KB a node of an
        inventory: 6.5 MB at 2,000 nodes, held through a run for errors that rarely come): a later
        problem has them parsed again from the text by `reread` (the parser), the same."""
        if self.text and self.index >= 0:
            self.marks, self.key_spans, self.value_spans = {}, {}, {}
            self.reread = reread

    @property
    def forgotten(self) -> bool:
        return self.reread is not None

    def _marked(self) -> None:
        if self.reread is not None:
            again = self.reread(self.text)[self.index]
            self.marks, self.key_spans, self.value_spans = again.marks, again.key_spans, again.value_spans
            self.reread = None

    def span_of(self, path: Path) -> Span | None:
        """What to underline for `path`: a scalar value itself; a mapping or list by its key; a missing
        field by its nearest ancestor's key (or value)."""
        self._marked()
        value = self.value_spans.get(path)
        if value is not None and value.line == value.end_line and value.end_column > value.column:
            return value
        for end in range(len(path), -1, -1):
            span = self.key_spans.get(path[:end]) or (self.value_spans.get(path[:end]) if end else None)
            if span is not None:
                return _first_line(span, self.lines)
        return None

    def key_span_of(self, path: Path) -> Span | None:
        self._marked()
        return self.key_spans.get(path) or self.span_of(path)

    def line_of(self, path: Path) -> int:
        """The line of `path`, or of its nearest ancestor that has one (a missing field → its parent)."""
        self._marked()
        for end in range(len(path), -1, -1):
            if path[:end] in self.marks:
                return self.marks[path[:end]]
        return self.line


def _first_line(span: Span, lines: list[str]) -> Span:
    """A span cut to its first line (a caret line under one source line)."""
    if span.line == span.end_line:
        return span
    text = lines[span.line - 1] if 0 < span.line <= len(lines) else ""
    return Span(span.line, span.column, span.line, max(len(text.rstrip()) + 1, span.column + 1))
