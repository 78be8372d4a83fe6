"""The `funops` command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from .options import (
    AutoApproveOpt,
    DiffContextOpt,
    InventoryOpt,
    NodeOpt,
    NoDiffOpt,
    OutputOpt,
    ParallelOpt,
    RepoOpt,
    RevisionOpt,
    SkipUnreachableOpt,
    load,
    show_plan,
)
from .output import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, EXIT_UNREACHABLE, Output, console, fail, reported

if TYPE_CHECKING:
    from ..load.project import Project

# Click's usage errors (unknown option, bad --output value) exit 2, which the contract keeps for
# "changes pending" (DESIGN §5): they are errors before anything was done, exit 1. (typer vendors
# click; BadParameter is its one public usage error, UsageError is its base.)
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


app = typer.Typer(
    cls=_Commands,
    name="funops",
    help="GitOps for plain servers: plan and apply nginx, systemd and docker from a git repo.",
    no_args_is_help=True,
    add_completion=True,  # funops --install-completion [bash|zsh|fish|powershell]
    pretty_exceptions_enable=False,
)


@app.command()
def validate(repo: RepoOpt = Path("."), revision: RevisionOpt = None, inventory: InventoryOpt = None) -> None:
    """Check the repo's files (schema and cross-references); touches no node."""
    from ..compile.compiler import compile_project

    project = load(repo, revision, inventory)
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
    diff_context: DiffContextOpt = 3,
    no_diff: NoDiffOpt = False,
) -> None:
    """Show what apply would change on every node, with a unified diff of every changed file.
    Exit 0: nothing to do; 2: changes pending; 1: error or an unreachable node; 4: unreachable skipped."""
    from ..plan.diffs import DiffOptions
    from ..plan.planner import make_plan

    project = load(repo, revision, inventory)
    with reported():
        result = make_plan(project, node, diff=None if no_diff else DiffOptions(context=diff_context))
    doc = result.doc
    if out:
        try:
            out.write_text(doc.to_json(), encoding="utf-8")
        except OSError as exc:
            fail(f"--out {out}: cannot write the plan there: {exc.strerror or exc}")
    show_plan(doc, output)
    from .converge import bad_revision_hits

    for app_name, rid in bad_revision_hits(result):
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


@app.command()
def apply(
    plan_file: Annotated[
        Path | None, typer.Argument(help="A plan saved by `funops plan --out`: apply exactly that.")
    ] = None,
    repo: RepoOpt = Path("."),
    revision: RevisionOpt = None,
    inventory: InventoryOpt = None,
    node: NodeOpt = None,
    output: OutputOpt = Output.text,
    auto_approve: AutoApproveOpt = False,
    parallel: ParallelOpt = None,
    skip_unreachable: SkipUnreachableOpt = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the last halted apply.")] = False,
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="Apply uncommitted changes without a terminal (CI).")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Deploy a revision even though it was rolled back.")
    ] = False,
    diff_context: DiffContextOpt = 3,
    no_diff: NoDiffOpt = False,
) -> None:
    """Converge the nodes: plan, confirm, then apply in health-gated batches.
    Exit 0: done; 1: error before any change; 3: some nodes failed or the rollout halted; 4: unreachable."""
    import sys

    from ..apply import journal
    from ..plan.diffs import DiffOptions
    from ..plan.planner import make_plan
    from ..transports import Connections
    from .converge import confirm_and_run, refuse_bad_revision

    if output is Output.markdown:
        fail("apply prints text or json; use `funops plan -o markdown` for a report")
    saved = None
    if plan_file is not None:
        from ..plan.saved import read_saved_plan

        with reported():
            saved = read_saved_plan(plan_file)
            revision, node = saved.revision_to_load(revision), saved.targets
    project = load(repo, revision, inventory)
    if project.revision.commit and project.revision.dirty and not allow_dirty and not sys.stdin.isatty():
        fail(
            f"the working tree has uncommitted changes ({project.revision.describe()}): without a "
            "terminal, apply deploys commits only. Commit them, use --revision, or pass --allow-dirty."
        )
    journal_file = journal.journal_path(project.root, project.settings.journal)
    if resume:
        node = _resume_targets(journal.entries(journal_file))
    connections = Connections(project.nodes, project.settings, project.root)
    try:
        with reported():
            # The text plan a person confirms shows each file's diff; JSON events carry none.
            shown = output is Output.text and not no_diff
            result_plan = make_plan(
                project, node, connections, diff=DiffOptions(context=diff_context) if shown else None
            )
            if saved is not None:
                saved.check_still_valid(result_plan, project.settings.saved_plan_max_age_seconds)
        show_plan(result_plan.doc, output, for_apply=True)
        refuse_bad_revision(result_plan, force)
        code = confirm_and_run(
            result_plan, connections, output,
            auto_approve=auto_approve, parallel=parallel, skip_unreachable=skip_unreachable,
        )  # fmt: skip
        raise typer.Exit(code)
    finally:
        connections.close()


