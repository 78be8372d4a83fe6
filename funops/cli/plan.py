"""`funops plan`: what apply would change on every node."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .options import (
    DiffContextOpt,
    InventoryOpt,
    NodeOpt,
    NoDiffOpt,
    OutputOpt,
    RepoOpt,
    RevisionOpt,
    SkipUnreachableOpt,
    load_compiled,
    show_plan,
)
from .output import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_UNREACHABLE,
    Output,
    console,
    fail,
    reported,
    working,
)
from .targeting import AppOpt, app_intent


def plan(
    repo: RepoOpt = Path("."),
    revision: RevisionOpt = None,
    inventory: InventoryOpt = None,
    node: NodeOpt = None,
    app: AppOpt = None,
    output: OutputOpt = Output.text,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also save the plan, with what apply runs, as JSON here.")
    ] = None,
    seal_to: Annotated[
        Path | None,
        typer.Option(
            "--seal-to",
            help="With --out: seal the plan's secrets to this certificate (PEM): the apply job's.",
        ),
    ] = None,
    skip_unreachable: SkipUnreachableOpt = False,
    diff_context: DiffContextOpt = 3,
    no_diff: NoDiffOpt = False,
) -> None:
    """Show what apply would change on every node, with a unified diff of every changed file.
    Exit 0: nothing to do; 2: changes pending; 1: error or an unreachable node; 4: unreachable skipped."""
    from ..cache import record
    from ..plan.diffs import DiffOptions
    from ..plan.planner import make_plan
    from ..release.rollback import rollback_paths, rolled_back_hits

    if seal_to is not None and out is None:
        fail("--seal-to goes with --out (it seals the saved plan's secrets)")
    project, compiled = load_compiled(repo, revision, inventory)
    intent = app_intent(project, app)
    with reported(), working("Asking the nodes for their state…"):
        diff = None if no_diff else DiffOptions(context=diff_context)
        connect = record.connect(project)
        result = make_plan(project, node, connect, intent=intent, diff=diff, compiled=compiled)
    doc = result.doc
    record.noop(project, result, output is Output.text and out is None)
    rolled_back = rolled_back_hits(result)
    if out:
        from ..plan.carry import program_doc
        from ..plan.seal import read_certificate

        with reported():
            saved = doc.model_copy(
                update={
                    "program": program_doc(
                        result, seal_to and read_certificate(seal_to), rolled_back, rollback_paths(result)
                    )
                }
            )
        try:
            out.write_text(saved.to_json(), encoding="utf-8")
        except OSError as exc:
            fail(f"--out {out}: cannot write the plan there: {exc.strerror or exc}")
    show_plan(doc, output)
    for app_name, rid in rolled_back:
        console(stderr=True).print(
            f"[yellow]warning:[/] this revision of {app_name} was rolled back ({rid}); apply will refuse it "
            "without --force"
        )
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


def show(
    plan_file: Annotated[Path, typer.Argument(help="A plan saved by `funops plan --out`.")],
    output: OutputOpt = Output.text,
) -> None:
    """Print a saved plan (as `plan` printed it) and what `apply FILE` will run on each node; reads
    nothing but the file. Exit 0: nothing to do; 2: changes pending; 1: not a saved plan."""
    from ..plan.saved import read_saved_plan

    with reported():
        saved = read_saved_plan(plan_file)
    doc = saved.doc
    if output is Output.json:
        typer.echo(doc.to_json(), nl=False)
    else:
        show_plan(doc.model_copy(update={"program": None}), output)
        if doc.program is not None:
            from ..plan.show import program_lines

            with reported():
                lines = program_lines(doc.program)
            if output is Output.markdown:
                typer.echo("\n### What apply runs\n\n```\n" + "\n".join(lines) + "\n```\n")
            else:
                from rich.markup import escape

                con = console()
                con.print("[bold]What apply runs[/]")
                for line in lines:
                    con.print(f"  {escape(line)}")
    raise typer.Exit(EXIT_CHANGES if doc.has_changes() else EXIT_OK)
