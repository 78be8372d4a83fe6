"""The `funops` command line: the app and its commands, one module per command group. Each command
parses its options, calls into the package and prints; the policy lives outside cli/."""

from __future__ import annotations

import gc
import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup
from typer.main import get_command_name
from typer.models import CommandInfo

from .acme import acme_app
from .agent import agent_app
from .apply import apply
from .audit import audit
from .certs import certs_app
from .debug import configure_logging
from .details import details
from .drift import drift_app
from .exec import exec_
from .help import use_plain_placeholders
from .init import init
from .lock import lock_app
from .logs import logs
from .nodes import cordon, drain, nodes, uncordon
from .output import EXIT_ERROR, running
from .plan import plan, show
from .prometheus import prometheus_app
from .publish import publish, status
from .release import history, rollback
from .repo import render, schema, validate
from .restart import restart

# Click's usage errors (unknown option, bad --output value) exit 2, which the contract keeps for
# "changes pending" (README.md's exit-code table): they are errors before anything was done, exit 1.
# (typer vendors click; BadParameter is its one public usage error, UsageError is its base.)
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class _Commands(TyperGroup):
    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except _UsageError as exc:
            exc.exit_code = EXIT_ERROR
            raise

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _UsageError as exc:  # a subcommand's options are parsed here
            exc.exit_code = EXIT_ERROR
            raise


use_plain_placeholders()
app = typer.Typer(
    cls=_Commands,
    name="funops",
    help="GitOps for plain servers: plan and apply nginx, systemd and docker from a git repo.",
    no_args_is_help=True,
    add_completion=True,  # funops --install-completion [bash|zsh|fish|powershell]
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # a docstring is prose: its line breaks are not kept
)


def version() -> None:
    """Print funops's version."""
    from .. import __version__

    typer.echo(__version__)


# In the order `funops --help` lists them.
for command in (init, validate, plan, show, apply, rollback, history, logs, render, nodes, cordon, uncordon,
                drain, publish, status, schema, version):  # fmt: skip
    app.command()(command)
app.command(name="exec")(exec_)
app.command()(audit)
app.command()(restart)
app.command()(details)
app.add_typer(drift_app, name="drift")
app.add_typer(agent_app, name="agent")
app.add_typer(acme_app, name="acme")
app.add_typer(certs_app, name="certs")
app.add_typer(lock_app, name="lock")
app.add_typer(prometheus_app, name="prometheus")


def run() -> None:
    try:
        argv = leading_options(sys.argv[1:])
        running.command = argv[0] if argv else ""
        configure_logging()
        app_for(argv)(args=argv, prog_name="funops")
    finally:
        # Python's shutdown runs the cyclic collector over all that is still alive (every class of
        # pydantic, typer and rich, the project, the plan): ~0.1 s of a no-op plan spent freeing
        # memory the process is about to give back. Frozen objects are left out of collections.
        gc.freeze()


def leading_options(argv: list[str]) -> list[str]:
    """What comes before the command: `-C DIR`/`--repo DIR` runs it in DIR (as `git -C` and `make -C`
    do: every relative path after it is read from there), `--version` prints the version and `--debug`
    shows the libraries' logs (as FUNOPS_LOG=debug). The rest of argv, for the command."""
    while argv:
        if argv[0] == "--version":
            version()
            raise SystemExit(0)
        if argv[0] == "--debug":
            os.environ["FUNOPS_LOG"] = "debug"
            argv = argv[1:]
            continue
        if argv[0] in ("-C", "--repo") and len(argv) > 1:
            where, argv = argv[1], argv[2:]
        elif argv[0].startswith("--repo="):
            where, argv = argv[0].removeprefix("--repo="), argv[1:]
        else:
            return argv
        try:
            os.chdir(where)
        except OSError as exc:
            typer.echo(f"funops: -C {where}: {exc.strerror}", err=True)
            raise SystemExit(EXIT_ERROR) from None
    return argv


def app_for(argv: list[str]) -> typer.Typer:
    """The app that parses `argv`. Typer builds every command's options from its signature before it
    parses any (~45 ms for all of them, on every run): a run of one command gets an app holding that
    command alone, which parses, helps and fails as the whole app does. `funops`, `funops --help`
    and shell completion get the whole app."""
    name = argv[0] if argv else ""
    commands = [c for c in app.registered_commands if command_name(c) == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if not (commands or groups) or "_FUNOPS_COMPLETE" in os.environ:
        return app
    one = typer.Typer(
        cls=_Commands,
        name="funops",
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode="markdown",
    )
    one.registered_commands, one.registered_groups = commands, groups
    one.callback()(_group)  # a group of commands still, not a single-command app
    return one


def command_name(command: CommandInfo) -> str:
    return command.name or get_command_name(command.callback.__name__)


def _group() -> None:
    pass