def _resume_targets(entries: list[dict]) -> list[str]:
    last = next(
        (e for e in reversed(entries) if e.get("event") == "apply" and e.get("kind", "deploy") == "deploy"),
        None,
    )
    if last is None:
        fail("nothing to resume: the journal has no apply")
    targets = sorted(
        n for n, o in last["nodes"].items() if o["status"] in ("failed", "unreachable", "skipped")
    )
    if not targets:
        fail(f"nothing to resume: apply {last['id']} finished on every node")
    return targets


def _load_for_nodes(repo: Path, inventory: list[Path] | None) -> Project:
    """The repo for reaching its nodes: when the manifests no longer validate (the reason to roll
    back, sometimes), settings and inventory are enough."""
    from ..errors import InputError
    from ..load.loader import load_project

    inventory_files = [p.resolve() for p in inventory] if inventory else None
    try:
        return load_project(repo.resolve(), None, inventory_files)
    except InputError as exc:
        from rich.markup import escape

        console(stderr=True).print(
            f"[yellow]warning:[/] the repo does not validate ({len(exc.problems)} problem(s), "
            f"first: {escape(str(exc.problems[0]))}); using its settings and inventory only"
        )
    with reported():
        return load_project(repo.resolve(), None, inventory_files, manifests=False)


@app.command()
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
    output: OutputOpt = Output.text,
    auto_approve: AutoApproveOpt = False,
    parallel: ParallelOpt = None,
    skip_unreachable: SkipUnreachableOpt = False,
) -> None:
    """Return APP to an earlier release: plan first (printed like `plan`), then apply through the
    same batches and health gates as a deploy. The release rolled back from is marked, and its
    revision will not be deployed again without --force.
    Exit codes as apply; 1 when there is nothing to roll back to."""
    from ..gather.gatherer import refuse_unreadable_states
    from ..release.history import gather_states, node_states, releases
    from ..release.restore import current_release, is_release_ref, pick_target, restore_plan, revision_plan
    from ..transports import Connections
    from .converge import confirm_and_run

    if output is Output.markdown:
        fail("rollback prints text or json; the plan it prints is the same as `funops plan`'s")
    project = _load_for_nodes(repo, inventory)
    connections = Connections(project.nodes, project.settings, project.root)
    extra: list[Connections] = []
    try:
        with reported():
            gathered = gather_states(project, connections)
            refuse_unreadable_states(gathered, project.settings.state_dir)
            unreachable = sorted(n for n, g in gathered.items() if not g.reachable)
            if unreachable and not skip_unreachable:
                fail(
                    f"unreachable: {', '.join(unreachable)}: their records are needed to roll back "
                    "(pass --skip-unreachable to roll back the others)"
                )
            rels = releases(node_states(gathered), app_name)
            if to is not None and not is_release_ref(app_name, to):
                at = load(repo, to, inventory)
                extra.append(Connections(at.nodes, at.settings, at.root))
                current = current_release(rels, app_name) if rels else None
                result_plan = revision_plan(at, app_name, current, extra[0])
                what = f"{app_name} → its manifests at {at.revision.describe()}"
                conns = extra[0]
            else:
                current = current_release(rels, app_name)
                target = pick_target(rels, app_name, to)
                result_plan = restore_plan(project, app_name, target, current, gathered, connections)
                what = (
                    f"{app_name}: {current.id} ({', '.join(current.versions) or '-'}) → "
                    f"{target.id} ({', '.join(target.versions) or '-'}, revision "
                    f"{(target.revision.commit or '-')[:12]})"
                )
                conns = connections
        if output is Output.text:  # restored files' contents come from the nodes' artifact stores
            from ..plan.diffs import DiffOptions
            from ..plan.planner import attach_diffs

            attach_diffs(result_plan, conns, DiffOptions())
        console(stderr=output is Output.json).print(f"[bold]Rollback[/] {what}")
        show_plan(result_plan.doc, output, for_apply=True)
        code = confirm_and_run(
            result_plan, conns, output,
            auto_approve=auto_approve, parallel=parallel, skip_unreachable=skip_unreachable,
            question="Roll back?",
        )  # fmt: skip
        raise typer.Exit(code)
    finally:
        for c in [connections, *extra]:
            c.close()


