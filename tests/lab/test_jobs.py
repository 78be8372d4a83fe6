"""A scheduled job and its directory on real nodes (issue 12): the timer runs the job as its own user
into the directory funops made; the last run is a live fact; a reapply does nothing; removing the
job stops its timer and removes its units, and keeps a directory that holds data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab

from .fleet import apply, funops, make_repo, reset


@pytest.fixture(scope="module")
def repo(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reset(lab)
    yield make_repo(lab, tmp_path_factory.mktemp("jobs") / "repo")
    reset(lab)


def test_a_job_runs_on_its_timer_as_its_user_and_goes_cleanly(lab: Lab, repo: Path) -> None:
    # A reused lab keeps what an interrupted earlier run left (reset forgets funops's state, not the
    # files; the data directory stays by design): start from a node without the job.
    lab.exec(
        "node1",
        "systemctl disable --now report.timer 2>/dev/null; rm -f /etc/systemd/system/report.*; "
        "systemctl daemon-reload; rm -rf /var/lib/report; userdel report 2>/dev/null || true",
    )
    code, evs, err = apply(repo)
    assert code == 0, err
    ran = [e["task"] for e in evs if e["event"] == "task" and e["node"] == "node1"]
    assert (
        ran.index("ensure user report")
        < ran.index("ensure directory:/var/lib/report")
        < ran.index("write file:/etc/systemd/system/report.service")
    )
    out = lab.exec("node1", "systemctl is-active report.timer; systemctl is-enabled report.timer; "
                   "stat -c '%U %G %a' /var/lib/report; systemctl start report.service; "
                   "stat -c '%U' /var/lib/report/last-run").stdout.split("\n")  # fmt: skip
    assert out[:4] == ["active", "enabled", "report report 750", "report"]

    doc = json.loads(funops(repo, "plan", "-o", "json").stdout)
    job = doc["nodes"][0]["facts"]["jobs"]["report"]
    assert job["lastRun"]["result"] == "success" and job["lastRun"]["exitStatus"] == "0" and job["next"]
    assert doc["summary"]["create"] + doc["summary"]["update"] + doc["summary"]["replace"] == 0

    code, evs, err = apply(repo)
    assert code == 0 and not [e for e in evs if e["event"] == "task"], err  # nothing to do, nothing run

    (repo / "manifests" / "report.yaml").unlink()
    code, evs, err = apply(repo)
    assert code == 0, err
    out = lab.exec("node1", "systemctl is-active report.timer; ls /etc/systemd/system/report.* "
                   "2>/dev/null | wc -l; ls /var/lib/report").stdout.split("\n")  # fmt: skip
    assert out[:3] == ["inactive", "0", "last-run"]  # a directory holding data stays
