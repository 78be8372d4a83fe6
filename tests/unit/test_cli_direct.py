"""cli/direct.py runs a plain `plan`/`apply` command line without building the typer app: what it
takes, what it leaves to the app, and the same output and exit code as the app for what it takes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from funops.cli import direct

from ..conftest import copy_example

APP = "import sys; from funops.cli.main import run; sys.argv[0] = 'funops'; run()"
DIRECT = (
    "import sys; from funops.cli.direct import command; f = command(sys.argv[1:], {}); "
    "assert f is not None, 'left to the app'; f()"
)
ENV = {"NO_COLOR": "1", "FUNOPS_NO_CACHE": "1"}


def run(*args: str, how: str) -> tuple[int, str, str]:
    code = APP if how == "app" else DIRECT
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNOPS_")} | ENV
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120
    )
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["plan"],
        ["-C", ".", "plan", "--no-diff", "-n", "node1", "--node=node2", "-a", "web", "-o", "json"],
        ["plan", "--diff-context", "0", "--skip-unreachable", "--out", "p.json", "--seal-to", "c.pem"],
        ["plan", "-r", "HEAD~1", "--repo=."],
        ["apply", "--auto-approve", "-p", "4", "--allow-dirty", "--force", "--resume", "-o", "text"],
    ],
)
def test_plain_command_lines_are_taken(argv: list[str]) -> None:
    assert direct.command(argv, {}) is not None


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "--help"],
        ["plan", "-o", "yaml"],  # typer says what it may be
        ["apply", "-o", "markdown"],
        ["plan", "--diff-context", "1001"],
        ["plan", "--diff-context", "1_0"],
        ["apply", "-p", "0"],
        ["plan", "-n"],  # a value missing
        ["plan", "-n", "--no-diff"],
        ["plan", "-nnode1"],  # a short option with its value attached
        ["plan", "--no-diff=1"],
        ["plan", "-i", "inventory/nodes.yaml"],
        ["apply", "plan.json"],  # a plan file
        ["apply", "--metrics-push", "http://pushgateway:9091"],
        ["plan", "--", "x"],
        ["--debug", "plan"],
        ["-C", "/nonexistent", "plan"],
        ["render"],
        ["validate"],
        [],
    ],
)
def test_the_rest_is_left_to_the_app(argv: list[str]) -> None:
    assert direct.command(argv, {}) is None


@pytest.mark.parametrize(
    "env",
    [
        {"FUNOPS_AUTO_APPROVE": "1"},
        {"FUNOPS_PARALLEL": "2"},
        {"FUNOPS_SKIP_UNREACHABLE": "yes"},
        {"FUNOPS_INVENTORY": "a.yaml"},
        {"FUNOPS_OUTPUT": "yaml"},
        {"_FUNOPS_COMPLETE": "complete_bash"},
    ],
)
def test_variables_typer_converts_are_left_to_it(env: dict[str, str]) -> None:
    assert direct.command(["apply"], env) is None


def test_the_common_variables_are_read_as_typer_reads_them(tmp_path: Path) -> None:
    repo = copy_example(tmp_path / "repo")
    env = {"FUNOPS_REPO": str(repo), "FUNOPS_OUTPUT": "json"}
    assert direct.command(["plan"], env) is not None
    assert direct.command(["plan", "-o", "text"], env) is not None  # the command line wins


@pytest.mark.parametrize(
    "args",
    [
        ("plan",),
        ("plan", "--no-diff", "-n", "node2"),
        ("plan", "-o", "markdown", "--app", "api"),
        ("plan", "-a", "nope"),  # an error: the same message and exit code
        ("-C", "{repo}", "apply", "-o", "json"),  # no terminal, no --auto-approve: refused
        ("apply", "--auto-approve", "-n", "node1"),
    ],
)
def test_it_prints_what_the_app_prints(tmp_path: Path, args: tuple[str, ...]) -> None:
    """Against the example's local nodes; each run on a copy of its own, as each changes them."""
    results = []
    for how in ("app", "direct"):
        repo = copy_example(tmp_path / how / "repo")
        argv = [a.format(repo=repo) for a in args]
        if "-C" not in argv:
            argv += ["-C", str(repo)]
        code, out, err = run(*argv, how=how)
        results.append((code, out.replace(str(repo), "REPO"), err.replace(str(repo), "REPO")))
    assert results[0][0] in (0, 1, 2)
    app, ran = results
    if "apply" in args and "--auto-approve" in args:  # its release ids and times differ run by run
        assert ran[0] == app[0] and "succeeded" in ran[1] and "succeeded" in app[1]
        return
    assert ran == app


@pytest.mark.parametrize("name", ["plan", "apply"])
def test_its_option_table_is_the_apps(name: str) -> None:
    """What direct.py takes must mean what the app's command means: each option it knows is the
    app's, on the same parameter; each variable the app reads is read here or left to the app; and
    a parameter not given is the function's plain default, as typer passes it."""
    import inspect

    import typer.main

    from funops.cli.main import app

    params = typer.main.get_command(app).commands[name].params  # type: ignore[attr-defined]
    by_option = {opt: p.name for p in params for opt in p.opts}
    for option, (param, _) in direct._OPTIONS[name].items():
        assert by_option.get(option) == param, option
    read_here = {"FUNOPS_REPO", "FUNOPS_OUTPUT"}
    envvars = {p.envvar for p in params if getattr(p, "envvar", None)}
    assert envvars <= read_here | set(direct._LEFT_TO_TYPER), envvars - read_here
    function = inspect.signature(direct.function_of(name))
    for param in function.parameters.values():
        assert not isinstance(param.default, typer.models.ParameterInfo), param.name
        click_param = next(p for p in params if p.name == param.name)
        assert click_param.default == param.default or param.default is None, param.name