@app.command()
def history(
    app_name: Annotated[str | None, typer.Argument(metavar="[APP]", help="Only this application.")] = None,
    repo: RepoOpt = Path("."),
    inventory: InventoryOpt = None,
    output: OutputOpt = Output.text,
) -> None:
    """Releases newest first, read from every node's records: revision, version, nodes, status,
    duration. Exit 0; 4 when some nodes were unreachable (their records are missing)."""
    from ..release.document import history_doc
    from ..release.history import gather_states, node_states, releases
    from ..release.show import print_history
    from ..transports import Connections

    if output is Output.markdown:
        fail("history prints text or json")
    project = _load_for_nodes(repo, inventory)
    connections = Connections(project.nodes, project.settings, project.root)
    try:
        with reported():
            gathered = gather_states(project, connections)
    finally:
        connections.close()
    unreachable = sorted(n for n, g in gathered.items() if not g.reachable)
    doc = history_doc(
        project.settings.project, app_name, releases(node_states(gathered), app_name), unreachable
    )
    if output is Output.json:
        typer.echo(doc.to_json(), nl=False)
    else:
        print_history(doc, console())
    raise typer.Exit(EXIT_UNREACHABLE if unreachable else EXIT_OK)


@app.command()
def render(
    node: Annotated[str, typer.Option("--node", "-n", help="The node whose files to render.")],
    repo: RepoOpt = Path("."),
    revision: RevisionOpt = None,
    inventory: InventoryOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the files under this directory.")] = None,
) -> None:
    """Render the files funops would write on NODE (secrets included: --out files are mode 0600), and
    the template each came from (bundled, or the repo's templates/)."""
    from rich.markup import escape

    from ..compile.compiler import compile_project
    from ..kinds import is_file_kind

    project = load(repo, revision, inventory)
    if node not in project.nodes:
        fail(f"unknown node {node!r}; known: {', '.join(sorted(project.nodes))}")
    with reported():
        desired = compile_project(project).nodes[node]
    con = console()
    for res in desired.resources:
        origin = f"  [dim]from {escape(res.template.describe())}[/]" if res.template else ""
        if not is_file_kind(res.kind) or res.content is None:
            detail = res.run_spec if res.run_spec is not None else dict(res.desired)
            con.print(f"[dim]{escape(res.id)}[/] {escape(str(detail))}{origin}")
            continue
        if out is None:
            con.print(
                f"[bold]{escape(res.id)}[/] mode {res.desired['mode']}"
                + (" [yellow](secret)[/]" if res.secret else "")
                + origin
            )
            continue
        target = out / res.name.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_private(target, res.content, 0o600 if res.secret else int(res.desired["mode"], 8))
        con.print(f"wrote {escape(str(target))}{origin}")


def _write_private(target: Path, data: bytes, mode: int) -> None:
    """Created 0600 from the start (a secret is never readable by others, not even for a moment),
    and only then given its mode; a symlink planted at `target` is not followed."""
    import os

    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an older file may have had a wider mode
        os.write(fd, data)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


@app.command()
def schema(
    what: Annotated[
        str, typer.Argument(help="manifest, inventory, settings, plan, drift or history")
    ] = "manifest",
) -> None:
    """Print a JSON Schema (for editors, CI checks of --output json)."""
    import json

    from ..schemas import schema_for

    try:
        typer.echo(json.dumps(schema_for(what), indent=2, sort_keys=True))
    except KeyError:
        fail(f"unknown schema {what!r}; choose manifest, inventory, settings, plan, drift or history")


@app.command()
def version() -> None:
    """Print funops's version."""
    from .. import __version__

    typer.echo(__version__)


from .drift import drift_app  # noqa: E402 (it reuses the option types above)
from .nodes import cordon, drain, uncordon  # noqa: E402

app.command()(cordon)
app.command()(uncordon)
app.command()(drain)

app.add_typer(drift_app, name="drift")


def run() -> None:
    app()
