"""The part `apply`, `rollback` and `drift --fix` share: confirm, roll out, journal, run the
auto-rollbacks release/ decides, and the exit code."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from .output import EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE, Output, console, fail, worst

if TYPE_CHECKING:
    from ..apply.rollout import RolloutResult
    from ..plan.planner import Plan
    from ..transports import Connections
    from .progress import Progress


def confirm_and_run(
    plan: Plan,
    connections: Connections,
    output: Output,
    *,
    auto_approve: bool,
    parallel: int | None,
    skip_unreachable: bool,
    question: str = "Apply these changes?",
) -> int:
    """Run a printed plan (after a yes, unless --auto-approve) and return the exit code."""
    con = console(stderr=output is Output.json)
    doc = plan.doc
    if not doc.has_changes() and not doc.summary.nodes_unreachable:
        con.print("[green]Nothing to do: every node is as declared.[/]")
        return EXIT_OK
    pulled = sorted(n.name for n in doc.nodes if (n.changes or n.owed) and plan.project.nodes[n.name].pull)
    if pulled:
        fail(
            f"{', '.join(pulled)}: in pull mode (the inventory's pull: section): they converge from what "
            "`funops publish` writes, a push would fight it. Publish instead (or leave them out: --node)."
        )
    if not auto_approve:
        if not sys.stdin.isatty():
            fail("refusing to change nodes without a terminal to confirm: pass --auto-approve (CI)")
        if not typer.confirm(question, default=False):
            con.print("Cancelled; nothing was changed.")
            return EXIT_OK
    from .progress import Progress

    progress = Progress(con, json_events=output is Output.json)
    result, code = run_rollout(plan, connections, progress, parallel, skip_unreachable)
    if result is not None and result.halted:
        code = worst(code, _auto_rollback(plan, result, connections, progress, parallel))
    return code


def run_rollout(
    plan: Plan,
    connections: Connections,
    progress: Progress,
    parallel: int | None = None,
    skip_unreachable: bool = False,
    trigger: str | None = None,
    after_changes: bool = False,
) -> tuple[RolloutResult | None, int]:
    """Execute the plan, journal it (with what triggered it, if not a plain apply), and say the exit
    code its outcomes give. `after_changes` (an auto-rollback): nodes were already changed, so a
    refusal is a partial failure (3), reported, never "nothing was done" (1)."""
    from ..apply import journal
    from ..apply.lock import LockHeld
    from ..apply.locking import PlanStale
    from ..apply.rollout import execute, journal_entry
    from ..observe.deploy import note as note_metrics

    settings = plan.project.settings
    try:
        result = execute(plan, connections, progress.emit, parallel, skip_unreachable)
        note_metrics(result)
    except (LockHeld, PlanStale) as exc:
        if isinstance(exc, LockHeld):
            why = (
                f"{exc}. Wait for it to finish, or remove the lock "
                f"({settings.state_dir}/lock on {exc.node}) if that apply is dead."
            )
        else:
            why = f"{exc}: refusing to run a stale plan. Plan again and review it."
        if after_changes:
            console(stderr=True).print(f"[red]error:[/] {escape(why)}")
            return None, EXIT_PARTIAL
        fail(f"{why} Nothing was changed.")
    statuses = {o.status for o in result.outcomes.values()}
    if result.halted or "failed" in statuses:
        code = EXIT_PARTIAL
    elif "unreachable" in statuses:
        code = EXIT_UNREACHABLE
    else:
        code = EXIT_OK
    entry = journal_entry(plan, result, code)
    if trigger:
        entry["trigger"] = trigger
    try:
        journal.append(journal_path(plan), entry)
    except OSError as exc:  # the nodes were (maybe) changed: never "nothing was done"
        console(stderr=True).print(
            f"[red]error:[/] cannot write the journal {escape(str(journal_path(plan)))}: "
            f"{escape(exc.strerror or str(exc))}; the rollout's outcome is not recorded there"
        )
        if any(o.status not in ("unchanged", "skipped") for o in result.outcomes.values()):
            code = worst(code, EXIT_PARTIAL)
    progress.summary(result, code)
    return result, code


def _auto_rollback(
    plan: Plan, result: RolloutResult, connections: Connections, progress: Progress, parallel: int | None
) -> int:
    """Run the auto-rollbacks release/ decides after a halted rollout; the exit code still reports
    the failure (3)."""
    from ..release.rollback import auto_rollbacks

    code = EXIT_PARTIAL
    for back in auto_rollbacks(plan, result.release_ids, result.changed, connections):
        if back.error is not None:
            console(stderr=True).print(f"[red]error:[/] auto-rollback of {back.app}: {escape(back.error)}")
            continue
        target = back.plan.intent.restores[back.app] if back.plan else None
        progress.emit({"event": "auto-rollback", "app": back.app, "from": back.failed, "to": target,
                       "nodes": back.nodes})  # fmt: skip
        if back.plan is not None:
            # A saved plan run without the repo drains the rollback's batches with the sites it
            # holds, as a rollback from the repo renders them from the repo (apply/drain.py).
            back.plan.program.drains = plan.program.drains
            _, rolled = run_rollout(back.plan, connections, progress, parallel, after_changes=True)
            code = worst(code, rolled)
    return code


def journal_path(plan: Plan) -> Path:
    from ..apply import journal

    return journal.journal_path(plan.project.root, plan.project.settings.journal)
