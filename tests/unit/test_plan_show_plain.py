"""A report's lines written plain off a terminal (plan/show.py, `Lines`) are the bytes rich prints for
them: markup, escapes, control codes, styled Texts, long lines; what rich would lay out (tabs, trailing
whitespace past the width) still goes to rich."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from funops.plan.show import Lines, _plain_lines, _prints_plain

LINES: list[Any] = [
    "[bold]Plan[/] for project [bold]fleet[/] · working tree (not a git repo)",
    "",
    "[bold cyan]n0001[/] [dim](127.0.200.1, agent)[/]",
    "  [dim]no changes (5 resources as desired)[/]",
    "  [red]unreachable:[/] " + escape("node n2: [Errno 111] refused :thumbs_up: [link]x[/link] \\["),
    "  bell\x07 and escape\x1b[31m codes, é ü 日本",
    "  " + "a very long line " * 20 + "end",
    Text("      +added line", style="green"),
    Text("      \\ No newline at end of file", style="dim"),
    "[bold]Plan: 0 to create, 0 to update, 0 to delete, 8040 unchanged on 2000 node(s).[/]",
]


def _console(**kwargs: Any) -> Console:
    options = {"soft_wrap": True, "color_system": None, "highlight": False, "emoji": False} | kwargs
    return Console(file=io.StringIO(), **options)


def _printed(lines: list[Any], console: Console) -> str:
    out = Lines(console)
    for line in lines:
        out.add(line)
    out.flush()
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_plain_lines_are_what_rich_prints() -> None:
    rich = _console()
    rich.print(*LINES, sep="\n")
    plain = _console()
    assert _prints_plain(plain)
    assert _plain_lines(LINES) is not None
    assert _printed(LINES, plain) == rich.file.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("line", ["a\ttab", "  trailing  " + "x" * 90 + "   ", Text("two\nlines")])
def test_what_rich_lays_out_goes_to_rich(line: Any) -> None:
    assert _plain_lines(["fine", line]) is None
    rich = _console()
    rich.print("fine", line, sep="\n")
    assert _printed(["fine", line], _console()) == rich.file.getvalue()  # type: ignore[attr-defined]


def test_a_terminal_colours_or_a_width_keep_rich() -> None:
    assert not _prints_plain(_console(color_system="truecolor", force_terminal=True))
    assert not _prints_plain(_console(soft_wrap=False))
    assert not _prints_plain(_console(record=True))
