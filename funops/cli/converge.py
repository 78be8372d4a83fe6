"""The part `apply`, `rollback` and `drift --fix` share: confirm, roll out, journal, auto-rollback,
and the exit code."""

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


def bad_revision_hits(plan: Plan) -> list[tuple[str, str]]:
    """(app, release id) for each app the plan would deploy at a commit that was rolled back."""
    from ..plan.schedule import releasing_apps
    from ..release.history import bad_revisions, node_states

    rev = plan.project.revision
    if not rev.commit or rev.dirty or plan.intent.kind != "deploy":
        return []
    bad = bad_revisions(node_states(plan.gathered))
    return sorted(
        (app, bad[app][rev.commit]) for app in releasing_apps(plan) if rev.commit in bad.get(app, {})
    )


def refuse_bad_revision(plan: Plan, force: bool) -> None:
    """A revision that was rolled back stays rolled back: re-running CI on it (or a cron fix) must not
    bring it back by itself (argoproj/argo-cd#9570). --force deploys it anyway."""
    hits = [] if force else bad_revision_hits(plan)
    if hits:
        which = ", ".join(f"{app} (release {rid} was rolled back)" for app, rid in hits)
        fail(
            f"revision {plan.project.revision.commit[:12]} was rolled back for {which}: refusing to deploy "
            "it again. Commit a fix, or pass --force to deploy this revision anyway."
        )


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

    settings = plan.project.settings
    try:
        result = execute(plan, connections, progress.emit, parallel, skip_unreachable)
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
    """A halted rollout returns the nodes it updated to the previous release of every app whose
    strategy says autoRollback — through the same batches and health gates (a revert that skips
    them caused outages: hashicorp/nomad#14200). The exit code still reports the failure."""
    from ..errors import FunopsError
    from ..release.restore import auto_rollback_plan
    from ..transports import TransportError

    code = EXIT_PARTIAL
    for app, failed in sorted(result.release_ids.items()):
        if not plan.strategy_of(app).auto_rollback:
            continue
        nodes = sorted(
            name
            for name, node in result.releases.items()
            if any(r.app == app for r in node.records)
            and result.outcomes.get(name) is not None
            and result.outcomes[name].status in ("succeeded", "failed")
        )
        if not nodes:
            continue
        try:
            back = auto_rollback_plan(plan.project, app, failed, nodes, connections)
        except (FunopsError, TransportError) as exc:  # nodes were changed: report, exit 3, go on
            console(stderr=True).print(f"[red]error:[/] auto-rollback of {app}: {escape(str(exc))}")
            continue
        target = back.intent.restores[app] if back else None
        progress.emit({"event": "auto-rollback", "app": app, "from": failed, "to": target, "nodes": nodes})
        if back is not None:
            _, rolled = run_rollout(back, connections, progress, parallel, after_changes=True)
            code = worst(code, rolled)
    return code


def journal_path(plan: Plan) -> Path:
    from ..apply import journal

    return journal.journal_path(plan.project.root, plan.project.settings.journal)
