"""What every command group shares: the options, loading the project, printing a plan. The command
modules import this one (and output.py), never each other: the CLI has no import cycle."""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .output import Output, console, fail, reported

if TYPE_CHECKING:
    from ..load.project import Project
    from ..plan.document import PlanDoc

# The common options read a FUNOPS_* variable when not given (CI sets them once per job).
RepoOpt = Annotated[
    Path,
    typer.Option(
        "--repo",
        "-C",
        metavar="DIR",
        envvar="FUNOPS_REPO",
        show_envvar=True,
        help="The funops repo (default: current directory).",
    ),
]
RevisionOpt = Annotated[
    str | None,
    typer.Option("--revision", "-r", metavar="REV", help="Read manifests from this git commit/branch/tag."),
]
InventoryOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--inventory",
        "-i",
        metavar="FILE",
        envvar="FUNOPS_INVENTORY",
        show_envvar=True,
        help="Inventory file(s) to use instead of inventory/*.yaml (the variable: separated by spaces).",
    ),
]
NodeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--node",
        "-n",
        metavar="NODE",
        help="Only these nodes: names, globs ('web*'), labels (role=app) (repeatable).",
    ),
]
OutputOpt = Annotated[
    Output,
    typer.Option("--output", "-o", envvar="FUNOPS_OUTPUT", show_envvar=True, help="text, json or markdown."),
]


class TextOrJson(StrEnum):
    text = "text"
    json = "json"


# For commands with no Markdown view: --help offers only what they print; the command gets an Output.
TextJsonOpt = Annotated[
    TextOrJson,
    typer.Option(
        "--output",
        "-o",
        callback=lambda value: Output(value),
        envvar="FUNOPS_OUTPUT",
        show_envvar=True,
        help="text or json.",
    ),
]
SkipUnreachableOpt = Annotated[
    bool,
    typer.Option(
        "--skip-unreachable",
        envvar="FUNOPS_SKIP_UNREACHABLE",
        show_envvar=True,
        help="Leave unreachable nodes out instead of failing.",
    ),
]
AutoApproveOpt = Annotated[
    bool,
    typer.Option(
        "--auto-approve",
        envvar="FUNOPS_AUTO_APPROVE",
        show_envvar=True,
        help="Do not ask (required without a TTY).",
    ),
]
ParallelOpt = Annotated[
    int | None,
    typer.Option(
        "--parallel",
        "-p",
        min=1,
        envvar="FUNOPS_PARALLEL",
        show_envvar=True,
        help="Nodes at once in a batch.",
    ),
]
DiffContextOpt = Annotated[
    int,
    typer.Option("--diff-context", min=0, max=1000, help="Lines of context around each change in a file."),
]
NoDiffOpt = Annotated[
    bool, typer.Option("--no-diff", help="Do not show what changes inside files (no extra round trip).")
]
# A report POSTed where something went wrong (drift, a failed renewal): drift --notify's contract.
NotifyOpt = Annotated[
    str | None,
    typer.Option(
        "--notify",
        metavar="URL",
        envvar="FUNOPS_NOTIFY_URL",
        show_envvar=True,
        help="POST the JSON report here when the outcome is not clean. A URL with a token is better "
        "passed in FUNOPS_NOTIFY_URL or --notify-file (a command line is visible in `ps`).",
    ),
]
NotifyFileOpt = Annotated[
    Path | None, typer.Option("--notify-file", metavar="FILE", help="Read the --notify URL from this file.")
]


def notify_url(notify: str | None, notify_file: Path | None) -> str | None:
    """The webhook of --notify or --notify-file, checked before any node is asked (a bad URL fails)."""
    from ..drift.notify import check_url

    if notify_file is not None:
        try:
            notify = notify_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"--notify-file {notify_file}: cannot read it ({getattr(exc, 'strerror', None) or exc})")
    if notify and (problem := check_url(notify)):
        fail(problem)
    return notify


def load(repo: Path, revision: str | None, inventory: list[Path] | None) -> Project:
    from ..load.loader import load_project

    with reported():
        return load_project(repo.resolve(), revision, [p.resolve() for p in inventory] if inventory else None)


