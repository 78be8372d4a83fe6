"""cli.main.app_for: a run of one command parses with an app holding that command alone (typer builds
every command it holds before parsing). It must answer exactly as the whole app does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from funops import __version__
from funops.cli.main import app, app_for, command_name, leading_options

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


def test_a_leading_repo_option_runs_the_command_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "repo").mkdir()
    assert leading_options(["-C", "repo", "plan", "-o", "json"]) == ["plan", "-o", "json"]
    assert Path.cwd() == tmp_path / "repo"
    assert leading_options(["--repo=..", "validate"]) == ["validate"] and Path.cwd() == tmp_path
    assert leading_options(["plan", "-C", "repo"]) == ["plan", "-C", "repo"]  # the command's own -C
    with pytest.raises(SystemExit) as missing:
        leading_options(["-C", "nowhere", "plan"])
    assert missing.value.code == 1 and Path.cwd() == tmp_path


def test_version_before_any_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        leading_options(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == __version__


def test_the_installed_command_takes_a_leading_repo_option(tmp_path: Path) -> None:
    here = Path(__file__).resolve().parents[2]
    funops = Path(sys.executable).parent / "funops"
    done = subprocess.run([str(funops), "-C", str(here), "validate"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
