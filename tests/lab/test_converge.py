"""Issue 4 acceptance: plan and apply against real nodes (sshd, systemd, nginx, docker), over SSH and
over the agent (issue 13: a drop-in for ssh).

The tests run in file order on one repo per transport (the bundled example with the lab's inventory):
converge, re-apply (no-op), rolling version bump, failing health check, broken nginx template, dead
node, concurrent applies, owed restart after a killed run, unknown host key. Over the agent a node
down is its agent unreachable; what only ssh has (host keys, sudo, a session that dies with its
controller) runs over ssh alone.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab
from lab.config import node_address

from .fleet import AGENT_PORT, apply, edit_yaml, funops, http, kill, make_repo, reset, start, wait_for_event


@pytest.fixture(scope="module", params=["ssh", "agent"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def repo(lab: Lab, tmp_path_factory: pytest.TempPathFactory, transport: str) -> Iterator[Path]:
    reset(lab)
    yield make_repo(lab, tmp_path_factory.mktemp("fleet") / "repo", transport=transport)
    reset(lab)


def ssh_only(transport: str, why: str) -> None:
    if transport != "ssh":
        pytest.skip(f"over ssh only: {why}")


def start_node(lab: Lab, node: str, transport: str) -> None:
    """Boot a stopped node; over the agent, until its agent (enabled: it starts at boot) listens."""
    lab.start_node(node)
    deadline = time.monotonic() + 60
    while transport == "agent":
        try:
            socket.create_connection((lab.node(node).address, AGENT_PORT), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"the agent on {node} did not come back"
            time.sleep(0.2)


def unit_started(lab: Lab, node: str) -> str:
    return lab.exec(
        node, "systemctl show -p ActiveEnterTimestampMonotonic --value web.service"
    ).stdout.strip()


def container_started(lab: Lab, node: str) -> str:
    return lab.exec(node, "docker inspect -f '{{.State.StartedAt}}' api").stdout.strip()


def set_web_version(repo: Path, version: str, **strategy: object) -> None:
    def edit(docs: list[dict]) -> None:
        docs[0]["spec"]["version"] = version
        docs[0]["spec"]["strategy"] = {"batchSize": 1, "maxFailures": 0, **strategy}

    edit_yaml(repo / "manifests" / "web.yaml", edit)


def node_clock(lab: Lab, node: str) -> int:
    """The node's realtime clock in microseconds (journal entries are stamped with it)."""
    return int(lab.exec(node, "date +%s%6N", check=True).stdout)


def reloads_since(lab: Lab, node: str, since: int) -> int:
    """systemd's daemon-reloads on `node` since `since` (node_clock): PID 1 logs each "Reloading."."""
    out = lab.exec(node, f"journalctl -q -o json _PID=1 --since=@{since // 1_000_000}", check=True).stdout
    entries = [json.loads(line) for line in out.splitlines()]
    return sum(e.get("MESSAGE") == "Reloading." and int(e["__REALTIME_TIMESTAMP"]) >= since for e in entries)


def test_apply_converges_the_example(lab: Lab, repo: Path) -> None:
    plan = funops(repo, "plan", "-o", "json")
    assert plan.returncode == 2, plan.stderr
    since = {n.name: node_clock(lab, n.name) for n in lab.nodes}
    code, evs, err = apply(repo)
    assert code == 0, err + json.dumps(evs[-1])
    # New unit files need no daemon-reload: systemd (v245 on) loads them when the unit first starts
    assert {n: reloads_since(lab, n, t) for n, t in since.items()} == dict.fromkeys(since, 0)
    for node in lab.nodes:  # the systemd app answers on every node
        assert http(f"http://{node.address}:8080/health") == (200, "ok\n")
    status, env = http(f"http://{node_address(2)}:8081/env")  # the container app got its injected env
    assert status == 200 and "MONGODB_URI=mongodb://127.0.0.1:27017/db_u42_a7" in env
    assert f"BIND={node_address(2)}" in env
    # nginx on the ingress node routes both paths
    assert http(f"http://{node_address(1)}/", host="demo.funops.test") == (200, "<h1>web 1 on node1</h1>\n")
    assert http(f"http://{node_address(1)}/api/version", host="demo.funops.test")[1] in ("v1", "v2")
    # nginx serves the example's override (templates/nginx/site.conf.j2, extending the bundled site).
    edge = lab.nodes[0].address
    headers = lab.exec("node1", f"curl -sSI -H 'Host: demo.funops.test' http://{edge}/", check=True).stdout
    assert "X-Frame-Options: DENY" in headers and "X-Content-Type-Options: nosniff" in headers
    log = lab.exec("node1", "tail -n 1 /var/log/nginx/funops-site.access.log", check=True).stdout
    assert '"HEAD / HTTP/1.1" 200 ' in log  # the override's log_format: upstream and timings
    assert any(f"upstream={n.address}:8080 ut=" in log for n in lab.nodes), log


