"""Issue 29: the plan is the program. A saved plan carries what apply runs; `apply FILE` runs exactly
that without the repo's manifests or templates, refuses a node changed since the plan, and the file
never holds a secret — not its value, not its digest (the bundled example on the local transport)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from funops.compile.compiler import compile_project
from funops.load.loader import load_project

from ..conftest import apply_job_keys


def funops(repo: Path, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "NO_COLOR": "1"} | ({"FUNOPS_PLAN_KEY": key} if key else {})
    return subprocess.run(
        [sys.executable, "-m", "funops", *args], cwd=repo,
        capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=repo, check=True,
                   capture_output=True)  # fmt: skip


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, str]:
    return apply_job_keys(tmp_path)


@pytest.fixture
def deployed(example: Path) -> Path:
    """The example as a git repo, applied once (from the repo, as today)."""
    git(example, "init", "-q")
    git(example, "add", "-A")
    git(example, "commit", "-qm", "example")
    done = funops(example, "apply", "--auto-approve")
    assert done.returncode == 0, done.stderr
    return example


def set_docs(repo: Path, version: str) -> str:
    """docs at `version`, committed; the commit."""
    path = repo / "manifests" / "docs.yaml"
    path.write_text(re.sub(r'version: "[0-9]+"', f'version: "{version}"', path.read_text(), count=1))
    git(repo, "commit", "-qam", f"docs {version}")
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()


def secret_needles(repo: Path) -> list[str]:
    """Every form a secret could take in the file: the values, the contents holding them (as text and
    base64) and their sha256."""
    desired = compile_project(load_project(repo))
    needles = [(repo / "secrets" / "api-token").read_text().strip()]
    key = (repo / "secrets" / "demo.funops.test.key").read_text()
    needles += [line for line in key.splitlines() if line and not line.startswith("-----")]
    for nd in desired.nodes.values():
        for res in nd.resources:
            if (res.secret or res.secret_keys) and res.content:
                needles += [hashlib.sha256(res.content).hexdigest(), base64.b64encode(res.content).decode()]
                needles.append(res.content.decode())
    assert len(needles) > 4
    return needles


def test_a_saved_plan_holds_no_secret_in_clear(
    deployed: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    applied = secret_needles(deployed)  # the secrets as the nodes hold them (their state records too)
    (deployed / "secrets" / "api-token").write_text("s3cr3t-rotated-token\n")  # the plan writes it
    git(deployed, "commit", "-qam", "rotate")
    for extra in ([], ["--seal-to", str(keys[0])]):
        out = tmp_path / "plan.json"
        assert funops(deployed, "plan", "--out", str(out), *extra).returncode == 2
        text = out.read_text()
        for needle in [*applied, *secret_needles(deployed)]:
            assert needle not in text
        program = json.loads(text)["program"]
        assert ("--seal-to" in extra) == bool(program["sealed"])
        assert any("not sealed" in why for why in program["needsRepo"]) == (not extra)


def test_apply_file_runs_exactly_the_planned_tasks_without_the_repo(
    deployed: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    planned_at = set_docs(deployed, "2")
    saved = tmp_path / "plan.json"
    assert funops(deployed, "plan", "--out", str(saved), "--seal-to", str(keys[0])).returncode == 2
    program = json.loads(saved.read_text())["program"]
    assert program["needsRepo"] == []

    shown = funops(deployed, "show", str(saved))
    assert shown.returncode == 2 and "What apply runs" in shown.stdout
    assert "write file:/etc/systemd/system/docs.service" in shown.stdout

    # The repo moves on, then loses its manifests and templates (in git too): apply reads neither.
    set_docs(deployed, "9")
    git(deployed, "rm", "-rq", "manifests", "templates")
    git(deployed, "commit", "-qm", "gone")
    nokey = funops(deployed, "apply", str(saved), "--auto-approve")
    assert nokey.returncode == 1 and "FUNOPS_PLAN_KEY" in nokey.stderr
    done = funops(deployed, "apply", str(saved), "--auto-approve", "-o", "json", key=keys[1])
    assert done.returncode == 0, done.stderr

    entry = json.loads((deployed / ".funops" / "journal.jsonl").read_text().splitlines()[-1])
    from funops.plan.carry import load_program
    from funops.plan.document import ProgramDoc
    from funops.plan.seal import open_units

    doc = ProgramDoc.model_validate(program)
    os.environ["FUNOPS_PLAN_KEY"] = keys[1]
    try:
        planned = load_program(doc, open_units(doc.sealed or "", doc.sealed_to or "", None, "plan"), "plan")
    finally:
        del os.environ["FUNOPS_PLAN_KEY"]
    for name, node in planned.nodes.items():
        ran = [t["name"] for t in entry["nodes"][name]["tasks"]]
        if not node.converge:
            assert ran == []
            continue
        tasks = [*node.changes, *(t for t, _ in node.checks), *(t for g in node.gated for t in g.tasks),
                 *node.housekeeping]  # fmt: skip
        assert ran == ["record state", *(t.name for t in tasks), "record state"]
    unit = deployed / ".funops" / "nodes" / "node2" / "etc" / "systemd" / "system" / "docs.service"
    assert "release 2." in unit.read_text()  # what was planned, not the repo's 9

    # Back at the plan's commit, the nodes are exactly as it declares: nothing left to do.
    git(deployed, "checkout", "-q", planned_at, "--", "manifests", "templates")
    again = funops(deployed, "plan", "--revision", planned_at)
    assert again.returncode == 0, again.stdout


def test_a_node_changed_since_the_plan_refuses_it_and_nothing_is_written(
    deployed: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    set_docs(deployed, "2")
    saved = tmp_path / "plan.json"
    assert funops(deployed, "plan", "--out", str(saved), "--seal-to", str(keys[0])).returncode == 2
    shutil.rmtree(deployed / "manifests")
    root = deployed / ".funops" / "nodes"
    (root / "node3" / "srv" / "web" / "health").write_text("by hand\n")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    done = funops(deployed, "apply", str(saved), "--auto-approve", key=keys[1])
    assert done.returncode == 1 and "node3 changed since the plan was made" in done.stderr
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_a_plan_that_needs_the_repo_is_made_again_and_must_make_the_same_tasks(
    example: Path, tmp_path: Path
) -> None:
    """A first deploy drains ingress endpoints: apply re-plans from the repo and compares the tasks
    too, not only the changes (a strategy edit changes the health gate, not a resource)."""
    saved = tmp_path / "plan.json"
    assert funops(example, "plan", "--out", str(saved)).returncode == 2
    assert json.loads(saved.read_text())["program"]["needsRepo"]
    web = example / "manifests" / "web.yaml"
    original = web.read_text()
    strategy = "strategy: {batchSize: 1, maxFailures: 0}"
    assert strategy in original
    web.write_text(
        original.replace(strategy, "strategy: {batchSize: 1, maxFailures: 0, minHealthySeconds: 7}")
    )
    done = funops(example, "apply", str(saved), "--auto-approve")
    assert done.returncode == 1 and "the repo now makes other tasks" in done.stderr, done.stderr
    assert not (example / ".funops" / "nodes").exists()  # nothing was written
    web.write_text(original)
    done = funops(example, "apply", str(saved), "--auto-approve")
    assert done.returncode == 0, done.stderr
