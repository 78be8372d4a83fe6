"""Issue 14: pull mode on real nodes. Every lab node gets its agent in pull mode (`agent install`: the
engine's runtime, pull.json, the public key, funops-pull.timer); the store is a directory nginx serves
on node1; `funops publish` writes it, the nodes' timers converge them, `funops status` reads them.
Refused and reported: a tampered bundle, a replayed older index; a node cut off from the store keeps
running and shows stale; a push apply is refused; a failing first cohort stops the wave before the
second cohort is published; a store restored from an older copy, or wiped, freezes no node: the next
publish converges them all, and a node that lost its pull.json still refuses the older index."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from lab import Lab

from .fleet import AGENT_PORT, funops, http, reset

STORE_PORT = 8089
STORE_DIR = "/srv/funops-store"
INTERVAL = 5  # seconds between polls (the timer's OnUnitInactiveSec), splay 1
CLEAN = """\
systemctl disable --now funops-pull.timer hello.service 2>/dev/null
rm -f /etc/systemd/system/funops-pull.* /etc/systemd/system/hello.service /etc/nginx/conf.d/pull-store.conf
rm -rf /srv/funops-store /srv/hello
systemctl daemon-reload; systemctl reload nginx 2>/dev/null || true
"""

APP = """apiVersion: funops/v1
kind: Application
metadata: {name: hello}
spec:
  type: systemd
  selector: {}
  version: "VERSION"
  command: COMMAND
  port: 8095
  configFiles:
    - {path: /srv/hello/health, content: "ok\\n"}
    - {path: /srv/hello/version, content: "VERSION on {{ node.name }}\\n"}
  healthCheck: {type: http, path: /health, interval: 1, retries: 90}  # a loaded CI machine
"""
SERVE = "/usr/bin/python3 -m http.server --bind {{ node.bind }} --directory /srv/hello {{ app.port }}"


def _write_app(repo: Path, version: str, command: str = SERVE) -> None:
    (repo / "manifests" / "hello.yaml").write_text(
        APP.replace("VERSION", version).replace("COMMAND", command)
    )


@pytest.fixture(scope="module")
def repo(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reset(lab)
    for node in lab.nodes:
        lab.exec(node, CLEAN)
    store_host = lab.nodes[0]
    lab.exec(
        store_host,
        f"mkdir -p {STORE_DIR} && printf 'server {{ listen {store_host.address}:{STORE_PORT}; "
        f"root {STORE_DIR}; }}\\n' > /etc/nginx/conf.d/pull-store.conf && nginx -t "
        "&& systemctl reload nginx",
        check=True,
    )
    repo = tmp_path_factory.mktemp("pull") / "repo"
    for part in ("inventory", "manifests"):
        (repo / part).mkdir(parents=True)
    (repo / "funops.yaml").write_text(
        f"apiVersion: funops/v1\nproject: pulllab\npull: {{store: {repo / 'store'}}}\n"
    )
    _write_app(repo, "1")
    inventory = yaml.safe_load(lab.inventory_path.read_text())
    for k, node in enumerate(inventory["nodes"]):
        node["agent"] = {"url": f"https://{node['address']}:{AGENT_PORT}"}
        node["pull"] = {"store": f"http://{store_host.address}:{STORE_PORT}", "intervalSeconds": INTERVAL,
                        "splaySeconds": 1, "cohort": "c1" if k == 0 else "c2"}  # fmt: skip
    inventory["defaults"]["transport"] = "ssh"  # the install goes over ssh
    path = repo / "inventory" / "lab.yaml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    assert funops(repo, "agent", "pull-key", "init").returncode == 0
    done = funops(repo, "agent", "install", *(n.name for n in lab.nodes), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    inventory["defaults"]["transport"] = "agent"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    yield repo
    for node in lab.nodes:
        lab.exec(node, CLEAN)
    reset(lab)


def _publish(lab: Lab, repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Publish into the repo's store directory, then copy it to the store node (bundles, then indexes)."""
    done = funops(repo, "publish", *args)
    if done.returncode == 0:
        _sync(lab, repo)
    return done


def _sync(lab: Lab, repo: Path) -> None:
    for indexes in (False, True):
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as tar:
            for f in sorted((repo / "store").rglob("*")):
                if f.is_file() and (f.name == "latest.json") == indexes:
                    tar.add(f, arcname=str(f.relative_to(repo / "store")))
        payload = base64.b64encode(out.getvalue()).decode()
        lab.exec(lab.nodes[0], f"base64 -d | tar -x -C {STORE_DIR}", input=payload, check=True)


def _status(repo: Path, *args: str, timeout: float = 60) -> tuple[int, list[dict]]:
    done = funops(repo, "status", "-o", "json", "--timeout", str(timeout), *args, timeout=timeout + 60)
    return done.returncode, json.loads(done.stdout)["nodes"] if done.stdout else []


