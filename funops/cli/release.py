"""`funops rollback` and `funops history`: the releases every node records."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .options import (
    AutoApproveOpt,
    InventoryOpt,
    MetricsPushOpt,
    MetricsTextfileOpt,
    ParallelOpt,
    RepoOpt,
    SkipUnreachableOpt,
    TextJsonOpt,
    exports_metrics,
    show_plan,
)
from .output import EXIT_OK, EXIT_UNREACHABLE, Output, console, reported

if TYPE_CHECKING:
    from ..load.project import Project


@exports_metrics("rollback")
def rollback(
    app_name: Annotated[str, typer.Argument(metavar="APP", help="The application to roll back.")],
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="A release id (web-3, or 3) to restore its recorded artifacts, or a git revision "
            "to apply the app's manifests of that commit. Default: the last succeeded release "
            "before the current one.",
        ),
    ] = None,
    repo: RepoOpt = Path("."),
    inventory: InventoryOpt = None,
    output: TextJsonOpt = Output.text,
    auto_approve: AutoApproveOpt = False,
    parallel: ParallelOpt = None,
    skip_unreachable: SkipUnreachableOpt = False,
    metrics_push: MetricsPushOpt = None,
    metrics_textfile: MetricsTextfileOpt = None,
) -> None:
    """Return APP to an earlier release: plan first (printed like `plan`), then apply through the
    same batches and health gates as a deploy. APP may name a Certificate: each edge node switches
    back to its previous version of it (`funops certs rollback`). The release rolled back from is
    marked, and its revision will not be deployed again without --force.
    Exit codes as apply; 1 when there is nothing to roll back to."""
    from ..release.rollback import plan_rollback
    from ..transports import Connections
    from .converge import confirm_and_run

    project = _load_for_nodes(repo, inventory)
    connections = Connections(project.nodes, project.settings, project.root)
    opened = [connections]
    try:
        if to is None and app_name not in project.apps and app_name in project.certificates:
            from ..certs.ops import plan_rollback as certificate_rollback

            with reported():  # a Certificate: each edge node back to its previous version, no CA
                plan = certificate_rollback(project, app_name, connections)
            show_plan(plan.doc, output, for_apply=True)
            code = confirm_and_run(
                plan, connections, output, auto_approve=auto_approve, parallel=parallel,
                skip_unreachable=skip_unreachable, question=f"Roll certificate {app_name} back?",
            )  # fmt: skip
            raise typer.Exit(code)
        with reported():
            inventory_files = [p.resolve() for p in inventory] if inventory else None
            back = plan_rollback(project, app_name, to, connections, skip_unreachable, inventory_files)
        opened.append(back.connections)
        if output is Output.text:  # restored files' contents come from the nodes' artifact stores
            from ..plan.diffs import DiffOptions
            from ..plan.planner import attach_diffs

            attach_diffs(back.plan, back.connections, DiffOptions())
        console(stderr=output is Output.json).print(f"[bold]Rollback[/] {back.what}")
        show_plan(back.plan.doc, output, for_apply=True)
        code = confirm_and_run(
            back.plan, back.connections, output,
            auto_approve=auto_approve, parallel=parallel, skip_unreachable=skip_unreachable,
            question="Roll back?",
        )  # fmt: skip
        raise typer.Exit(code)
    finally:
        for c in {id(c): c for c in opened}.values():
            c.close()


def history(
    app_name: Annotated[str | None, typer.Argument(metavar="[APP]", help="Only this application.")] = None,
    repo: RepoOpt = Path("."),
    inventory: InventoryOpt = None,
    output: TextJsonOpt = Output.text,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="WINDOW",
            help="Only releases started in this window (30m, 24h, 7d, 2w); the deploy figures cover it "
            "(default 7d).",
        ),
    ] = None,
) -> None:
    """Releases newest first, read from every node's records: revision, version, nodes, status,
    duration; then, over the window, each app's deploy success rate and duration (median, p95) and
    the journal's rollouts. Exit 0; 4 when some nodes were unreachable (their records are missing)."""
    import datetime as dt

    from ..apply import journal
    from ..release import stats
    from ..release.document import history_doc, stats_doc
    from ..release.history import gather_states, node_states, releases
    from ..release.show import print_history
    from ..transports import Connections

    with reported():
        window = stats.parse_window(since or "7d")
    start = dt.datetime.now(dt.UTC) - window
    project = _load_for_nodes(repo, inventory)
    connections = Connections(project.nodes, project.settings, project.root)
    try:
        with reported():
            gathered = gather_states(project, connections)
    finally:
        connections.close()
    unreachable = sorted(n for n, g in gathered.items() if not g.reachable)
    rels = releases(node_states(gathered), app_name)
    ran = journal.entries(journal.journal_path(project.root, project.settings.journal))
    figures = stats_doc(
        since or "7d",
        start.isoformat(timespec="seconds"),
        stats.per_app(rels, start),
        stats.per_kind(ran, start),
    )
    shown = stats.since(rels, start) if since else rels
    doc = history_doc(project.settings.project, app_name, shown, unreachable, figures)
    if output is Output.json:
        typer.echo(doc.to_json(), nl=False)
    else:
        print_history(doc, console())
    raise typer.Exit(EXIT_UNREACHABLE if unreachable else EXIT_OK)


def _load_for_nodes(repo: Path, inventory: list[Path] | None) -> Project:
    """The repo for reaching its nodes: when the manifests no longer validate (the reason to roll
    back, sometimes), settings and inventory are enough."""
    from rich.markup import escape

    from ..errors import InputError
    from ..load.loader import load_project

    inventory_files = [p.resolve() for p in inventory] if inventory else None
    try:
        return load_project(repo.resolve(), None, inventory_files)
    except InputError as exc:
        console(stderr=True).print(
            f"[yellow]warning:[/] the repo does not validate ({len(exc.problems)} problem(s), "
            f"first: {escape(str(exc.problems[0]))}); using its settings and inventory only"
        )
    with reported():
        return load_project(repo.resolve(), None, inventory_files, manifests=False)
