"""The load-time half of funops/model/text.py: every key and string of a YAML document is checked for
control characters and line breaks before the models see it, so the error names the exact field."""

from __future__ import annotations

from typing import Any

from ..errors import Problem
from ..model.text import bad_char, shown, single_line_problem
from .project import Origin
from .yaml_marks import Path

# Fields whose text may span lines (prefixes; "*" is any key or index). Everything else is one line.
MULTI_LINE: tuple[Path, ...] = (
    ("spec", "configFiles", "*", "content"),
    ("metadata", "annotations", "*"),
    ("spec", "vars"),
    ("nodes", "*", "vars"),
    ("defaults", "vars"),
)


def text_problems(origin: Origin, data: Any) -> list[Problem]:
    problems: list[Problem] = []
    _walk(origin, data, (), problems)
    return problems


def _walk(origin: Origin, value: Any, path: Path, problems: list[Problem]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            char = bad_char(str(key))
            if char is not None:
                message = f"key {shown(key)} holds a control character or line break ({repr(char)[1:-1]})"
                problems.append(origin.problem(path, message))
                continue
            _walk(origin, item, (*path, key), problems)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(origin, item, (*path, i), problems)
    elif isinstance(value, str):
        if _multi_line(path):
            char = bad_char(value, multi_line=True)
            if char is not None:
                message = f"{shown(value)} holds a control character ({repr(char)[1:-1]})"
                problems.append(origin.problem(path, message))
        else:
            message = single_line_problem(value)
            if message:
                problems.append(origin.problem(path, message))


def _multi_line(path: Path) -> bool:
    return any(
        len(path) >= len(prefix) and all(p == "*" or p == q for p, q in zip(prefix, path, strict=False))
        for prefix in MULTI_LINE
    )
