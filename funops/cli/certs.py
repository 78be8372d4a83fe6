"""`funops certs`: each ACME certificate as its edge nodes serve it; `certs renew` renews and deploys
what is due (a cron or CI job, exit 0 when nothing is); `certs rollback NAME` switches every node
back to its previous version without the CA."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from .options import (
    AutoApproveOpt,
    InventoryOpt,
    NodeOpt,
    NotifyFileOpt,
    NotifyOpt,
    ParallelOpt,
    RepoOpt,
    TextJsonOpt,
    load,
    notify_url,
    show_plan,
)
from .output import EXIT_OK, Output, console, fail, reported

if TYPE_CHECKING:
    from ..plan.planner import Plan
    from ..transports import Connections

certs_app = typer.Typer(
    rich_markup_mode="markdown",
    help="ACME certificates of the edge nodes: list them, renew what is due, roll one back.",
    invoke_without_command=True,
)


def _plan(repo: Path, inventory: list[Path] | None, node: list[str] | None) -> tuple[Plan, Connections]:
    from ..plan.planner import make_plan
    from ..transports import Connections

    project = load(repo, None, inventory)
    if not project.certificates:
        fail("no Certificate is declared (see README, Certificates from an ACME CA)")
    connections = Connections(project.nodes, project.settings, project.root)
    with reported():
        return make_plan(project, node, connections), connections


@certs_app.callback()
def certs(
    ctx: typer.Context,
    repo: RepoOpt = Path("."),
    inventory: InventoryOpt = None,
    node: NodeOpt = None,
    output: TextJsonOpt = Output.text,
) -> None:
    """Each certificate: its names, issuer, and per edge node the serial it serves and the days left;
    nodes serving different serials are flagged. Exit 0, or 2 when something is due (renew, issue,
    a mismatch to deploy)."""
    if ctx.invoked_subcommand is not None:
        return
    from ..certs.ops import rows

    plan, connections = _plan(repo, inventory, node)
    connections.close()
    found = rows(plan)
    if output is Output.json:
        typer.echo(json.dumps({"formatVersion": 1, "kind": "certificates", "certificates": found}, indent=2))
    else:
        _table(found)
    unreachable = [n.name for n in plan.doc.nodes if not n.reachable]
    for name in unreachable:
        console(stderr=True).print(f"[red]{escape(name)}: unreachable[/]")
    raise typer.Exit(4 if unreachable else 2 if any(r["due"] for r in found) else EXIT_OK)


def _table(found: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("CERTIFICATE", "NAMES", "ISSUER", "NODE", "SERIAL", "DAYS LEFT", "STATUS"):
        table.add_column(column)
    for cert in found:
        status = "" if cert["action"] == "none" else cert["reason"]
        for i, (node, served) in enumerate(sorted(cert["nodes"].items())):
            serial = served["serial"] if served else "(none)"
            flag = " [red]≠[/]" if cert["mismatch"] and served and served["serial"] != cert["serial"] else ""
            table.add_row(
                escape(cert["name"]) if i == 0 else "",
                escape(", ".join(cert["domains"])) if i == 0 else "",
                escape(cert["issuer"]) if i == 0 else "",
                escape(node),
                escape(serial) + flag,
                str(served["daysLeft"]) if served else "-",
                escape(status) if i == 0 else "",
            )
    console().print(table)


@certs_app.command("renew")
def renew(
    repo: RepoOpt = Path("."),
    inventory: InventoryOpt = None,
    node: NodeOpt = None,
    output: TextJsonOpt = Output.text,
    auto_approve: AutoApproveOpt = False,
    parallel: ParallelOpt = None,
    notify: NotifyOpt = None,
    notify_file: NotifyFileOpt = None,
) -> None:
    """Renew (or issue, reissue, deploy to mismatched nodes) every certificate that is due, and
    nothing else of the repo. Exit 0 when nothing is due or all went well; 3 when one failed."""
    from ..certs.ops import only_certificates, rows
    from ..drift import notify as webhook
    from .converge import confirm_and_run, journal_path

    notify = notify_url(notify, notify_file)
    plan, connections = _plan(repo, inventory, node)
    try:
        due = [c for c in plan.certificates if c.action != "none"]
        if not due:
            console(stderr=output is Output.json).print("[green]No certificate is due.[/]")
            raise typer.Exit(EXIT_OK)
        with reported():
            plan = only_certificates(plan)
        show_plan(plan.doc, output, for_apply=True)
        code = confirm_and_run(
            plan, connections, output, auto_approve=auto_approve, parallel=parallel, skip_unreachable=False,
            question="Renew these certificates?",
        )  # fmt: skip
        if notify and code != EXIT_OK:
            report = {"kind": "certificates-renew", "exitCode": code, "certificates": rows(plan),
                      "apply": _last_entry(journal_path(plan))}  # fmt: skip
            if problem := webhook.post_json(notify, json.dumps(report, indent=2)):
                console(stderr=True).print(f"[yellow]warning:[/] --notify: {escape(problem)}")
        raise typer.Exit(code)
    finally:
        connections.close()


def _last_entry(journal: Path) -> dict[str, Any] | None:
    """The journal's entry of this run (its halt reason and each node's error); never a key."""
    try:
        lines = journal.read_text(encoding="utf-8").splitlines()
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None


@certs_app.command("rollback")
def rollback(
    name: Annotated[str, typer.Argument(help="The Certificate to switch back.")],
    repo: RepoOpt = Path("."),
    inventory: InventoryOpt = None,
    node: NodeOpt = None,
    output: TextJsonOpt = Output.text,
    auto_approve: AutoApproveOpt = False,
    parallel: ParallelOpt = None,
) -> None:
    """Switch each edge node's `current` back to its previous version of the certificate (kept on the
    node: no CA involved), through the health-gated batches with `nginx -t` and reload."""
    from ..certs.ops import plan_rollback
    from ..transports import Connections
    from .converge import confirm_and_run

    project = load(repo, None, inventory)
    connections = Connections(project.nodes, project.settings, project.root)
    try:
        with reported():
            plan = plan_rollback(project, name, connections, node)
        show_plan(plan.doc, output, for_apply=True)
        code = confirm_and_run(
            plan, connections, output, auto_approve=auto_approve, parallel=parallel, skip_unreachable=False,
            question=f"Roll certificate {name} back?",
        )  # fmt: skip
        raise typer.Exit(code)
    finally:
        connections.close()