def test_reapply_changes_nothing_and_restarts_nothing(lab: Lab, repo: Path) -> None:
    units = {n.name: unit_started(lab, n.name) for n in lab.nodes}
    containers = {n: container_started(lab, n) for n in ("node2", "node3")}
    code, evs, err = apply(repo)
    assert code == 0, err
    assert [e for e in evs if e["event"] == "task"] == []
    assert {n.name: unit_started(lab, n.name) for n in lab.nodes} == units
    assert {n: container_started(lab, n) for n in ("node2", "node3")} == containers
    assert funops(repo, "plan").returncode == 0


def test_a_changed_unit_file_is_reloaded_before_its_unit_restarts(lab: Lab, repo: Path) -> None:
    manifest = repo / "manifests" / "web.yaml"
    original = manifest.read_text()
    manifest.write_text(original.replace("--directory /srv/web ", "--directory /srv/web/ "))
    since = {n.name: node_clock(lab, n.name) for n in lab.nodes}
    try:
        code, _, err = apply(repo)
        assert code == 0, err
        for node in lab.nodes:
            assert reloads_since(lab, node.name, since[node.name]) == 1
            shown = lab.exec(node, "systemctl show -p NeedDaemonReload,ExecStart web.service").stdout
            assert "NeedDaemonReload=no" in shown and "--directory /srv/web/ " in shown
            assert http(f"http://{node.address}:8080/health") == (200, "ok\n")
    finally:
        manifest.write_text(original)
        assert apply(repo)[0] == 0


def test_version_bump_rolls_out_batch_by_batch(lab: Lab, repo: Path) -> None:
    set_web_version(repo, "2")
    code, evs, err = apply(repo)
    assert code == 0, err
    kinds = [(e["event"], e.get("batch"), e.get("node")) for e in evs]
    starts = [e for e in evs if e["event"] == "batch-start"]
    assert [s["nodes"] for s in starts] == [["node1"], ["node2"], ["node3"]]
    # batch 1 finished and healthy before batch 2 started
    done1 = kinds.index(("batch-done", 1, None))
    assert evs[done1]["healthy"] is True
    assert done1 < kinds.index(("batch-start", 2, None))
    healthy1 = [i for i, e in enumerate(evs) if e["event"] == "healthy" and e["node"] == "node1"]
    assert healthy1 and healthy1[0] < done1
    for node in lab.nodes:
        assert http(f"http://{node.address}:8080/")[1] == f"<h1>web 2 on {node.name}</h1>\n"


def test_failing_health_check_halts_after_the_first_batch(lab: Lab, repo: Path) -> None:
    def bad_release(docs: list[dict]) -> None:
        docs[0]["spec"]["healthCheck"] = {"type": "http", "path": "/health", "interval": 0.5, "retries": 4}
        docs[0]["spec"]["strategy"] = {"batchSize": 1, "maxFailures": 0}
        docs[2]["spec"] = {"app": "api", "version": "v3"}  # v3's /health answers 500

    before = {n: http(f"http://{node_address(int(n[-1]))}:8081/version")[1] for n in ("node2", "node3")}
    edit_yaml(repo / "manifests" / "api.yaml", bad_release)
    code, evs, err = apply(repo)
    assert code == 3, err
    halt = next(e for e in evs if e["event"] == "halt")
    assert halt["skipped"] == ["node3"]
    assert next(e for e in evs if e["event"] == "done")["outcomes"]["node2"] == "failed"
    assert http(f"http://{node_address(3)}:8081/version")[1] == before["node3"]  # never saw v3
    entry = json.loads((repo / ".funops" / "journal.jsonl").read_text().splitlines()[-1])
    assert entry["halted"] is True and entry["exitCode"] == 3
    assert entry["nodes"]["node2"]["status"] == "failed" and entry["nodes"]["node3"]["status"] == "skipped"

    # --resume continues with the failed and the untouched nodes only.
    original = Path(__file__).parents[2] / "manifests" / "api.yaml"
    (repo / "manifests" / "api.yaml").write_text(original.read_text())
    code, evs, err = apply(repo, "--resume")
    assert code == 0, err
    outcomes = next(e for e in evs if e["event"] == "done")["outcomes"]
    assert outcomes == {"node2": "succeeded", "node3": "unchanged"}  # node1 was not a target
    code, _, err = apply(repo)
    assert code == 0, err


