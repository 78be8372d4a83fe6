"""Issue 29 acceptance: the plan is the program. A plan saved on a pull request is applied after the
merge as it was reviewed: `apply FILE` runs exactly its tasks on the lab's nodes, from another
directory, with the repo's manifests and templates changed and then gone; a node changed since the
plan refuses it and nothing is written. The bundled example over ssh, tests in order."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from funops.plan.carry import load_program
from funops.plan.document import ProgramDoc
from funops.plan.seal import KEY_ENV, open_units
from lab import Lab

from ..conftest import apply_job_keys
from .fleet import FUNOPS, edit_yaml, funops, http, reset
from .saved import applied_example
from .test_releases import commit, git, set_web, web_files


@pytest.fixture(scope="module")
def repo(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reset(lab)
    yield applied_example(lab, tmp_path_factory.mktemp("saved") / "repo")
    reset(lab)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The apply job's certificate (the plan job seals to it) and its private key (PEM)."""
    return apply_job_keys(tmp_path_factory.mktemp("keys"))


def set_docs(repo: Path, version: str) -> str:
    def edit(docs: list[dict]) -> None:
        docs[0]["spec"]["version"] = version

    edit_yaml(repo / "manifests" / "docs.yaml", edit)
    return commit(repo, f"docs {version}")


def docs_units(lab: Lab) -> dict[str, str]:
    return {n.name: lab.exec(n, "cat /etc/systemd/system/docs.service 2>&1").stdout for n in lab.nodes}


def states(lab: Lab) -> dict[str, str]:
    return {n.name: lab.exec(n, "cat /var/lib/funops/state.json").stdout for n in lab.nodes}


def apply_file(saved: Path, where: Path, key: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV} | {"NO_COLOR": "1"}
    env |= {KEY_ENV: key} if key else {}
    return subprocess.run(
        [*FUNOPS, "apply", str(saved), "--auto-approve", "-o", "json", "-C", str(where)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


def planned_task_names(program: dict, key: str) -> dict[str, list[str]]:
    """node → the names of the tasks the saved program runs, in order (sealed ones opened)."""
    doc = ProgramDoc.model_validate(program)
    os.environ[KEY_ENV] = key
    try:
        units = open_units(doc.sealed or "", doc.sealed_to or "", None, "plan")
    finally:
        del os.environ[KEY_ENV]
    out = {}
    for name, node in load_program(doc, units, "plan").nodes.items():
        tasks = [*node.changes, *(t for t, _ in node.checks), *(t for g in node.gated for t in g.tasks),
                 *node.housekeeping]  # fmt: skip
        out[name] = ["record state", *(t.name for t in tasks), "record state"] if node.converge else []
    return out


def test_apply_file_runs_exactly_the_planned_tasks_without_the_repo(
    lab: Lab, repo: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    planned_at = set_docs(repo, "2")
    saved = tmp_path / "plan.json"
    done = funops(repo, "plan", "--out", str(saved), "--seal-to", str(keys[0]))
    assert done.returncode == 2, done.stderr
    program = json.loads(saved.read_text())["program"]
    assert program["needsRepo"] == []
    planned = planned_task_names(program, keys[1])
    web_before, docs_before = web_files(lab), docs_units(lab)

    # After the plan, the repo changes its manifests and its templates, then loses both.
    set_web(repo, "9")
    version = repo / "templates" / "web" / "version.json.j2"
    version.write_text(version.read_text() + "\n")
    commit(repo, "web 9, a template edited")
    shutil.rmtree(repo / "manifests")
    shutil.rmtree(repo / "templates")
    elsewhere = tmp_path / "elsewhere"  # the apply job: the artifact, not the repo
    elsewhere.mkdir()

    assert apply_file(saved, elsewhere, None).returncode == 1  # its secrets are sealed: no key, no run
    done = apply_file(saved, elsewhere, keys[1])
    assert done.returncode == 0, done.stderr
    entry = json.loads((elsewhere / ".funops" / "journal.jsonl").read_text().splitlines()[-1])
    ran = {name: [t["name"] for t in node["tasks"]] for name, node in entry["nodes"].items()}
    assert ran == planned  # exactly the planned tasks, nothing else
    assert any(planned.values())

    assert web_files(lab) == web_before  # web 9 was never planned
    docs_after = docs_units(lab)
    for node in lab.nodes:
        if "release 1." in docs_before[node.name]:
            assert "release 2." in docs_after[node.name]
            assert http(f"http://{node.address}:8082/health")[0] == 200
        else:
            assert docs_after[node.name] == docs_before[node.name]
    git(repo, "reset", "-q", "--hard", planned_at)  # the repo as the nodes now are


def test_a_node_changed_since_the_saved_plan_refuses_it_and_nothing_is_written(
    lab: Lab, repo: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    set_docs(repo, "3")
    saved = tmp_path / "plan.json"
    assert funops(repo, "plan", "--out", str(saved), "--seal-to", str(keys[0])).returncode == 2
    assert json.loads(saved.read_text())["program"]["needsRepo"] == []  # it runs without the repo
    changed = next(n for n in lab.nodes if "release 2." in docs_units(lab)[n.name])
    lab.exec(changed, "echo '# by hand' >> /etc/systemd/system/docs.service")
    units, recorded = docs_units(lab), states(lab)

    done = apply_file(saved, tmp_path, keys[1])
    assert done.returncode == 1
    assert f"{changed.name} changed since the plan was made" in done.stderr
    assert docs_units(lab) == units and states(lab) == recorded  # nothing was written anywhere
