"""cli/entry.py answers `--version`, `version` and a valid repo's `validate` before the app is built:
the same output and exit code as the app's, and the app for everything else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import funops

from ..conftest import copy_example

APP = "import sys; from funops.cli.main import run; sys.argv[0] = 'funops'; run()"


def run(*args: str, app: bool = False, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`python -m funops ARGS` (through the entry point), or the typer app itself."""
    cmd = [sys.executable, "-c", APP, *args] if app else [sys.executable, "-m", "funops", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120)
    return done.returncode, done.stdout, done.stderr


def test_version_is_printed_without_the_app() -> None:
    code = "import sys; from funops.cli.entry import run; sys.argv = ['funops', '--version']; run()"
    probe = f"{code.replace('run()', '')}\ntry:\n    run()\nexcept SystemExit:\n    pass\n"
    probe += "print(sorted(m for m in ('typer', 'rich', 'pydantic', 'jinja2') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout == f"{funops.__version__}\n[]\n"
    assert run("--version") == run("--version", app=True) == (0, f"{funops.__version__}\n", "")
    assert run("version") == run("version", app=True)


@pytest.mark.parametrize("args", [("validate",), ("validate", "-C", "{repo}"), ("-C", "{repo}", "validate")])
def test_validate_of_a_valid_repo_prints_what_the_app_prints(tmp_path: Path, args: tuple[str, ...]) -> None:
    repo = copy_example(tmp_path / "repo")
    argv = [a.format(repo=repo) for a in args]
    cwd = os.getcwd()
    os.chdir(repo)
    try:
        fast, slow = run(*argv), run(*argv, app=True)
    finally:
        os.chdir(cwd)
    assert fast == slow and fast[0] == 0 and fast[1].startswith("valid: 3 node(s)"), fast


def test_validate_of_an_invalid_repo_is_reported_by_the_app(tmp_path: Path) -> None:
    repo = copy_example(tmp_path / "repo")
    valid = run("validate", "-C", str(repo))
    assert run("validate", "-C", str(repo)) == valid  # from the cache: the repo did not change
    assert list((repo / ".funops" / "cache" / "noop").glob("*.json"))
    web = repo / "manifests" / "web.yaml"
    web.write_text(web.read_text().replace("healthCheck:", "helthCheck:"))
    fast, slow = run("validate", "-C", str(repo)), run("validate", "-C", str(repo), app=True)
    assert fast == slow and fast[0] == 1 and "did you mean 'healthCheck'" in fast[2]


@pytest.mark.parametrize("args", [("validate", "-o", "json"), ("validate", "--help"), ("plan", "--help")])
def test_other_command_lines_are_the_apps(tmp_path: Path, args: tuple[str, ...]) -> None:
    repo = copy_example(tmp_path / "repo")
    assert run(*args, "-C", str(repo)) == run(*args, "-C", str(repo), app=True)
