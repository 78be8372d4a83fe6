"""Errors are values with a location until the CLI prints them once: problems with the input are
collected (not just the first), each naming its file, line and field, and no stage prints
(docs/architecture.md, "Errors and exit codes")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the user's input (a diagnostic), located as precisely as we can: the
    column and end of the span to underline and the source line are there when the YAML marks
    give them; funops/diagnostics.py renders it for people, as JSON or as CI annotations."""

    file: str
    line: int | None
    field: str
    message: str
    column: int | None = None
    end_column: int | None = None  # exclusive, on `line` (a span is cut to its first line)
    source: str | None = None  # the text of `line`, to show it with the span underlined
    suggestion: str = ""  # "did you mean 'healthCheck'?", "quote the value", …
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f" {self.field}:" if self.field else ""
        return visible(f"{where}:{field} {self.message}")


def visible(text: str) -> str:
    """Control characters and unicode line breaks as escapes, so an error shows what the value holds
    (a newline in a value must not look like the end of the message)."""
    return "".join(_escape(c) for c in text)


def _escape(char: str) -> str:
    return char if char == "\t" or char.isprintable() else repr(char)[1:-1]


class FunopsError(Exception):
    """An error before anything was done (exit code 1)."""


class InputError(FunopsError):
    """The repo's files are invalid; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(
            set(problems), key=lambda p: (p.file, p.line or 0, p.column or 0, p.field, p.message)
        )
        super().__init__(f"{len(self.problems)} problem(s) in the input")
