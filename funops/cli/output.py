"""Printing for the CLI: one console for people (stderr when stdout carries JSON), errors once."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from rich.console import Console

    from ..errors import Problem

from ..exit_codes import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE, worst

__all__ = ["EXIT_CHANGES", "EXIT_ERROR", "EXIT_OK", "EXIT_PARTIAL", "EXIT_UNREACHABLE", "worst"]


class Output(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


def styled(tty: bool) -> bool:
    """Escape codes only for a terminal (or FORCE_COLOR), and never with NO_COLOR (no-color.org: set and
    not empty) — CI logs, cron mail and pipes get plain text."""
    if os.environ.get("NO_COLOR", ""):
        return False
    return tty or bool(os.environ.get("FORCE_COLOR", ""))


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    # Lines are never wrapped off a terminal (CI logs, grep). No emoji: rich would print a 👍 for
    # `:thumbs_up:` in a path, a unit's name or a node's error, which markup escaping leaves as is.
    tty = (sys.stderr if stderr else sys.stdout).isatty()
    return Console(
        stderr=stderr,
        soft_wrap=not tty,
        color_system="auto" if styled(tty) else None,
        highlight=False,
        emoji=False,
    )


# Commands that change nodes: their errors end with "Nothing was changed on any node." (an error
# before anything was done). Others (validate, plan, schema, audit, …) could not have changed one, and
# the line would suggest they could.
CHANGES_NODES = frozenset(
    {"apply", "rollback", "drift", "drain", "restart", "exec", "certs", "lock", "publish", "agent", "acme"}
)


def fail(message: str, problems: list[Problem] | None = None) -> NoReturn:
    import typer
    from rich.markup import escape

    from ..diagnostics import render

    err = console(stderr=True)
    for p in problems or []:
        lines = render(p, markup=True)
        for line in lines:
            err.print(line)
        if len(lines) > 1:
            err.print()
    err.print(f"[red bold]{escape(message)}[/]" if problems else f"[red]error:[/] {escape(message)}")
    if running.command in CHANGES_NODES or not running.command:
        err.print("[dim]Nothing was changed on any node.[/]")
    raise typer.Exit(EXIT_ERROR)


class running:
    """The command being run (set by main.run from argv; "" when unknown: then errors say nothing
    was changed, the safe default)."""

    command = ""


@contextmanager
def reported() -> Iterator[None]:
    """Turn funops's own errors into the one error report (exit 1); anything else is a bug."""
    from ..errors import FunopsError, InputError

    try:
        yield
    except InputError as exc:
        fail(f"{len(exc.problems)} problem(s) found; fix them and run again.", exc.problems)
    except FunopsError as exc:
        fail(str(exc))


@contextmanager
def working(what: str) -> Iterator[None]:
    """A spinner on stderr while something slow runs (asking every node): only on a terminal, so
    pipes, CI logs and JSON output get nothing extra."""
    if not sys.stderr.isatty():
        yield
        return
    with console(stderr=True).status(what):
        yield
