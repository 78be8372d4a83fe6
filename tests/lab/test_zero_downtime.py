"""Issue 15: rollouts under load lose no request. Clients keep sending GET, POST and slow requests
through the example's ingress (TLS on the edge node) while funops (a) rolls a systemd app,
(b) replaces a container app's version, (c) shifts canary weights, (e) rolls back. Each case
prints the requests served and the worst latency, and asserts 0 failed requests (see lab/load.py for
what counts as a failure).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab
from lab.load import Load, Report, Target

from .fleet import apply, edit_yaml, funops, make_repo, reset
from .saved import committed_and_applied
from .test_releases import commit

FILES = Path(__file__).resolve().parent / "files"


def backends(repo: Path) -> None:
    """The example's web and api, with backends that also answer POST /echo and a slow GET."""
    (repo / "files").mkdir(exist_ok=True)
    shutil.copy(FILES / "loadweb.py", repo / "files" / "loadweb.py")
    shutil.copy(FILES / "api-handler", repo / "files" / "api-handler")

    def web(docs: list[dict]) -> None:
        spec = docs[0]["spec"]
        spec["command"] = (
            "/usr/bin/python3 /srv/web/server.py {{ node.bind }} {{ app.port }} {{ release.version }}"
        )
        spec["configFiles"].append({"path": "/srv/web/server.py", "source": "files/loadweb.py"})

    def api(docs: list[dict]) -> None:
        spec = docs[0]["spec"]
        spec["configFiles"] = [{"path": "/srv/api/handler", "source": "files/api-handler", "mode": "0755"}]
        spec["volumes"] = ["/srv/api/handler:/app/handler:ro"]

    edit_yaml(repo / "manifests" / "web.yaml", web)
    edit_yaml(repo / "manifests" / "api.yaml", api)


