"""The local transport under a root prefix: the node is a directory, never this machine's services."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from funops.model.inventory import Node
from funops.transports.local import LocalTransport
from tests.unit import shell_tasks as tasks


def test_a_local_root_node_never_reaches_the_hosts_services(tmp_path: Path) -> None:
    node = Node(name="n1", address="127.0.0.1", transport="local", root=str(tmp_path))
    transport = LocalTransport(node, tmp_path)
    try:
        for script in (
            "systemctl daemon-reload",
            "docker ps",
            "nginx -s reload",
            tasks.nginx_reload().script,
        ):
            done = transport.run(script)
            assert done.exit_code == 1, script
            assert b"a local node under a root prefix" in done.stderr, script
    finally:
        transport.close()


def test_host_wide_tasks_are_recorded_as_not_run_and_the_rest_run_in_order(tmp_path: Path) -> None:
    from funops.tasks import model as m
    from funops.transports.local import NOT_RUN

    node = Node(name="n1", address="127.0.0.1", transport="local", root=str(tmp_path))
    transport = LocalTransport(node, tmp_path)
    write = m.WriteFile("/etc/x", "", "0644", "report", "report", None, b"x\n")  # no such user here
    broken = m.WriteFile("/etc/x/y", "", "0644", "root", "root", None, b"y\n")  # /etc/x is a file
    try:
        batch = [m.EnsureUser("report"), write, m.DaemonReload(), m.StartUnit("web.service", True), broken,
                 m.NginxReload()]  # fmt: skip
        results, _ = transport.run_tasks(batch)
    finally:
        transport.close()
    got = [(r.index, r.exit_code, r.not_run) for r in results]
    assert got == [(0, 0, NOT_RUN), (1, 0, ""), (2, 0, NOT_RUN), (3, 0, NOT_RUN), (4, 1, "")]
    assert (tmp_path / "etc" / "x").read_bytes() == b"x\n"  # owned by whoever runs funops


# Paths of this machine that change by themselves (other engines, caches): not funops's doing.
VOLATILE = ("/var/lib/docker/", "/var/lib/containerd/", "/var/lib/systemd/", "/var/lib/apt/",
            "/var/lib/dpkg/", "/var/lib/dhcp/", "/var/lib/logrotate/", "/var/lib/private/")  # fmt: skip


def _changed_since(marker: Path) -> list[str]:
    done = subprocess.run(
        ["find", "/etc", "/usr", "/var/lib", "-xdev", "-newer", str(marker)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip  (unreadable paths are skipped: find goes on and says so on stderr)
    return [p for p in done.stdout.splitlines() if not p.startswith(VOLATILE) and "/__pycache__" not in p]


def _funops(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "funops", *args, "-C", str(repo)],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip


def test_the_example_goes_plan_apply_drift_rollback_on_local_nodes_touching_nothing_else(
    example: Path, tmp_path: Path
) -> None:
    """Issue 28: `apply` of the bundled example ran `useradd report` on this machine and could not
    finish (daemon-reload refused). Now every step exits 0 and only the repo's .funops/ changes."""
    marker = tmp_path / "marker"
    marker.touch()
    before = {p.relative_to(example): p.stat().st_mtime_ns for p in example.rglob("*")}
    steps = [("plan",), ("apply", "--auto-approve", "-o", "json"), ("plan",), ("drift",)]
    expected = [2, 0, 0, 0]
    done = [_funops(example, *args) for args in steps]
    assert [d.returncode for d in done] == expected, [d.stdout[-2000:] + d.stderr for d in done]
    evs = [json.loads(line) for line in done[1].stdout.splitlines() if line.startswith("{")]
    tasks = [e for e in evs if e["event"] == "task"]
    assert all(e["ok"] for e in tasks)
    not_run = {e["task"] for e in tasks if e.get("outcome") == "not-run"}
    assert {"ensure user report", "daemon-reload", "nginx -t", "reload nginx"} <= not_run, not_run
    assert all(e["reason"] == "not run on a local node" for e in tasks if e.get("outcome") == "not-run")
    assert "write file:/srv/web/index.html" not in not_run

    manifest = example / "manifests" / "web.yaml"
    manifest.write_text(manifest.read_text().replace('version: "1"', 'version: "2"', 1))
    index = example / ".funops" / "nodes" / "node1" / "srv" / "web" / "index.html"
    assert _funops(example, "apply", "--auto-approve").returncode == 0
    assert "web 2 on node1" in index.read_text()
    rolled = _funops(example, "rollback", "web", "--auto-approve")
    assert rolled.returncode == 0, rolled.stdout[-2000:] + rolled.stderr
    assert "web 1 on node1" in index.read_text()
    assert "not run on a local node" in rolled.stdout
    assert _funops(example, "drift").returncode == 0

    assert _changed_since(marker) == []  # no user, unit, site or package of this machine
    after = {p.relative_to(example): p.stat().st_mtime_ns for p in example.rglob("*")}
    touched = {p for p, t in after.items() if before.get(p) != t and p.parts[0] != ".funops"}
    assert touched == {Path("manifests/web.yaml")}
