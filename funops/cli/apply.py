"""`funops apply`: plan, confirm, then converge the nodes in health-gated batches."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .options import (
    AutoApproveOpt,
    DiffContextOpt,
    InventoryOpt,
    MetricsPushOpt,
    MetricsTextfileOpt,
    NodeOpt,
    NoDiffOpt,
    ParallelOpt,
    RepoOpt,
    RevisionOpt,
    SkipUnreachableOpt,
    TextJsonOpt,
    exports_metrics,
    load_compiled,
    show_plan,
)
from .output import Output, fail, reported
from .targeting import AppOpt, app_intent

if TYPE_CHECKING:
    from ..plan.saved import SavedPlan


@exports_metrics("apply")
def apply(
    plan_file: Annotated[
        Path | None, typer.Argument(help="A plan saved by `funops plan --out`: apply exactly that.")
    ] = None,
    repo: RepoOpt = Path("."),
    revision: RevisionOpt = None,
    inventory: InventoryOpt = None,
    node: NodeOpt = None,
    app: AppOpt = None,
    output: TextJsonOpt = Output.text,
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
    metrics_push: MetricsPushOpt = None,
    metrics_textfile: MetricsTextfileOpt = None,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key", help="With a plan file: the key that opens its sealed secrets (else $FUNOPS_PLAN_KEY)."
        ),
    ] = None,
) -> None:
    """Converge the nodes: plan, confirm, then apply in health-gated batches.
    Exit 0: done; 1: error before any change; 3: some nodes failed or the rollout halted; 4: unreachable."""
    from ..apply import journal
    from ..cache import record
    from ..plan.diffs import DiffOptions
    from ..plan.planner import make_plan
    from ..release.rollback import refuse_rolled_back
    from ..transports import Connections
    from .converge import confirm_and_run

    saved = None
    if plan_file is not None:
        from ..plan.saved import read_saved_plan

        with reported():
            saved = read_saved_plan(plan_file)
            loaded = saved.revision_to_load(revision)  # refuses a --revision other than the plan's
            if saved.self_contained:
                if resume:
                    fail("--resume continues the last apply from the repo; it does not go with a plan file")
                _apply_saved(
                    saved, repo, output, auto_approve, parallel, skip_unreachable, allow_dirty, force, key
                )
            revision, node = loaded, saved.targets
    project, compiled = load_compiled(repo, revision, inventory)
    if project.revision.commit and project.revision.dirty and not allow_dirty and not sys.stdin.isatty():
        fail(
            f"the working tree has uncommitted changes ({project.revision.describe()}): without a "
            "terminal, apply deploys commits only. Commit them, use --revision, or pass --allow-dirty."
        )
    if resume:
        with reported():
            node = journal.resume_targets(journal.journal_path(project.root, project.settings.journal))
    intent = app_intent(project, app)
    connections = Connections(project.nodes, project.settings, project.root)
    try:
        with reported():
            # The text plan a person confirms shows each file's diff; JSON events carry none.
            shown = output is Output.text and not no_diff
            result_plan = make_plan(
                project, node, record.connect(project, connections), intent,
                diff=DiffOptions(context=diff_context) if shown else None, compiled=compiled,
            )  # fmt: skip
            if saved is None:
                record.noop(project, result_plan, output is Output.text)
            if saved is not None:
                saved.check_still_valid(result_plan, project.settings.saved_plan_max_age_seconds)
        show_plan(result_plan.doc, output, for_apply=True)
        if not force:
            with reported():
                refuse_rolled_back(result_plan)
        code = confirm_and_run(
            result_plan, connections, output,
            auto_approve=auto_approve, parallel=parallel, skip_unreachable=skip_unreachable,
        )  # fmt: skip
        raise typer.Exit(code)
    finally:
        connections.close()


def _apply_saved(
    saved: SavedPlan,
    repo: Path,
    output: Output,
    auto_approve: bool,
    parallel: int | None,
    skip_unreachable: bool,
    allow_dirty: bool,
    force: bool,
    key: Path | None,
) -> None:
    """Run a self-contained saved plan: its program, on the nodes it names, without the repo (`repo`
    only roots the inventory's relative credential paths and the journal)."""
    from ..plan.carry import connection
    from ..release.rollback import rolled_back_error
    from ..transports import Connections
    from .converge import confirm_and_run

    doc, program = saved.doc, saved.doc.program
    assert program is not None
    if doc.revision.dirty and not allow_dirty and not sys.stdin.isatty():
        fail(
            f"{saved.path} was made from uncommitted changes: without a terminal, apply deploys commits "
            "only. Plan from a commit, or pass --allow-dirty."
        )
    settings, nodes = connection(program)
    connections = Connections(nodes, settings, repo.resolve())
    try:
        with reported():
            plan = saved.plan(repo.resolve(), key, connections)
            if program.rolled_back and not force:
                raise rolled_back_error(doc.revision.commit or "", [(a, r) for a, r in program.rolled_back])
        show_plan(doc, output, for_apply=True)
        code = confirm_and_run(
            plan, connections, output,
            auto_approve=auto_approve, parallel=parallel, skip_unreachable=skip_unreachable,
        )  # fmt: skip
        raise typer.Exit(code)
    finally:
        connections.close()