def _published(repo: Path, node: str) -> int:
    return json.loads((repo / "store" / "nodes" / node / "latest.json").read_text())["index"]["generation"]


def _until(repo: Path, done: Callable[[list[dict]], bool], timeout: float = 240) -> list[dict]:
    """`funops status` until `done` holds of what it says."""
    deadline = time.monotonic() + timeout
    while not done(found := _status(repo)[1]) and time.monotonic() < deadline:
        time.sleep(2)
    assert done(found), found
    return found


def _all_converged(found: list[dict]) -> bool:
    return bool(found) and all(s["state"] == "converged" and s["applied"] == s["published"] for s in found)


def _recovered(repo: Path, timeout: float = 240) -> list[dict]:
    """Until every node converged again (a node that failed retries at its next poll; `status --wait`
    stops at a failure: a wave must not go on)."""
    deadline = time.monotonic() + timeout
    while True:
        code, found = _status(repo)
        if code == 0 or time.monotonic() > deadline:
            assert code == 0, found
            return found
        time.sleep(2)


def test_the_fleet_converges_what_is_published_within_an_interval(lab: Lab, repo: Path) -> None:
    for node in lab.nodes:
        assert lab.exec(node, "systemctl is-active funops-pull.timer").stdout.strip() == "active"
    assert _publish(lab, repo).returncode == 0
    started = time.monotonic()
    code, found = _status(repo, "--wait", timeout=240)
    assert code == 0, found
    first = _published(repo, lab.nodes[0].name)  # one generation for the run: the signer's clock
    assert {s["state"] for s in found} == {"converged"} and {s["applied"] for s in found} == {first}
    print(f"{len(found)} nodes converged the first publish in {time.monotonic() - started:.1f} s")
    for node in lab.nodes:
        assert http(f"http://{node.address}:8095/version")[1] == f"1 on {node.name}\n"
    # A push to a pull node is refused before anything runs.
    _write_app(repo, "pushed")
    done = funops(repo, "apply", "--auto-approve")
    assert done.returncode == 1 and "in pull mode" in done.stderr, done.stdout + done.stderr
    _write_app(repo, "1")
    # Drift reads pull nodes through their agents like any other.
    assert funops(repo, "drift").returncode == 0
    node1 = lab.nodes[0]
    lab.exec(node1, "echo edited > /srv/hello/version", check=True)
    done = funops(repo, "drift", "-o", "json")
    assert done.returncode == 2 and "/srv/hello/version" in done.stdout, done.stdout + done.stderr
    lab.exec(node1, f"echo '1 on {node1.name}' > /srv/hello/version", check=True)


def test_a_tampered_bundle_and_a_replayed_index_are_refused_and_reported(lab: Lab, repo: Path) -> None:
    node1 = lab.nodes[0]
    first = (repo / "store" / "nodes" / node1.name / "latest.json").read_bytes()
    _write_app(repo, "2")
    assert _publish(lab, repo).returncode == 0
    index = json.loads((repo / "store" / "nodes" / node1.name / "latest.json").read_text())["index"]
    lab.exec(node1, f"printf x >> {STORE_DIR}/{index['bundle']}", check=True)  # tampered in the store
    code, found = _status(repo, "--wait", "--cohort", "c1", timeout=240)
    assert code == 3, found
    assert "sha256" in found[0]["detail"]
    assert http(f"http://{node1.address}:8095/version")[1] == f"1 on {node1.name}\n"  # still the old one
    _sync(lab, repo)  # the good bundle again: the next poll converges
    second_generation = index["generation"]
    assert {s["applied"] for s in _recovered(repo)} == {second_generation}

    # The older index again (validly signed): the node refuses it and stays on the second generation.
    latest = repo / "store" / "nodes" / node1.name / "latest.json"
    second = latest.read_bytes()
    latest.write_bytes(first)
    _sync(lab, repo)
    code, found = _status(repo, "--cohort", "c1", "--wait", timeout=240)
    assert code == 3 and "replay: " in found[0]["detail"], found
    assert found[0]["applied"] == second_generation
    latest.write_bytes(second)
    _sync(lab, repo)
    _recovered(repo)


def test_a_node_cut_off_from_the_store_keeps_running_and_shows_stale(lab: Lab, repo: Path) -> None:
    node1 = lab.nodes[0]
    lab.exec(node1, "mv /etc/nginx/conf.d/pull-store.conf /root/ && systemctl reload nginx", check=True)
    try:
        # Stale after 2 intervals + splay without reaching the store, and a poll's own time: polled.
        deadline = time.monotonic() + 2 * INTERVAL + 1 + 8
        while True:
            code, found = _status(repo)
            stale = {s["state"] for s in found} == {"stale"}
            cut_off = stale and "cannot reach the store" in (found[0]["detail"] or "")
            if (code == 4 and cut_off) or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert code == 4, found
        assert {s["state"] for s in found} == {"stale"}
        assert "cannot reach the store" in found[0]["detail"]
        for node in lab.nodes:  # what they run keeps running
            assert http(f"http://{node.address}:8095/health")[0] == 200
    finally:
        lab.exec(node1, "mv /root/pull-store.conf /etc/nginx/conf.d/ && systemctl reload nginx", check=True)
    code, found = _status(repo, "--wait", timeout=240)
    assert code == 0, found


