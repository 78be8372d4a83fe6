"""Issue 31, parts 2 and 4, on real nodes: `--node` by labels and `--app`, `exec` on an app's nodes,
`lock status|release`, and every run listed by `audit`."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab
from lab.load import Load, Target

from .fleet import FUNOPS, apply, make_repo, reset


def run(repo: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """funops with -C before the command: `exec` takes everything after `--` as the command."""
    return subprocess.run([*FUNOPS, "-C", str(repo), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "NO_COLOR": "1"})  # fmt: skip


@pytest.fixture(scope="module")
def repo(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reset(lab)
    repo = make_repo(lab, tmp_path_factory.mktemp("daytwo") / "repo")
    code, evs, err = apply(repo)
    assert code == 0, err + json.dumps(evs[-1:])
    yield repo
    reset(lab)


def test_targeting_by_labels_and_one_app(lab: Lab, repo: Path) -> None:
    edge = [n.name for n in lab.nodes if n.index == 1]
    done = run(repo, "plan", "--node", "role=edge", "-o", "json")
    assert done.returncode == 0, done.stderr  # converged: nothing to do
    assert json.loads(done.stdout)["targets"] == edge
    # A hand edit of web's file on one node: `--app web` sees it, `--app docs` does not.
    node = lab.nodes[-1].name
    hand = run(repo, "exec", "--node", node, "--", "sh", "-c", "echo tampered > /srv/web/index.html")
    assert hand.returncode == 0, hand.stderr
    web = run(repo, "plan", "--app", "web", "--node", "node*", "-o", "json")
    assert web.returncode == 2 and "warning: --app" in web.stderr, web.stderr
    changed = {n["name"]: [c["id"] for c in n["changes"]] for n in json.loads(web.stdout)["nodes"]}
    assert changed[node] == ["file:/srv/web/index.html"]
    assert run(repo, "plan", "--app", "docs").returncode == 0
    done = run(repo, "apply", "--app", "web", "--auto-approve", "--allow-dirty")
    assert done.returncode == 0, done.stdout + done.stderr
    assert run(repo, "plan").returncode == 0


def test_exec_runs_on_the_apps_nodes_with_output_and_exit_codes(lab: Lab, repo: Path) -> None:
    done = run(
        repo, "exec", "web", "--", "sh", "-c", 'echo "up on $(hostname)"; systemctl is-active web.service'
    )
    assert done.returncode == 0, done.stderr
    for n in lab.nodes:
        assert f"{n.name}: active" in done.stdout.splitlines()
        assert f"{n.name}: exit 0" in done.stderr
    # api runs on the app nodes only; a failing command fails there, with its own exit code
    done = run(repo, "exec", "api", "-o", "json", "--", "sh", "-c", 'test "$(hostname)" != x && exit 7')
    assert done.returncode == 3, done.stderr
    doc = json.loads(done.stdout)
    assert {n["node"] for n in doc["nodes"]} <= {n.name for n in lab.nodes if n.index != 1}
    assert {n["exitCode"] for n in doc["nodes"]} == {7}
    # the argv is values: a `;` in an argument is no second command
    done = run(repo, "exec", "--node", "node1", "--", "echo", "a;", "touch", "/tmp/pwned")
    assert done.stdout.strip() == "node1: a; touch /tmp/pwned"
    assert run(repo, "exec", "--node", "node1", "--", "test", "!", "-e", "/tmp/pwned").returncode == 0


def test_lock_status_shows_a_held_lock_and_release_frees_it(lab: Lab, repo: Path) -> None:
    node = lab.nodes[0].name
    token = "feedc0de" * 4
    info = json.dumps({"holder": "ci@elsewhere", "pid": 99, "started": time.time() - 60, "token": token})
    plant = (
        f"d=/var/lib/funops/lock; mkdir -p $d.new && printf %s '{info}' > $d.new/info && "
        f"printf %s {token} > $d.new/token && echo $(( $(date +%s) + 600 )) > $d.new/expires && "
        "mv -T $d.new $d"
    )
    assert run(repo, "exec", "--node", node, "--", "sh", "-c", plant).returncode == 0
    status = run(repo, "lock", "status", "-o", "json")
    assert status.returncode == 0, status.stderr
    by = {n["node"]: n for n in json.loads(status.stdout)["nodes"]}
    assert by[node]["fresh"] and by[node]["holder"] == "ci@elsewhere" and by[node]["expiresInSeconds"] > 500
    assert not any(n["locked"] for name, n in by.items() if name != node)
    # a locked node refuses an apply, and a fresh lock is released only with --force
    assert "locked by another apply" in run(repo, "restart", "web", "--auto-approve").stderr
    refused = run(repo, "lock", "release", node)
    assert refused.returncode == 1 and "--force" in refused.stderr
    done = run(repo, "lock", "release", node, "--force")
    assert done.returncode == 0, done.stderr
    after = json.loads(run(repo, "lock", "status", "-o", "json", "--node", node).stdout)
    assert after["nodes"][0]["locked"] is False


def started(repo: Path, app: str) -> dict[str, str]:
    """Each node's start time of the app's unit (systemd's monotonic clock, microseconds)."""
    done = run(repo, "exec", app, "--", "systemctl", "show", "-p", "ActiveEnterTimestampMonotonic", "--value",
               f"{app}.service")  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(line.split(": ", 1) for line in done.stdout.splitlines())


def test_restart_restarts_each_node_rolling_without_failing_requests(lab: Lab, repo: Path) -> None:
    before = started(repo, "web")
    assert set(before) == {n.name for n in lab.nodes}
    target = Target(address=lab.node("node1").address, host="demo.funops.test", get=("/",))
    load = Load(target, threads=2, max_seconds=240)
    with load.running() as report:
        done = run(repo, "restart", "web", "--auto-approve", "-o", "json")
    assert done.returncode == 0, done.stderr + done.stdout[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(next(e for e in events if e["event"] == "start")["batches"]) == len(lab.nodes)
    after = started(repo, "web")
    assert all(after[n] != before[n] for n in before), (before, after)
    assert report.served > 0 and report.failures == [], report.line()
    assert run(repo, "plan").returncode == 0  # nothing owed, nothing changed


def test_details_shows_every_app_on_every_node(lab: Lab, repo: Path) -> None:
    done = run(repo, "details", "-o", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["formatVersion"] == 1
    rows = {(r["app"], r["node"]): r for r in doc["apps"]}
    for n in lab.nodes:
        web = rows[("web", n.name)]
        assert web["state"] == "active" and web["version"] == web["wanted"] and web["uptimeSeconds"] >= 0
    api = [r for r in doc["apps"] if r["app"] == "api"]
    assert api and all(r["state"] == "running" for r in api)
    assert sum(r["share"] for r in api) == pytest.approx(100, abs=1)
    text = run(repo, "details", "--node", "role=edge")
    assert "web" in text.stdout and "node2" not in text.stdout


def test_audit_lists_these_runs(repo: Path) -> None:
    done = run(repo, "audit", "-o", "json", "--since", "1h")
    assert done.returncode == 0, done.stderr
    whats = [e["what"] for e in json.loads(done.stdout)["entries"]]
    assert any(w.startswith("exec web -- sh -c") for w in whats)
    assert "lock release --force" in whats and "restart web" in whats
    assert any(w.startswith("deploy of") for w in whats)
