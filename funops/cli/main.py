"""The `funops` command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .output import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, EXIT_UNREACHABLE, Output, console, fail, reported

if TYPE_CHECKING:
    from ..load.project import Project

app = typer.Typer(
    name="funops",
    help="GitOps for plain servers: plan and apply nginx, systemd and docker from a git repo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

RepoOpt = Annotated[Path, typer.Option("--repo", "-C", help="The funops repo (default: current directory).")]
RevisionOpt = Annotated[
    str | None, typer.Option("--revision", "-r", help="Read manifests from this git commit/branch/tag.")
]
InventoryOpt = Annotated[
    list[Path] | None,
    typer.Option("--inventory", "-i", help="Inventory file(s) to use instead of inventory/*.yaml."),
]
NodeOpt = Annotated[list[str] | None, typer.Option("--node", "-n", help="Only these nodes (repeatable).")]
OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="text, json or markdown.")]
SkipUnreachableOpt = Annotated[
    bool, typer.Option("--skip-unreachable", help="Leave unreachable nodes out instead of failing.")
]


def _load(repo: Path, revision: str | None, inventory: list[Path] | None) -> Project:
    from ..load.loader import load_project

    with reported():
        try:
            return load_project(
                repo.resolve(), revision, [p.resolve() for p in inventory] if inventory else None
            )
        except Exception as exc:  # a bad --revision: gitpython's errors are not ours to list
            if type(exc).__module__.startswith("git"):
                fail(f"cannot read revision {revision!r}: {exc}")
            raise


@app.command()
def validate(repo: RepoOpt = Path("."), revision: RevisionOpt = None, inventory: InventoryOpt = None) -> None:
    """Check the repo's files (schema and cross-references); touches no node."""
    from ..compile.compiler import compile_project

    project = _load(repo, revision, inventory)
    with reported():
        compile_project(project)
    console().print(
        f"[green]valid:[/] {len(project.nodes)} node(s), {len(project.apps)} app(s), "
        f"{len(project.services)} service(s), {len(project.ingresses)} ingress(es), "
        f"{len(project.releases)} release(s) · {project.revision.describe()}"
    )


@app.command()
def plan(
    repo: RepoOpt = Path("."),
    revision: RevisionOpt = None,
    inventory: InventoryOpt = None,
    node: NodeOpt = None,
    output: OutputOpt = Output.text,
    out: Annotated[Path | None, typer.Option("--out", help="Also save the plan as JSON here.")] = None,
    skip_unreachable: SkipUnreachableOpt = False,
) -> None:
    """Show what apply would change on every node.
    Exit 0: nothing to do; 2: changes pending; 1: error or an unreachable node; 4: unreachable skipped."""
    from ..plan.planner import make_plan

    project = _load(repo, revision, inventory)
    with reported():
        result = make_plan(project, node)
    doc = result.doc
    if out:
        out.write_text(doc.to_json(), encoding="utf-8")
    if output is Output.json:
        typer.echo(doc.to_json(), nl=False)
    elif output is Output.markdown:
        from ..plan.show import to_markdown

        typer.echo(to_markdown(doc), nl=False)
    else:
        from ..plan.show import print_text

        print_text(doc, console())
    unreachable = [n for n in doc.nodes if not n.reachable]
    if unreachable and not skip_unreachable:
        console(stderr=True).print(
            f"[red]error:[/] unreachable: {', '.join(n.name for n in unreachable)} "
            "(pass --skip-unreachable to plan the others)"
        )
        raise typer.Exit(EXIT_ERROR)
    if unreachable:
        raise typer.Exit(EXIT_UNREACHABLE)
    raise typer.Exit(EXIT_CHANGES if doc.has_changes() else EXIT_OK)


