"""cli.main.app_for: a run of one command parses with an app holding that command alone (typer builds
every command it holds before parsing). It must answer exactly as the whole app does."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from funops.cli.main import app, app_for, command_name

NAMES = [command_name(c) for c in app.registered_commands] + [g.name for g in app.registered_groups]


def answer(argv: list[str], whole: bool) -> tuple[int, str]:
    done = CliRunner().invoke(app if whole else app_for(argv), argv, prog_name="funops")
    return done.exit_code, done.output


@pytest.mark.parametrize("name", NAMES)
def test_one_command_answers_as_the_whole_app(name: str) -> None:
    assert app_for([name]) is not app
    for argv in ([name, "--help"], [name, "--no-such-option"]):
        assert answer(argv, whole=False) == answer(argv, whole=True)


def test_no_command_or_an_unknown_one_gets_the_whole_app() -> None:
    assert app_for([]) is app and app_for(["--help"]) is app and app_for(["plna"]) is app