def test_a_failing_first_cohort_stops_the_wave_before_the_second(lab: Lab, repo: Path) -> None:
    if len(lab.nodes) < 2:
        pytest.skip("needs two cohorts")
    before = _published(repo, lab.nodes[1].name)  # what cohort 2 runs
    _write_app(repo, "3", "/bin/false")  # never healthy
    # The pipeline of examples/ci/github-actions-pull.yml, wave by wave.
    assert _publish(lab, repo, "--cohort", "c1").returncode == 0
    code, found = _status(repo, "--cohort", "c1", "--wait", timeout=240)
    assert code == 3 and found[0]["state"] == "failed", found
    code, rest = _status(repo, "--cohort", "c2")
    assert code == 0 and {s["applied"] for s in rest} == {before}  # cohort 2 never saw the broken one
    _write_app(repo, "4")  # fixed: the next publish converges the first cohort, then the second
    assert _publish(lab, repo, "--cohort", "c1").returncode == 0
    fixed = _published(repo, lab.nodes[0].name)
    deadline = time.monotonic() + 240
    while (found := _status(repo, "--cohort", "c1")[1])[0]["applied"] != fixed:
        if time.monotonic() > deadline:
            break
        time.sleep(2)
    assert found[0]["state"] == "converged", found
    assert _publish(lab, repo, "--cohort", "c2").returncode == 0
    code, found = _status(repo, "--wait", timeout=240)
    assert code == 0, found
    for node in lab.nodes:
        assert http(f"http://{node.address}:8095/version")[1] == f"4 on {node.name}\n"


def _restore(lab: Lab, repo: Path, copy: Path | None) -> None:
    """The store as `copy` held it (None: wiped), in the repo and on the store node."""
    shutil.rmtree(repo / "store", ignore_errors=True)
    lab.exec(lab.nodes[0], f"rm -rf {STORE_DIR}/nodes", check=True)
    if copy is not None:
        shutil.copytree(copy, repo / "store")
        _sync(lab, repo)


def test_no_restored_or_wiped_store_freezes_the_fleet(lab: Lab, repo: Path, tmp_path: Path) -> None:
    """Issue 28: a store restored from an older copy, or wiped, then a publish: every node converges
    it (a generation is the signer's clock, not the store's count); the older index the restored store
    holds is refused as a replay and shown so by status, also by a node that lost its pull.json."""
    _recovered(repo)
    old = tmp_path / "old-store"
    shutil.copytree(repo / "store", old)
    _write_app(repo, "5")
    assert _publish(lab, repo).returncode == 0
    _until(repo, _all_converged)

    _restore(lab, repo, old)  # the store restored from the copy: older indexes, validly signed
    found = _until(repo, lambda found: all("refused: replay" in (s["detail"] or "") for s in found))
    assert {s["state"] for s in found} == {"failed"}
    node1 = lab.nodes[0]
    lab.exec(node1, "rm /var/lib/funops/pull.json", check=True)  # the node's status file lost
    # Its next poll (within 2 intervals + splay, and the poll's own time), with no status file to go by:
    # the poll writes the file once, at its end, by a rename.
    deadline = time.monotonic() + 2 * INTERVAL + 1 + 8
    while lab.exec(node1, "test -e /var/lib/funops/pull.json").returncode and time.monotonic() < deadline:
        time.sleep(1)
    doc = json.loads(lab.exec(node1, "cat /var/lib/funops/pull.json", check=True).stdout)
    assert doc["result"] == "refused" and "replay: " in doc["error"], doc
    for node in lab.nodes:  # nothing older was applied
        assert http(f"http://{node.address}:8095/version")[1] == f"5 on {node.name}\n"

    _write_app(repo, "6")  # the next publish, from the restored store, converges every node
    assert _publish(lab, repo).returncode == 0
    _until(repo, _all_converged)
    for node in lab.nodes:
        assert http(f"http://{node.address}:8095/version")[1] == f"6 on {node.name}\n"

    _restore(lab, repo, None)  # wiped: the next publish is still newer than anything before
    _write_app(repo, "7")
    assert _publish(lab, repo).returncode == 0
    _until(repo, _all_converged)
    for node in lab.nodes:
        assert http(f"http://{node.address}:8095/version")[1] == f"7 on {node.name}\n"