@app.command()
def apply(
    repo: RepoOpt = Path("."),
    revision: RevisionOpt = None,
    inventory: InventoryOpt = None,
    node: NodeOpt = None,
    output: OutputOpt = Output.text,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Do not ask (required without a TTY).")
    ] = False,
    parallel: Annotated[
        int | None, typer.Option("--parallel", "-p", min=1, help="Nodes at once in a batch.")
    ] = None,
    skip_unreachable: SkipUnreachableOpt = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the last halted apply.")] = False,
) -> None:
    """Converge the nodes: plan, confirm, then apply in health-gated batches.
    Exit 0: done; 1: error before any change; 3: some nodes failed or the rollout halted; 4: unreachable."""
    import sys

    from ..apply import journal
    from ..apply.lock import LockHeld
    from ..apply.rollout import execute, journal_entry
    from ..plan.planner import make_plan
    from ..plan.show import print_text
    from ..transports import Connections
    from .output import EXIT_PARTIAL
    from .progress import Progress

    project = _load(repo, revision, inventory)
    journal_file = journal.journal_path(project.root, project.settings.journal)
    if resume:
        node = _resume_targets(journal.entries(journal_file))
    if output is Output.markdown:
        fail("apply prints text or json; use `funops plan -o markdown` for a report")
    con = console(stderr=output is Output.json)
    connections = Connections(project.nodes, project.settings, project.root)
    try:
        with reported():
            result_plan = make_plan(project, node, connections)
        doc = result_plan.doc
        if output is Output.text:
            print_text(doc, con)
        if not doc.has_changes() and not doc.summary.nodes_unreachable:
            con.print("[green]Nothing to do: every node is as declared.[/]")
            raise typer.Exit(EXIT_OK)
        if not auto_approve:
            if not sys.stdin.isatty():
                fail("refusing to apply without a terminal to confirm: pass --auto-approve (CI)")
            if not typer.confirm("Apply these changes?", default=False):
                con.print("Cancelled; nothing was changed.")
                raise typer.Exit(EXIT_OK)
        progress = Progress(con, json_events=output is Output.json)
        try:
            result = execute(result_plan, connections, progress.emit, parallel, skip_unreachable)
        except LockHeld as exc:
            fail(
                f"{exc}; nothing was changed. Wait for it to finish, or remove the lock "
                f"({project.settings.state_dir}/lock on {exc.node}) if that apply is dead."
            )
        statuses = {o.status for o in result.outcomes.values()}
        if result.halted or "failed" in statuses:
            code = EXIT_PARTIAL
        elif "unreachable" in statuses:
            code = EXIT_UNREACHABLE
        else:
            code = EXIT_OK
        journal.append(journal_file, journal_entry(result_plan, result, code))
        progress.summary(result, code)
        raise typer.Exit(code)
    finally:
        connections.close()


def _resume_targets(entries: list[dict]) -> list[str]:
    last = next((e for e in reversed(entries) if e.get("event") == "apply"), None)
    if last is None:
        fail("nothing to resume: the journal has no apply")
    targets = sorted(
        n for n, o in last["nodes"].items() if o["status"] in ("failed", "unreachable", "skipped")
    )
    if not targets:
        fail(f"nothing to resume: apply {last['id']} finished on every node")
    return targets


@app.command()
def render(
    node: Annotated[str, typer.Option("--node", "-n", help="The node whose files to render.")],
    repo: RepoOpt = Path("."),
    revision: RevisionOpt = None,
    inventory: InventoryOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the files under this directory.")] = None,
) -> None:
    """Render the files funops would write on NODE (secrets included: --out files are mode 0600)."""
    from ..compile.compiler import compile_project

    project = _load(repo, revision, inventory)
    if node not in project.nodes:
        fail(f"unknown node {node!r}; known: {', '.join(sorted(project.nodes))}")
    with reported():
        desired = compile_project(project).nodes[node]
    con = console()
    for res in desired.resources:
        if res.kind != "file" or res.content is None:
            detail = res.run_spec if res.run_spec is not None else dict(res.desired)
            con.print(f"[dim]{res.id}[/] {detail}")
            continue
        if out is None:
            con.print(
                f"[bold]{res.id}[/] mode {res.desired['mode']}"
                + (" [yellow](secret)[/]" if res.secret else "")
            )
            continue
        target = out / res.name.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(res.content)
        target.chmod(0o600 if res.secret else int(res.desired["mode"], 8))
        con.print(f"wrote {target}")


@app.command()
def schema(
    what: Annotated[str, typer.Argument(help="manifest, inventory, settings or plan")] = "manifest",
) -> None:
    """Print a JSON Schema (for editors, CI checks of --output json)."""
    import json

    from ..schemas import schema_for

    try:
        typer.echo(json.dumps(schema_for(what), indent=2, sort_keys=True))
    except KeyError:
        fail(f"unknown schema {what!r}; choose manifest, inventory, settings or plan")


@app.command()
def version() -> None:
    """Print funops's version."""
    from .. import __version__

    typer.echo(__version__)


def run() -> None:
    app()
