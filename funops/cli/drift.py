"""`funops drift`: is every node still as funops left it? And `funops drift ack`: known drift, reviewed.

Exit codes (funops/exit_codes.py): 0 clean; 2 drift (unacknowledged); 4 a node unreachable, everything
reachable clean; 3 `--fix` failed on some node or halted; 1 error before anything was done. Highest wins.
Repo changes not yet applied are *pending*: shown, never a failure (deploying them is apply's job).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .options import (
    DiffContextOpt,
    InventoryOpt,
    MetricsPushOpt,
    MetricsTextfileOpt,
    NodeOpt,
    NoDiffOpt,
    NotifyFileOpt,
    NotifyOpt,
    OutputOpt,
    RepoOpt,
    RevisionOpt,
    exports_metrics,
    load,
    notify_url,
)
from .output import Output, console, fail, reported
from .targeting import AppOpt, app_intent

if TYPE_CHECKING:
    from ..drift.check import DriftCheck
    from ..load.project import Project
    from ..transports import Connections

drift_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Compare the nodes with what funops last applied and with the repo; change nothing "
    "(unless --fix). Exit 0 clean, 2 drift, 4 unreachable, 3 fix failed, 1 error.",
    invoke_without_command=True,
    no_args_is_help=False,
)


@drift_app.callback()
@exports_metrics("drift")
def drift(
    ctx: typer.Context,
    repo: RepoOpt = Path("."),
    revision: RevisionOpt = None,
    inventory: InventoryOpt = None,
    node: NodeOpt = None,
    app: AppOpt = None,
    output: OutputOpt = Output.text,
    fix: Annotated[
        bool, typer.Option("--fix", help="Apply the plan that removes the drift (the apply engine).")
    ] = False,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="With --fix: do not ask (required without a TTY).")
    ] = False,
    notify: NotifyOpt = None,
    notify_file: NotifyFileOpt = None,
    diff_context: DiffContextOpt = 3,
    no_diff: NoDiffOpt = False,
    metrics_push: MetricsPushOpt = None,
    metrics_textfile: MetricsTextfileOpt = None,
) -> None:
    """Compare the nodes with what funops last applied and with the repo; change nothing (unless --fix)."""
    if ctx.invoked_subcommand is not None:
        return
    from ..drift import notify as webhook
    from ..observe.deploy import record as record_metrics
    from ..transports import Connections

    notify = notify_url(notify, notify_file)
    project = load(repo, revision, inventory)
    if fix and not auto_approve and not sys.stdin.isatty():
        fail("refusing to fix without a terminal to confirm: pass --auto-approve (CI, cron)")
    intent = app_intent(project, app)
    connections = Connections(project.nodes, project.settings, project.root)
    try:
        from ..drift.check import run_check

        with reported():
            from ..plan.diffs import DiffOptions

            check = run_check(
                project,
                node,
                connections,
                diff=None if no_diff else DiffOptions(context=diff_context),
                intent=intent,
            )
        if fix:
            _fix(project, check, connections, output, auto_approve)
        record_metrics(drift=check.doc)
        _print(check, output)
        if notify and check.doc.exit_code != 0:
            problem = webhook.post_json(notify, check.doc.to_json())
            if problem:
                from rich.markup import escape

                console(stderr=True).print(f"[yellow]warning:[/] --notify: {escape(str(problem))}")
        raise typer.Exit(check.doc.exit_code)
    finally:
        connections.close()


def _print(check: DriftCheck, output: Output) -> None:
    doc = check.doc
    if output is Output.json:
        typer.echo(doc.to_json(), nl=False)
    elif output is Output.markdown:
        from ..drift.show import to_markdown

        typer.echo(to_markdown(doc), nl=False)
    else:
        from ..drift.show import print_text

        print_text(doc, console())


def _fix(
    project: Project, check: DriftCheck, connections: Connections, output: Output, auto_approve: bool
) -> None:
    """Converge the drifted nodes with the apply engine (what drift/fix.py allows), then check again
    for the exit code."""
    from ..drift.check import run_check, settle
    from ..drift.document import FixDoc
    from ..drift.fix import fix_doc, fixable, plan_fix
    from .converge import run_rollout
    from .progress import Progress

    doc = check.doc
    con = console(stderr=output is not Output.text)
    with reported():
        plan = plan_fix(project, doc, connections, check.plan.intent)
    if plan is None:
        settle(doc, FixDoc(rollout=None, halted=False, nodes={}))
        return
    if not auto_approve:
        _print(check, Output.text)
        if not typer.confirm(f"Fix the drift on {', '.join(sorted(fixable(doc)))}?", default=False):
            con.print("Cancelled; nothing was changed.")
            raise typer.Exit(doc.exit_code)
    result, _ = run_rollout(plan, connections, Progress(con, json_events=False), trigger="drift --fix")
    assert result is not None  # a refused rollout failed (exit 1) before anything changed
    with reported():
        after = run_check(project, doc.targets, connections, intent=check.plan.intent)
    settle(doc, fix_doc(result), remaining=after.doc.summary.drift)
    con.print(f"After the fix: {after.doc.summary.drift} unacknowledged drift item(s) left.")


@drift_app.command("ack")
def ack(
    node_name: Annotated[str, typer.Argument(metavar="NODE", help="The node with the drift.")],
    resource: Annotated[
        str, typer.Argument(metavar="RESOURCE", help="Its id as the report names it, e.g. file:/etc/x.conf.")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why this drift is known and fine for now.")],
    until: Annotated[
        str, typer.Option("--until", metavar="YYYY-MM-DD", help="Covered through this day (UTC).")
    ],
    by: Annotated[str | None, typer.Option("--by", help="Who acknowledges (default: git user.name).")] = None,
    repo: RepoOpt = Path("."),
    inventory: InventoryOpt = None,
) -> None:
    """Acknowledge NODE's current drift of RESOURCE in drift-ack.yaml (commit it for review)."""
    from pydantic import ValidationError

    from ..drift.acks import ACK_FILE, Ack, record_ack
    from ..drift.check import run_check
    from ..transports import Connections

    try:
        day = dt.date.fromisoformat(until)
    except ValueError:
        fail(f"--until {until!r} is not a date (YYYY-MM-DD)")
    if day < dt.datetime.now(dt.UTC).date():
        fail(f"--until {until} has passed; an acknowledgement must end in the future")
    if not reason.strip():
        fail("--reason must say why")
    project = load(repo, None, inventory)
    if node_name not in project.nodes:
        fail(f"unknown node {node_name!r}; known: {', '.join(sorted(project.nodes))}")
    connections = Connections(project.nodes, project.settings, project.root)
    try:
        with reported():
            check = run_check(project, [node_name], connections)
    finally:
        connections.close()
    node_doc = check.doc.nodes[0]
    if not node_doc.reachable:
        fail(f"{node_name} is unreachable: {node_doc.error}")
    item = next((i for i in node_doc.drift if i.id == resource), None)
    if item is None:
        found = ", ".join(i.id for i in node_doc.drift) or "none"
        fail(f"no drift of {resource} on {node_name} to acknowledge (drift there: {found})")
    try:
        entry = Ack(
            node=node_name, resource=resource, reason=reason.strip(), until=day, by=by or _who(project.root),
            fingerprint=item.fingerprint,
        )  # fmt: skip
    except ValidationError as exc:
        fail(f"invalid acknowledgement: {exc.errors()[0]['msg']}")
    path = record_ack(project.root, check.acks, entry)
    console().print(
        f"acknowledged {item.drift_class} drift of {resource} on {node_name} until {day} "
        f"({item.fingerprint}) in {path.name}; commit {ACK_FILE} for review."
    )


def _who(root: Path) -> str:
    import getpass
    import subprocess

    try:
        done = subprocess.run(
            ["git", "-C", str(root), "config", "user.name"], capture_output=True, text=True, timeout=10
        )
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    except OSError:
        pass
    return getpass.getuser()
