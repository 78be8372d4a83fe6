"""The `funops` command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .output import EXIT_CHANGES, EXIT_OK, EXIT_UNREACHABLE, Output, console, fail

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


def _load(repo: Path, revision: str | None, inventory: list[Path] | None) -> Project:
    from ..errors import FunopsError, InputError
    from ..load.loader import load_project

    try:
        return load_project(repo.resolve(), revision, [p.resolve() for p in inventory] if inventory else None)
    except InputError as exc:
        fail(f"{len(exc.problems)} problem(s) found; fix them and run again.", exc.problems)
    except FunopsError as exc:
        fail(str(exc))
    except Exception as exc:  # a bad --revision: gitpython's errors are not ours to list
        if type(exc).__module__.startswith("git"):
            fail(f"cannot read revision {revision!r}: {exc}")
        raise


@app.command()
def validate(repo: RepoOpt = Path("."), revision: RevisionOpt = None, inventory: InventoryOpt = None) -> None:
    """Check the repo's files (schema and cross-references); touches no node."""
    from ..compile.compiler import compile_project
    from ..errors import InputError

    project = _load(repo, revision, inventory)
    try:
        compile_project(project)
    except InputError as exc:
        fail(f"{len(exc.problems)} problem(s) found; fix them and run again.", exc.problems)
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
) -> None:
    """Show what apply would change on every node. Exit 0: nothing to do, 2: changes pending."""
    from ..errors import FunopsError, InputError
    from ..plan.planner import make_plan

    project = _load(repo, revision, inventory)
    try:
        result = make_plan(project, node)
    except InputError as exc:
        fail(f"{len(exc.problems)} problem(s) found; fix them and run again.", exc.problems)
    except FunopsError as exc:
        fail(str(exc))
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
    if doc.summary.nodes_unreachable:
        raise typer.Exit(EXIT_UNREACHABLE)
    raise typer.Exit(EXIT_CHANGES if doc.has_changes() else EXIT_OK)


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
    from ..errors import InputError

    project = _load(repo, revision, inventory)
    if node not in project.nodes:
        fail(f"unknown node {node!r}; known: {', '.join(sorted(project.nodes))}")
    try:
        desired = compile_project(project).nodes[node]
    except InputError as exc:
        fail(f"{len(exc.problems)} problem(s) found; fix them and run again.", exc.problems)
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
