"""Issue 5 acceptance: release records, history, rollback (by release and by git revision), auto
rollback through the batches, rolled-back revisions refused, crash rule, artifacts kept for the last
K releases; and issue 6's saved plans. One git repo (the bundled example on the lab), tests in order.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from lab import Lab
from lab.config import node_address

from .fleet import apply, edit_yaml, funops, http, kill, make_repo, reset, start, wait_for_event

SCHEMAS = Path(__file__).resolve().parents[2] / "funops" / "schemas"
SITE = "/etc/nginx/conf.d/funops-site.conf"


def git(repo: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module", params=["ssh", "agent"])
def repo(
    lab: Lab, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Path]:
    """Every test over both transports (issue 13: the agent is a drop-in for ssh)."""
    reset(lab)
    path = make_repo(lab, tmp_path_factory.mktemp("releases") / "repo", transport=request.param)
    (path / ".gitignore").write_text(".funops/\n")
    git(path, "init", "-q")
    commit(path, "example")
    yield path
    reset(lab)


def set_web(repo: Path, version: str, **strategy: object) -> None:
    def edit(docs: list[dict]) -> None:
        docs[0]["spec"]["version"] = version
        docs[0]["spec"]["strategy"] = {"batchSize": 1, "maxFailures": 0, **strategy}

    edit_yaml(repo / "manifests" / "web.yaml", edit)


def set_api(repo: Path, version: str, auto_rollback: bool = True) -> None:
    def edit(docs: list[dict]) -> None:
        docs[0]["spec"]["healthCheck"] = {"type": "http", "path": "/health", "interval": 0.5, "retries": 4}
        docs[0]["spec"]["strategy"] = {"batchSize": 1, "maxFailures": 0, "autoRollback": auto_rollback}
        docs[2]["spec"] = {"app": "api", "version": version}

    edit_yaml(repo / "manifests" / "api.yaml", edit)


def web_pages(lab: Lab) -> dict[str, str]:
    return {n.name: http(f"http://{n.address}:8080/")[1] for n in lab.nodes}


def web_files(lab: Lab) -> dict[str, str]:
    files = {n.name: lab.exec(n, "cat /etc/systemd/system/web.service").stdout for n in lab.nodes}
    files["site"] = lab.exec(lab.nodes[0], f"cat {SITE}").stdout
    return files


def history(repo: Path, app: str) -> list[dict[str, Any]]:
    done = funops(repo, "history", app, "-o", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    jsonschema.validate(doc, json.loads((SCHEMAS / "history.schema.json").read_text()))
    return doc["releases"]


def test_rollback_returns_every_node_to_v1_byte_for_byte(lab: Lab, repo: Path) -> None:
    code, _, err = apply(repo)
    assert code == 0, err
    v1_files = web_files(lab)
    set_web(repo, "2")
    commit(repo, "web 2")
    code, _, err = apply(repo)
    assert code == 0, err
    assert set(web_pages(lab).values()) == {f"<h1>web 2 on {n}</h1>\n" for n in ("node1", "node2", "node3")}

    done = funops(repo, "rollback", "web", "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "web-2 (2) → web-1 (1" in done.stdout
    for node, page in web_pages(lab).items():
        assert page == f"<h1>web 1 on {node}</h1>\n"
    assert web_files(lab) == v1_files  # unit files and nginx site: byte for byte

    releases = history(repo, "web")
    assert [(r["id"], r["kind"], r["status"], r["versions"]) for r in releases] == [
        ("web-3", "rollback", "succeeded", ["1"]),
        ("web-2", "deploy", "rolled_back", ["2"]),
        ("web-1", "deploy", "succeeded", ["1"]),
    ]
    assert releases[0]["restores"] == "web-1"
    assert releases[0]["revision"]["commit"] == releases[2]["revision"]["commit"]
    assert set(releases[1]["nodes"]) == {"node1", "node2", "node3"}


def test_the_rolled_back_revision_is_refused_without_force(lab: Lab, repo: Path) -> None:
    done = funops(repo, "apply", "--auto-approve")  # HEAD is web 2, which was rolled back
    assert done.returncode == 1
    assert "was rolled back" in done.stderr and "--force" in done.stderr
    assert web_pages(lab)["node2"] == "<h1>web 1 on node2</h1>\n"
    code, _, err = apply(repo, "--force")
    assert code == 0, err
    assert web_pages(lab)["node2"] == "<h1>web 2 on node2</h1>\n"
    assert history(repo, "web")[0]["status"] == "succeeded"
    assert funops(repo, "apply", "--auto-approve").returncode == 0  # deployed on purpose: no longer refused


def test_rollback_to_a_git_revision_works_when_head_does_not_validate(lab: Lab, repo: Path) -> None:
    v2 = git(repo, "rev-parse", "HEAD")
    set_web(repo, "3")
    commit(repo, "web 3")
    code, _, err = apply(repo)
    assert code == 0, err
    edit_yaml(repo / "manifests" / "web.yaml", lambda docs: docs[0]["spec"].update(colour="blue"))
    commit(repo, "a broken manifest")
    assert funops(repo, "validate").returncode == 1

    done = funops(repo, "rollback", "web", "--to", "HEAD~2", "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    for node, page in web_pages(lab).items():
        assert page == f"<h1>web 2 on {node}</h1>\n"
    last = history(repo, "web")[0]
    assert (last["kind"], last["status"], last["revision"]["commit"]) == ("rollback", "succeeded", v2)

    git(repo, "revert", "--no-edit", "HEAD")  # valid again (web 3) for the next tests
    set_web(repo, "2")
    commit(repo, "web 2 again")
    code, _, err = apply(repo)
    assert code == 0, err


def test_auto_rollback_returns_the_first_batch_and_the_revision_stays_rolled_back(
    lab: Lab, repo: Path
) -> None:
    set_api(repo, "v2")
    commit(repo, "api v2")
    code, _, err = apply(repo)
    assert code == 0, err
    started_node3 = lab.exec(lab.nodes[2], "docker inspect -f '{{.State.StartedAt}}' api").stdout

    set_api(repo, "v3")  # v3's /health answers 500
    commit(repo, "api v3")
    code, evs, err = apply(repo)
    assert code == 3, err
    auto = next(e for e in evs if e["event"] == "auto-rollback")
    assert auto["nodes"] == ["node2"] and auto["to"] is not None
    dones = [e for e in evs if e["event"] == "done"]
    assert dones[0]["halted"] is True and dones[0]["outcomes"]["node3"] == "skipped"
    assert dones[1]["outcomes"]["node2"] == "succeeded"  # the rollback went through its health gate
    assert http(f"http://{node_address(2)}:8081/version")[1] == "v2"
    assert http(f"http://{node_address(3)}:8081/version")[1] == "v2"  # the later batch never saw v3
    assert lab.exec(lab.nodes[2], "docker inspect -f '{{.State.StartedAt}}' api").stdout == started_node3

    api = {r["id"]: r for r in history(repo, "api")}
    assert api[auto["from"]]["status"] == "rolled_back" and api[auto["from"]]["versions"] == ["v3"]
    assert api[auto["to"]]["versions"] == ["v2"]
    newest = history(repo, "api")[0]
    assert (newest["kind"], newest["status"], newest["restores"]) == (
        "auto-rollback",
        "succeeded",
        auto["to"],
    )

    done = funops(repo, "apply", "--auto-approve")  # CI re-running the v3 commit
    assert done.returncode == 1 and "was rolled back" in done.stderr

    set_api(repo, "v2")
    commit(repo, "api back to v2")
    code, _, err = apply(repo)
    assert code == 0, err


def test_a_killed_controller_leaves_no_release_running_forever(lab: Lab, repo: Path) -> None:
    set_web(repo, "7", batchSize="100%", minHealthySeconds=6)
    commit(repo, "web 7")
    proc = start(repo, "apply", "--auto-approve", "-o", "json")
    wait_for_event(proc, lambda e: e["event"] == "task" and e["task"] == "daemon-reload")
    kill(proc)

    plan = funops(repo, "plan", "-o", "json")
    assert plan.returncode == 2, plan.stderr  # the truth: the restart is owed, or still pending
    doc = json.loads(plan.stdout)
    interrupted = {n["name"]: n["interrupted"] for n in doc["nodes"]}
    assert any(interrupted.values()), interrupted
    web = history(repo, "web")[0]
    assert web["versions"] == ["7"] and web["status"] == "failed"  # not `running` forever

    code, _, err = apply(repo)
    assert code == 0, err
    releases = history(repo, "web")
    assert releases[0]["status"] == "succeeded" and releases[1]["id"] == web["id"]
    assert releases[1]["status"] == "failed" and "interrupted" in json.dumps(releases[1]["errors"])
    for node, page in web_pages(lab).items():
        assert page == f"<h1>web 7 on {node}</h1>\n"


def test_cleanup_keeps_the_images_the_kept_releases_need(lab: Lab, repo: Path) -> None:
    def images() -> set[str]:
        out = lab.exec(lab.nodes[1], "docker images --format '{{.Repository}}:{{.Tag}}'").stdout.split()
        return {i.rsplit(":", 1)[-1] for i in out if "testapp" in i}

    settings = repo / "funops.yaml"
    original = settings.read_text()
    settings.write_text(original + "keepReleases: 2\n")
    for version in ("v2", "v1"):
        set_api(repo, version)
        commit(repo, f"keep 2, api {version}")
        code, _, err = apply(repo)
        assert code == 0, err
    assert {"v1", "v2"} <= images()  # v2 is the previous release's: kept for a rollback

    settings.write_text(original + "keepReleases: 1\n")
    set_api(repo, "v2")
    commit(repo, "keep 1, api v2")
    code, _, err = apply(repo)
    assert code == 0, err
    assert "v2" in images() and "v1" not in images()  # past the last K: cleaned up
    done = funops(repo, "rollback", "api", "--to", "1", "--auto-approve")
    assert done.returncode == 1 and "no longer kept" in done.stderr

    settings.write_text(original)
    commit(repo, "keep 5")


def test_a_saved_plan_is_refused_once_a_node_changed_and_a_fresh_one_applies(
    lab: Lab, repo: Path, tmp_path: Path
) -> None:
    set_web(repo, "8")
    commit(repo, "web 8")
    saved = tmp_path / "plan.json"
    before = web_pages(lab)["node1"]
    assert funops(repo, "plan", "--out", str(saved)).returncode == 2
    lab.exec(lab.nodes[1], "echo 'by hand' >> /srv/web/health")  # someone changes node2
    done = funops(repo, "apply", str(saved), "--auto-approve")
    assert done.returncode == 1 and "node2 changed since the plan was made" in done.stderr
    assert web_pages(lab)["node1"] == before  # nothing was applied

    assert funops(repo, "plan", "--out", str(saved)).returncode == 2
    set_web(repo, "9")  # the working tree moves on; the saved plan is of its commit
    code, _, err = apply(repo, str(saved))
    assert code == 0, err
    assert web_pages(lab)["node1"] == "<h1>web 8 on node1</h1>\n"
    assert http(f"http://{node_address(2)}:8080/health") == (200, "ok\n")
    git(repo, "checkout", "--", ".")