@pytest.fixture(scope="module")
def repo(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reset(lab)
    path = make_repo(lab, tmp_path_factory.mktemp("zero-downtime") / "repo")
    backends(path)
    yield committed_and_applied(path)
    reset(lab)


@pytest.fixture
def target(lab: Lab) -> Target:
    return Target(address=lab.node("node1").address, host="demo.funops.test")


def under_load(target: Target, repo: Path, *args: str) -> tuple[int, list[dict], Report]:
    load = Load(target, threads=8, max_seconds=240)
    with load.running() as report:
        code, events, err = apply(repo, *args)
    print(f"\n{args or 'apply'}: {report.line()}")
    for failure in report.failures[:20]:
        print("  ", failure)
    bad = [e for e in events if e.get("ok") is False or e.get("error") or e["event"] == "halt"]
    assert code == 0, (err, bad)
    return code, events, report


def test_a_rolling_a_systemd_app_fails_no_request(repo: Path, target: Target) -> None:
    edit_yaml(repo / "manifests" / "web.yaml", lambda docs: docs[0]["spec"].update(version="2"))
    commit(repo, "web 2")
    _, _, report = under_load(target, repo)
    assert report.served > 0
    assert report.failures == []


def set_api(repo: Path, *versions: tuple[str, int]) -> None:
    def edit(docs: list[dict]) -> None:
        docs[2]["spec"]["versions"] = [{"version": v, "percent": p} for v, p in versions]

    edit_yaml(repo / "manifests" / "api.yaml", edit)


def test_b_replacing_a_container_apps_version_fails_no_request(lab: Lab, repo: Path, target: Target) -> None:
    set_api(repo, ("v2", 90), ("v1", 10))  # node2 v1 → v2, node3 v2 → v1
    commit(repo, "api v2/v1")
    _, events, report = under_load(target, repo)
    assert report.served > 0
    assert report.failures == []
    ran = [e["task"] for e in events if e["event"] == "task" and e["task"].startswith("run container")]
    assert len(ran) == 2  # both replicas were replaced
    assert api_images(lab) == ["v2", "v1"]


def test_b2_a_failing_version_rolls_back_by_itself_and_fails_no_request(
    lab: Lab, repo: Path, target: Target
) -> None:
    set_api(repo, ("v2", 90), ("v3", 10))  # v3 never gets healthy: the auto rollback puts v1 back
    commit(repo, "api v2/v3")
    load = Load(target, threads=8, max_seconds=240)
    with load.running() as report:
        code, events, _ = apply(repo)
    print(f"\nfailed canary + auto rollback: {report.line()}")
    assert code == 3
    assert [e["event"] for e in events].count("auto-rollback") == 1
    assert report.failures == []
    assert api_images(lab) == ["v2", "v1"]
    set_api(repo, ("v2", 90), ("v1", 10))
    commit(repo, "api v2/v1 again")


def api_images(lab: Lab) -> list[str]:
    return [
        lab.exec(n, "docker inspect -f '{{.Config.Image}}' api").stdout.strip().rsplit(":", 1)[-1]
        for n in ("node2", "node3")
    ]


def test_c_shifting_canary_weights_is_one_reload_and_fails_no_request(repo: Path, target: Target) -> None:
    set_api(repo, ("v2", 50), ("v1", 50))
    commit(repo, "api 50/50")
    _, events, report = under_load(target, repo)
    assert report.served > 0
    assert report.failures == []
    tasks = [e["task"] for e in events if e["event"] == "task"]
    assert tasks.count("reload nginx") == 1
    assert not [x for x in tasks if x.startswith(("run container", "restart"))]


def test_d_draining_a_node_moves_its_replicas_and_fails_no_request(
    lab: Lab, repo: Path, target: Target
) -> None:
    """api (2 replicas, on node2 and node3) may run on any node: draining node3 moves it to node1."""
    edit_yaml(repo / "manifests" / "api.yaml", lambda docs: docs[0]["spec"].update(selector={}))
    commit(repo, "api may run anywhere")
    code, _, err = apply(repo)  # sticky placements: nothing moves
    assert code == 0, err
    load = Load(target, threads=8, max_seconds=240)
    with load.running() as report:
        done = funops(repo, "drain", "node3", "--auto-approve", "-o", "json")
    print(f"\ndrain node3: {report.line()}")
    for failure in report.failures[:20]:
        print("  ", failure)
    assert done.returncode == 0, done.stderr
    starts = [json.loads(x) for x in done.stdout.splitlines() if x.startswith('{"')]
    batches = next(e["batches"] for e in starts if e.get("event") == "start")
    assert batches[-1] == ["node3"]  # the old instance goes last, after the new one is healthy
    assert lab.exec("node1", "docker inspect -f '{{.State.Running}}' api").stdout.strip() == "true"
    assert lab.exec("node3", "docker ps -q --filter name=^api$").stdout.strip() == ""
    assert report.failures == []


def test_e_rolling_back_fails_no_request(repo: Path, target: Target) -> None:
    load = Load(target, threads=8, max_seconds=240)
    with load.running() as report:
        done = funops(repo, "rollback", "web", "--auto-approve", "-o", "json")
    print(f"\nrollback web: {report.line()}")
    for failure in report.failures[:20]:
        print("  ", failure)
    assert done.returncode == 0, done.stderr
    assert report.served > 0
    assert report.failures == []


def test_f_a_failure_in_the_bake_window_rolls_back_by_itself(lab: Lab, repo: Path, target: Target) -> None:
    """web 3 passes its health gate, then turns unhealthy 4 s after start: inside the bake window."""
    before = lab.exec("node2", "cat /etc/systemd/system/web.service").stdout

    def edit(docs: list[dict]) -> None:
        spec = docs[0]["spec"]
        spec["version"] = "3"
        spec["command"] += " 4"
        spec["strategy"] = {"batchSize": 1, "maxFailures": 0, "autoRollback": True, "bakeSeconds": 20}

    edit_yaml(repo / "manifests" / "web.yaml", edit)
    commit(repo, "web 3, unhealthy after 4 s")
    plan = funops(repo, "plan", "-o", "json")
    assert json.loads(plan.stdout)["schedule"]["bakeSeconds"] == 20
    assert "bake 20s" in funops(repo, "plan").stdout
    load = Load(target, threads=8, max_seconds=240)
    with load.running() as report:
        code, events, _ = apply(repo)
    print(f"\nbake failure + auto rollback: {report.line()}")
    for failure in report.failures[:10]:
        print("  ", failure)
    assert code == 3
    kinds = [e["event"] for e in events]
    assert "bake-failed" in kinds
    assert kinds.index("bake-failed") < kinds.index("auto-rollback")
    assert lab.exec("node2", "cat /etc/systemd/system/web.service").stdout == before
    assert report.failures == []