def test_nginx_test_failure_keeps_the_old_config_serving(lab: Lab, repo: Path) -> None:
    site = "/etc/nginx/conf.d/funops-site.conf"
    old = lab.exec("node1", f"sha256sum {site}").stdout
    # The example's own override of the site template (templates/nginx/site.conf.j2), broken.
    broken = repo / "templates" / "nginx" / "site.conf.j2"
    override = broken.read_text()
    broken.write_text(override.replace("    access_log", "    no_such_directive on;\n    access_log", 1))
    code, evs, err = apply(repo)
    assert code == 3, err
    failed = [e for e in evs if e["event"] == "task" and not e["ok"]]
    assert failed and failed[0]["task"] == "nginx -t"
    assert lab.exec("node1", f"sha256sum {site}").stdout == old
    assert lab.exec("node1", "nginx -t").returncode == 0
    assert http(f"http://{node_address(1)}/", host="demo.funops.test")[0] == 200
    broken.write_text(override)
    assert apply(repo)[0] == 0


def test_a_node_killed_during_apply_is_reported_and_converges_on_rerun(
    lab: Lab, repo: Path, transport: str
) -> None:
    set_web_version(repo, "3", batchSize="100%", maxFailures=1, minHealthySeconds=4)
    proc = start(repo, "apply", "--auto-approve", "-o", "json")
    restarted = "restart unit:web.service"
    wait_for_event(proc, lambda e: e["event"] == "task" and e["node"] == "node3" and e["task"] == restarted)
    lab.stop_node("node3")  # during its health check's 4 s min-healthy hold
    out, err = proc.communicate(timeout=180)
    try:
        done = [json.loads(x) for x in out.splitlines() if x.startswith("{")][-1]
        assert done["outcomes"]["node1"] == done["outcomes"]["node2"] == "succeeded"
        # A lost link is "unreachable" (exit 4); a task cut by the shutdown is "failed" (exit 3).
        expected_code = {"unreachable": 4, "failed": 3}[done["outcomes"]["node3"]]
        assert proc.returncode == expected_code, err
    finally:
        start_node(lab, "node3", transport)
    code, _, err = apply(repo)
    assert code == 0, err
    assert http(f"http://{node_address(3)}:8080/")[1] == "<h1>web 3 on node3</h1>\n"


def test_two_applies_at_once_exactly_one_proceeds(lab: Lab, repo: Path) -> None:
    set_web_version(repo, "4", batchSize="100%", minHealthySeconds=3)
    first = start(repo, "apply", "--auto-approve", "-o", "json")
    wait_for_event(first, lambda e: e["event"] == "batch-start")
    second = funops(repo, "apply", "--auto-approve", "-o", "json")
    _, err = first.communicate(timeout=180)
    assert first.returncode == 0, err
    assert second.returncode == 1
    assert "locked by another apply" in second.stderr and "pid" in second.stderr


def test_a_run_killed_between_unit_write_and_restart_leaves_an_owed_restart(
    lab: Lab, repo: Path, transport: str
) -> None:
    # A killed controller's ssh session ends the bundle mid-way; an agent runs a bundle it was sent to
    # its end, with nobody to read the answer: no restart is left owed there.
    ssh_only(transport, "the agent finishes a bundle whose controller died")
    # A unit whose start takes a few seconds gives the kill a window inside the restart task.
    template = Path(__file__).parents[2] / "funops" / "templates" / "systemd" / "app.service.j2"
    slow = repo / "templates" / "systemd" / "app.service.j2"
    slow.parent.mkdir(parents=True, exist_ok=True)
    slow.write_text(template.read_text().replace("ExecStart=", "ExecStartPre=/bin/sleep 4\nExecStart=", 1))
    set_web_version(repo, "5")
    proc = start(repo, "apply", "--auto-approve", "-o", "json")
    # The unit file is written and the restart started within a fraction of a second of node1's
    # start; the restart then takes 4 s: kill the controller in the middle of it.
    wait_for_event(proc, lambda e: e["event"] == "node-start" and e["node"] == "node1")
    time.sleep(2)
    kill(proc)
    plan = json.loads(funops(repo, "plan", "-o", "json").stdout)
    node1 = next(n for n in plan["nodes"] if n["name"] == "node1")
    assert "restart:unit:web.service" in node1["owed"]
    code, evs, err = apply(repo)
    assert code == 0, err
    tasks = [e["task"] for e in evs if e["event"] == "task" and e["node"] == "node1"]
    assert "restart unit:web.service" in tasks
    assert funops(repo, "plan").returncode == 0
    slow.unlink()
    assert apply(repo)[0] == 0


