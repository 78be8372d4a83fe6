"""Issue 13: the agent on real nodes. Installed over verified SSH (the certificate the node made is
pinned), then a drop-in for ssh: the example converges through it, and a no-op plan stays a no-op.
A replaced certificate and a rotated token are refused with a message naming the node. `logs -f`
streams through it; a restarted agent is no failure between requests, and fails the node it was
running tasks on (named, exit 4) rather than run them twice."""

from __future__ import annotations

import hashlib
import http.client
import json
import queue
import re
import signal
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab

from .fleet import (
    AGENT_PORT,
    apply,
    edit_yaml,
    funops,
    make_repo,
    reset,
    set_transport,
    start,
    wait_for_event,
)
from .fleet import http as http_get

PORT = AGENT_PORT
CERT = "/etc/funops-agent/tls/agent.crt"


@pytest.fixture(scope="module")
def repo(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reset(lab)
    yield make_repo(lab, tmp_path_factory.mktemp("agent") / "repo", transport="agent")
    reset(lab)


def _pins(repo: Path) -> dict[str, str]:
    return dict(line.split() for line in (repo / "agent_known_hosts").read_text().splitlines())


def test_install_pins_the_certificate_the_node_made(lab: Lab, repo: Path) -> None:
    for node in lab.nodes:
        address = node.address
        der_sha = lab.exec(
            node, f"openssl x509 -in {CERT} -outform der | sha256sum | cut -c1-64"
        ).stdout.strip()
        assert _pins(repo)[f"{address}:{PORT}"] == f"sha256:{der_sha}"
        mode = lab.exec(
            node, "stat -c %a /etc/funops-agent/tls/agent.key /etc/funops-agent/token.sha256"
        ).stdout
        assert mode.split() == ["600", "600"]
    assert oct((repo / ".funops" / "agent" / "node1.token").stat().st_mode & 0o777) == "0o600"


def test_the_agent_runs_from_its_zip_compiled_by_the_nodes_python(lab: Lab, repo: Path) -> None:
    """zipmain.py: a first start (no cache yet) makes the copy and the standard library's -OO
    bytecode in the cache directory, and runs again from it with the unit's own command line."""
    for node in lab.nodes:
        lab.exec(node, "rm -rf /var/cache/funops-agent/*; systemctl restart funops-agent", check=True)
        found = lab.exec(
            node,
            "ls /var/cache/funops-agent/; ls /var/cache/funops-agent/bytecode/usr/lib/python3*/http/; "
            "tr '\\0' ' ' < /proc/$(systemctl show -p MainPID --value funops-agent)/cmdline",
        ).stdout
        assert re.search(r"^[0-9a-f]{24}\.[0-9]+\.cpython-3[0-9]+\.pyz$", found, re.M), found
        assert re.search(r"^server\.cpython-3[0-9]+\.opt-2\.pyc$", found, re.M), found
        assert " -I -S -OO -X pycache_prefix=/var/cache/funops-agent/bytecode " in found, found


def test_install_again_changes_nothing_and_restarts_nothing(lab: Lab, repo: Path) -> None:
    pid = lab.exec("node1", "systemctl show -p MainPID --value funops-agent").stdout.strip()
    set_transport(repo, "ssh")
    done = funops(repo, "agent", "install", "node1")
    set_transport(repo, "agent")
    assert done.returncode == 0 and "up to date" in done.stdout, done.stderr
    assert lab.exec("node1", "systemctl show -p MainPID --value funops-agent").stdout.strip() == pid


def test_the_example_converges_through_the_agent(lab: Lab, repo: Path) -> None:
    code, evs, err = apply(repo)
    assert code == 0, err
    assert {e["node"] for e in evs if e["event"] == "node-done" and e.get("status") == "succeeded"} == {
        n.name for n in lab.nodes
    }
    plan = funops(repo, "plan", "--no-diff")
    assert plan.returncode == 0, plan.stdout + plan.stderr  # a no-op, as over ssh
    drift = funops(repo, "drift")
    assert drift.returncode == 0, drift.stdout + drift.stderr
    history = funops(repo, "history", "web")
    assert history.returncode == 0 and "web-1" in history.stdout, history.stderr
    rows = json.loads(funops(repo, "nodes", "-o", "json").stdout)["nodes"]
    pins = _pins(repo)
    for row in rows:
        assert row["reachable"] and row["agent"], row
        assert row["fingerprint"] == pins[f"{row['address']}:{PORT}"]
        assert set(row["capabilities"]) == {"docker", "nginx", "systemd"}


def test_logs_follow_over_the_agent_shows_a_line_written_after_it_started(lab: Lab, repo: Path) -> None:
    proc = start(repo, "logs", "web", "-f", "--lines", "1", "--node", "node2")
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:  # readline would block the test past any deadline
        for line in out:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()

    def wait_for(text: str) -> None:
        deadline = time.monotonic() + 20
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no line with {text!r} from logs -f over the agent"
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            assert line.startswith("node2 | "), line
            if text in line:
                return

    try:
        wait_for("")  # the one line from before (-n 1): the stream is open
        marker = f"/written-after-start-{time.time_ns()}"
        http_get(f"http://{lab.node('node2').address}:8080{marker}")  # http.server logs it to its journal
        wait_for(marker)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
    except (AssertionError, subprocess.TimeoutExpired):
        proc.kill()
        raise
    assert "Traceback" not in proc.stderr.read()
    deadline = time.monotonic() + 5  # the agent sees the connection close and ends the reader
    while lab.exec("node2", "pgrep -f '[j]ournalctl.*--follow' || true").stdout.strip():
        assert time.monotonic() < deadline, "journalctl -f outlived logs -f on node2"
        time.sleep(0.2)


def test_the_agent_killed_mid_apply_leaves_a_recorded_state_and_the_rerun_converges(
    lab: Lab, repo: Path
) -> None:
    def bump(docs: list[dict]) -> None:
        docs[0]["spec"]["version"] = "2"
        docs[0]["spec"]["strategy"] = {"batchSize": "100%", "maxFailures": 1, "minHealthySeconds": 4}

    edit_yaml(repo / "manifests" / "web.yaml", bump)
    proc = start(repo, "apply", "--auto-approve", "-o", "json")
    restarted = "restart unit:web.service"
    wait_for_event(proc, lambda e: e["event"] == "task" and e["node"] == "node3" and e["task"] == restarted)
    lab.exec("node3", "systemctl kill -s KILL funops-agent")  # during the 4 s health hold
    out, err = proc.communicate(timeout=180)
    done = [json.loads(x) for x in out.splitlines() if x.startswith("{")][-1]
    assert done["outcomes"]["node1"] == done["outcomes"]["node2"] == "succeeded"
    assert done["outcomes"]["node3"] in ("failed", "unreachable") and proc.returncode in (3, 4), err
    code, _, err = apply(repo)  # the agent is back (Restart=always): the rerun finishes node3
    assert code == 0, err
    assert funops(repo, "plan", "--no-diff").returncode == 0


def test_an_agent_restarted_while_its_connection_is_idle_is_no_failure(lab: Lab, repo: Path) -> None:
    """The kept-alive connection the restart closed is seen closed before node3's batch uses it."""

    def bump(docs: list[dict]) -> None:
        docs[0]["spec"]["version"] = "3"
        docs[0]["spec"]["strategy"] = {"batchSize": 1, "maxFailures": 0, "minHealthySeconds": 2}

    edit_yaml(repo / "manifests" / "web.yaml", bump)
    proc = start(repo, "apply", "--auto-approve", "-o", "json")
    wait_for_event(proc, lambda e: e["event"] == "node-start" and e["node"] == "node1")
    lab.exec("node3", "systemctl restart funops-agent", check=True)  # node3 waits for batch 3
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err + out[-2000:]
    done = [json.loads(x) for x in out.splitlines() if x.startswith("{")][-1]
    assert done["outcomes"]["node3"] == "succeeded"


def test_an_agent_restarted_with_a_task_in_flight_fails_its_node_naming_it(lab: Lab, repo: Path) -> None:
    """The health check in flight on node3 is lost with the agent: not sent again (the restarted agent
    does not know its id; a task may not be idempotent): node3 is unreachable, exit 4, named; the
    rerun converges it."""

    def bump(docs: list[dict]) -> None:
        docs[0]["spec"]["version"] = "4"
        docs[0]["spec"]["strategy"] = {"batchSize": "100%", "maxFailures": 1, "minHealthySeconds": 4}

    edit_yaml(repo / "manifests" / "web.yaml", bump)
    proc = start(repo, "apply", "--auto-approve", "-o", "json")
    restarted = "restart unit:web.service"
    wait_for_event(proc, lambda e: e["event"] == "task" and e["node"] == "node3" and e["task"] == restarted)
    lab.exec("node3", "systemctl restart funops-agent", check=True)  # during the 4 s health hold
    out, err = proc.communicate(timeout=180)
    evs = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    assert proc.returncode == 4, err + out[-2000:]
    assert evs[-1]["outcomes"] == {"node1": "succeeded", "node2": "succeeded", "node3": "unreachable"}
    error = next(e["error"] for e in evs if e["event"] == "node-done" and e["node"] == "node3")
    assert error.startswith("node node3: the agent connection was lost with tasks in flight"), error
    assert "not retried" in error
    code, _, err = apply(repo)
    assert code == 0, err
    assert funops(repo, "plan", "--no-diff").returncode == 0


def test_a_replaced_certificate_is_refused_until_pinned_again(lab: Lab, repo: Path) -> None:
    key = "/etc/funops-agent/tls/agent.key"
    lab.exec("node2", f"rm -f {CERT} {key}; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                      f"-nodes -days 1 -subj /CN=x -keyout {key} -out {CERT} 2>/dev/null; "
                      "systemctl restart funops-agent")  # fmt: skip
    plan = funops(repo, "plan", "-o", "json")
    assert plan.returncode == 1 and "unreachable: node2" in plan.stderr
    error = {n["name"]: n.get("error") for n in json.loads(plan.stdout)["nodes"]}["node2"]
    assert "node node2: the agent's certificate" in error and "does not match the pinned" in error
    set_transport(repo, "ssh")
    assert funops(repo, "agent", "install", "node2").returncode == 0  # read back over verified ssh
    set_transport(repo, "agent")
    assert funops(repo, "plan", "--no-diff").returncode == 0


def test_a_rotated_token_replaces_the_old_one(lab: Lab, repo: Path) -> None:
    old = (repo / ".funops" / "agent" / "node3.token").read_text().strip()
    set_transport(repo, "ssh")
    assert funops(repo, "agent", "rotate-token", "node3").returncode == 0
    set_transport(repo, "agent")
    assert (repo / ".funops" / "agent" / "node3.token").read_text().strip() != old
    assert funops(repo, "plan", "--no-diff", "--node", "node3").returncode == 0
    conn = http.client.HTTPSConnection(
        lab.node("node3").address, PORT, context=ssl._create_unverified_context()
    )
    conn.request(
        "POST", "/v1/hello", body=b"{}", headers={"Authorization": f"Bearer {old}", "X-Funops-Protocol": "1"}
    )
    assert conn.getresponse().status == 401
    assert (
        hashlib.sha256(old.encode()).hexdigest()
        not in lab.exec("node3", "cat /etc/funops-agent/token.sha256").stdout
    )


def test_upgrade_goes_in_health_gated_batches(lab: Lab, repo: Path) -> None:
    set_transport(repo, "ssh")
    done = funops(repo, "agent", "upgrade", "node1", "node2", "node3", "--batch-size", "2")
    set_transport(repo, "agent")
    assert done.returncode == 0, done.stderr
    assert "batch 1: node1" in done.stdout and "batch 2: node3" in done.stdout and "healthy" in done.stdout
