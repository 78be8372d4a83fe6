"""`funops restart APP` on the local transport: the plan it runs and its refusals (the restarts
themselves, drained and health-gated on real nodes: tests/lab/test_day_two.py)."""

from __future__ import annotations

from pathlib import Path

from funops.apply import journal

from .test_plan import funops


def test_restart_runs_the_apps_restart_through_the_batches_and_journals_it(example: Path) -> None:
    refused = funops("restart", "-C", str(example), "web", "--auto-approve")
    assert (
        refused.returncode == 1
        and "changes pending" in refused.stderr
        and "apply --app web" in refused.stderr
    )
    assert funops("apply", "-C", str(example), "--auto-approve", "--allow-dirty").returncode == 0
    done = funops("restart", "-C", str(example), "web", "--auto-approve", "--node", "node[23]")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Restart web in 2 batch(es): node2 | node3" in done.stdout  # web's strategy: one at a time
    assert "restart unit:web.service" in done.stdout
    last = journal.entries(example / ".funops" / "journal.jsonl")[-1]
    assert last["trigger"] == "restart web" and set(last["nodes"]) == {"node2", "node3"}
    assert all(o["status"] == "succeeded" for o in last["nodes"].values())
    assert funops("plan", "-C", str(example)).returncode == 0  # nothing left owed


def test_restart_refuses_what_it_cannot_restart(example: Path) -> None:
    done = funops("restart", "-C", str(example), "wbe", "--auto-approve")
    assert done.returncode == 1 and "did you mean 'web'" in done.stderr
    for app, kind in (("legacy", "proxy"), ("report", "job")):
        done = funops("restart", "-C", str(example), app, "--auto-approve")
        assert done.returncode == 1 and f"is a {kind}" in done.stderr, done.stderr
    done = funops("restart", "-C", str(example), "web")  # no terminal, no --auto-approve
    assert done.returncode == 1
    assert not (example / ".funops" / "journal.jsonl").exists()
