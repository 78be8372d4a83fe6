"""Issue 29, the rest: a saved plan is self-contained even when its rollout drains ingress endpoints,
and its auto-rollback needs no repo either. The bundled example over ssh: web (on every node, routed
by the edge node's ingress) rolls batch by batch; the plan is saved, the repo's manifests and
templates change and go, and `apply FILE` runs the planned tasks and the planned drain steps; a node
changed since the plan refuses it; a failing health check rolls back from the nodes' records."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from funops.node import wire
from lab import Lab

from ..conftest import apply_job_keys
from .fleet import FUNOPS, apply, edit_yaml, events, funops, http, reset
from .saved import applied_example
from .test_releases import SITE, commit, git, set_web, web_files
from .test_saved_plan import apply_file, planned_task_names


@pytest.fixture(scope="module")
def repo(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reset(lab)
    yield applied_example(lab, tmp_path_factory.mktemp("saved-drains") / "repo")
    reset(lab)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return apply_job_keys(tmp_path_factory.mktemp("keys"))


def save(repo: Path, saved: Path, cert: Path) -> dict:
    done = funops(repo, "plan", "--out", str(saved), "--seal-to", str(cert))
    assert done.returncode == 2, done.stderr
    return json.loads(saved.read_text())["program"]


def without_repo(repo: Path, where: Path) -> Path:
    """The repo changes its manifests and templates after the plan, then loses both; apply runs
    from another directory (the CI job that holds the artifact)."""
    set_web(repo, "9")
    version = repo / "templates" / "web" / "version.json.j2"
    version.write_text(version.read_text() + "\n")
    commit(repo, "web 9, a template edited")
    shutil.rmtree(repo / "manifests")
    shutil.rmtree(repo / "templates")
    where.mkdir()
    return where


def show(saved: Path) -> str:
    """`funops show FILE`: reads nothing but the file (exit 2: changes pending)."""
    done = subprocess.run([*FUNOPS, "show", str(saved)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"})  # fmt: skip
    assert done.returncode == 2, done.stderr
    return done.stdout


def site_sha(lab: Lab) -> str:
    return hashlib.sha256(lab.exec(lab.nodes[0], f"cat {SITE}").stdout.encode()).hexdigest()


def test_apply_file_runs_the_planned_drain_steps_without_the_repo(
    lab: Lab, repo: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    set_web(repo, "2")
    planned_at = commit(repo, "web 2")
    saved = tmp_path / "plan.json"
    program = save(repo, saved, keys[0])
    assert program["needsRepo"] == []
    drains = program["drains"]
    assert drains["ingress"] == [lab.nodes[0].name]
    # per batch the web endpoint of its node is drained, then put back
    drained = [{(a, n) for a, n in s["down"]} for s in drains["steps"] if s["step"] == "drain"]
    assert [("web", n.name) in d for n, d in zip(lab.nodes, drained, strict=True)] == [True] * 3
    shown = show(saved)
    assert "batch 1 drain: down web@node1" in shown, shown
    planned = planned_task_names(program, keys[1])
    files = {f["sha256"] for f in drains["files"]}
    for f in drains["files"]:  # typed tasks, whose content is what the sha256 says
        task = wire.decode(f["task"])
        assert task.path == SITE and hashlib.sha256(task.content).hexdigest() == f["sha256"]

    elsewhere = without_repo(repo, tmp_path / "elsewhere")
    done = apply_file(saved, elsewhere, keys[1])
    assert done.returncode == 0, done.stderr
    entry = json.loads((elsewhere / ".funops" / "journal.jsonl").read_text().splitlines()[-1])
    ran = {name: [t["name"] for t in node["tasks"]] for name, node in entry["nodes"].items()}
    assert ran == planned  # exactly the planned tasks
    steps = [e for e in events(done.stdout) if e["event"] == "drain"]
    assert steps and all(e["ok"] for e in steps), steps
    # one reload may put a batch back and drain the next: "restore web@node1; drain web@node2"
    parts = [part for e in steps for part in e["what"].split("; ")]
    assert sum(part.startswith("drain web@") for part in parts) == 3  # each batch drained its node
    assert sum(part.startswith("restore web@") for part in parts) == 3  # and put it back
    assert [e["event"] for e in events(done.stdout)].count("drained") == 3  # waited for its requests
    assert site_sha(lab) in files  # the site nginx serves is one the plan holds
    assert lab.exec(lab.nodes[0], f"grep -c ' down;' {SITE} || true").stdout.strip() == "0"  # all back
    for node in lab.nodes:
        assert "web 2 on" in http(f"http://{node.address}:8080/")[1]
    git(repo, "reset", "-q", "--hard", planned_at)  # the repo as the nodes now are


def test_an_ingress_node_changed_since_the_saved_plan_refuses_it(
    lab: Lab, repo: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    set_web(repo, "3")
    commit(repo, "web 3")
    saved = tmp_path / "plan.json"
    assert save(repo, saved, keys[0])["drains"] is not None
    lab.exec(lab.nodes[0], f"echo '# by hand' >> {SITE}")
    before = web_files(lab)
    done = apply_file(saved, tmp_path, keys[1])
    assert done.returncode == 1
    assert f"{lab.nodes[0].name} changed since the plan was made" in done.stderr
    assert web_files(lab) == before  # nothing was written anywhere
    code, _, err = apply(repo)  # from the repo: web 3, the hand edit overwritten
    assert code == 0, err


def test_a_failing_health_check_rolls_back_without_the_repo(
    lab: Lab, repo: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    before = web_files(lab)
    set_web(repo, "4", autoRollback=True)

    def failing(docs: list[dict]) -> None:
        docs[0]["spec"]["healthCheck"] = {"type": "http", "path": "/missing", "interval": 0.5, "retries": 3}

    edit_yaml(repo / "manifests" / "web.yaml", failing)
    commit(repo, "web 4: its health check fails")
    saved = tmp_path / "plan.json"
    program = save(repo, saved, keys[0])
    assert program["needsRepo"] == [] and program["rollback"]["web"]["to"] is not None
    shown = show(saved)
    assert "on a halt: auto-rollback of web" in shown, shown

    done = apply_file(saved, without_repo(repo, tmp_path / "elsewhere"), keys[1])
    assert done.returncode == 3, done.stderr
    evs = events(done.stdout)
    auto = next(e for e in evs if e["event"] == "auto-rollback")
    assert auto["app"] == "web" and auto["nodes"] == [lab.nodes[0].name]
    assert auto["to"] == program["rollback"]["web"]["to"]
    dones = [e for e in evs if e["event"] == "done"]
    assert dones[0]["halted"] is True
    assert dones[1]["outcomes"][lab.nodes[0].name] == "succeeded"  # through its health gate
    assert web_files(lab) == before  # web 3 everywhere, the site as it was
    assert "web 3 on" in http(f"http://{lab.nodes[0].address}:8080/")[1]