def load_compiled(
    repo: Path, revision: str | None, inventory: list[Path] | None
) -> tuple[Project, Callable[[Project], Any] | None]:
    """`load`, through the compiled-state cache (funops/cache/compiled.py): the project, and what
    make_plan compiles it with (`compiled=`), the cache's when it takes part."""
    from ..cache.compiled import lookup

    try:
        cached = lookup(repo.resolve(), revision, inventory)
    except Exception:  # a cache is never a reason to fail: the repo is loaded as ever
        cached = None
    if cached is None:
        return load(repo, revision, inventory), None
    return cached.project or load(repo, revision, inventory), cached.compile


def load_inventory(repo: Path, inventory: list[Path] | None) -> Project:
    """Settings and nodes only: for commands about nodes, not apps (the manifests are not read)."""
    from ..load.loader import load_project

    files = [p.resolve() for p in inventory] if inventory else None
    with reported():
        return load_project(repo.resolve(), None, files, manifests=False)


def show_plan(doc: PlanDoc, output: Output, for_apply: bool = False) -> None:
    """The plan as `plan` prints it; apply and rollback print text, or nothing beside JSON events."""
    if output is Output.json:
        if not for_apply:
            typer.echo(doc.to_json(), nl=False)
    elif output is Output.markdown:
        from ..plan.show import to_markdown

        typer.echo(to_markdown(doc), nl=False)
    else:
        from ..plan.show import print_text

        print_text(doc, console())


# Deploy metrics (funops/observe): the CI and cron conventions of Prometheus.
MetricsPushOpt = Annotated[
    str | None,
    typer.Option(
        "--metrics-push",
        metavar="URL",
        envvar="FUNOPS_METRICS_PUSH",
        show_envvar=True,
        help="PUT the outcome's metrics to this Pushgateway (job funops, grouped by command and "
        "project). A failed push is a warning.",
    ),
]
MetricsTextfileOpt = Annotated[
    Path | None,
    typer.Option(
        "--metrics-textfile",
        metavar="PATH",
        help="Write the outcome's metrics here for node_exporter's textfile collector (*.prom).",
    ),
]


def exports_metrics(command: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorate a command that takes metrics_push and metrics_textfile: when either is given, its
    outcome (exit code included, whatever ends it) goes there once it ends. Never changes the exit code."""

    def wrap(func: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> None:
            from ..observe import deploy

            push, textfile = kwargs.get("metrics_push"), kwargs.get("metrics_textfile")
            subcommand = getattr(kwargs.get("ctx"), "invoked_subcommand", None)  # `drift ack`: no check ran
            if (not push and textfile is None) or subcommand is not None:
                return func(*args, **kwargs)
            from ..observe.export import check_url

            if push and (problem := check_url(push)):
                fail(problem)
            outcome = deploy.start(command, _project_name(kwargs.get("repo") or Path(".")))
            try:
                func(*args, **kwargs)
            except typer.Exit as exc:
                outcome.exit_code = exc.exit_code
                raise
            except BaseException:
                outcome.exit_code = 1
                raise
            finally:
                deploy.stop()
                _send_metrics(outcome, push, textfile)

        return run

    return wrap


def _project_name(repo: Path) -> str:
    """funops.yaml's project, read before (and whether or not) the command loads the repo: a run that
    fails to load pushes to the same group as the runs that succeed."""
    import yaml

    try:
        doc = yaml.safe_load((repo / "funops.yaml").read_text(encoding="utf-8"))
        name = doc.get("project") if isinstance(doc, dict) else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        name = None
    return name if isinstance(name, str) and name else "funops"  # the settings' default


def _send_metrics(outcome: Any, push: str | None, textfile: Path | None) -> None:
    from rich.markup import escape

    from ..observe import export
    from ..observe.deploy import families
    from ..observe.exposition import render

    found = families(outcome)
    grouping = {"command": outcome.command, "project": outcome.project}
    problems = []
    if push:
        problems.append(export.push(push, grouping, render(found)))
    if textfile is not None:
        problems.append(export.write_replacing(textfile, render(found, common=grouping)))
    for problem in filter(None, problems):
        console(stderr=True).print(f"[yellow]warning:[/] metrics not exported: {escape(problem)}")