def test_deletes_touch_only_what_funops_created(lab: Lab, repo: Path) -> None:
    lab.exec("node2", "echo mine > /srv/web/notes.txt")  # put there by hand: funops must leave it

    def drop_index(docs: list[dict]) -> None:
        files = docs[0]["spec"]["configFiles"]
        docs[0]["spec"]["configFiles"] = [f for f in files if f["path"] != "/srv/web/index.html"]

    edit_yaml(repo / "manifests" / "web.yaml", drop_index)
    plan = json.loads(funops(repo, "plan", "-o", "json").stdout)
    deletes = {(n["name"], c["id"]) for n in plan["nodes"] for c in n["changes"] if c["action"] == "delete"}
    assert deletes == {(n.name, "file:/srv/web/index.html") for n in lab.nodes}
    assert apply(repo)[0] == 0
    assert lab.exec("node2", "test -e /srv/web/index.html").returncode == 1
    assert lab.exec("node2", "cat /srv/web/notes.txt").stdout == "mine\n"
    assert funops(repo, "plan").returncode == 0


def test_skip_unreachable_converges_the_others_and_records_the_dead_node(
    lab: Lab, repo: Path, transport: str
) -> None:
    set_web_version(repo, "6", batchSize="100%")
    lab.stop_node("node3")
    try:
        assert funops(repo, "plan").returncode == 1  # by default an unreachable node is an error
        assert funops(repo, "plan", "--skip-unreachable").returncode == 4
        code, evs, err = apply(repo, "--skip-unreachable")
        assert code == 4, err  # everything reachable is fine
        outcomes = next(e for e in evs if e["event"] == "done")["outcomes"]
        assert outcomes == {"node1": "succeeded", "node2": "succeeded", "node3": "unreachable"}
        entry = json.loads((repo / ".funops" / "journal.jsonl").read_text().splitlines()[-1])
        assert entry["nodes"]["node3"]["status"] == "unreachable" and entry["exitCode"] == 4
    finally:
        start_node(lab, "node3", transport)
    assert apply(repo)[0] == 0
    assert funops(repo, "plan").returncode == 0


def deploy_inventory(repo: Path) -> Path:
    """The lab's inventory with the user `deploy` (sudo without a password) and become on."""
    inventory = (repo / "inventory" / "lab.yaml").read_text()
    deploy = repo.parent / "deploy-inventory.yaml"
    deploy.write_text(
        inventory.replace("user: root", "user: deploy").replace("  ssh:\n", "  ssh:\n    become: true\n", 1)
    )
    assert "user: deploy" in deploy.read_text() and "become: true" in deploy.read_text()
    return deploy


def test_a_non_root_user_works_through_sudo(lab: Lab, repo: Path, transport: str) -> None:
    ssh_only(transport, "the agent runs as root")
    done = funops(repo, "plan", "--inventory", str(deploy_inventory(repo)), "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr  # it reads root-only files (the 0600 env file)


def test_an_unknown_host_key_is_refused(lab: Lab, repo: Path, transport: str, tmp_path: Path) -> None:
    ssh_only(transport, "the agent's pinned certificate is test_agent.py's")
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    inventory = (repo / "inventory" / "lab.yaml").read_text()
    strange = repo.parent / "strange-inventory.yaml"
    strange.write_text(inventory.replace(str(lab.known_hosts_path), str(empty)))
    done = funops(repo, "plan", "--inventory", str(strange))
    assert done.returncode == 1
    assert f"unknown host key for {node_address(1)}:22; refusing to connect" in done.stdout + done.stderr
