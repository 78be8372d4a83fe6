"""Issue 12: `funops logs APP` against real nodes: each node's journal or container log, prefixed with
the node; --node restricts; -f ends cleanly on Ctrl-C, and the node's reader goes with it."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab

from .fleet import apply, funops, make_repo, reset, start


@pytest.fixture(scope="module")
def repo(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reset(lab)
    repo = make_repo(lab, tmp_path_factory.mktemp("logs") / "repo")
    code, evs, err = apply(repo)
    assert code == 0, err + json.dumps(evs[-1:])
    yield repo
    reset(lab)


def prefixes(stdout: str) -> set[str]:
    return {line.split(" | ", 1)[0].strip() for line in stdout.splitlines()}


def test_logs_of_a_systemd_app_come_from_each_of_its_nodes(lab: Lab, repo: Path) -> None:
    done = funops(repo, "logs", "web", "--since", "1h")
    assert done.returncode == 0, done.stderr
    assert prefixes(done.stdout) == {node.name for node in lab.nodes}
    assert "web.service" in done.stdout  # the journal's own lines about the unit are the app's too
    only = funops(repo, "logs", "web", "--node", "node1", "--lines", "3")
    assert only.returncode == 0, only.stderr
    assert prefixes(only.stdout) == {"node1"} and len(only.stdout.splitlines()) == 3


def test_logs_of_a_container_app(repo: Path) -> None:
    done = funops(repo, "logs", "api", "--lines", "5")
    assert done.returncode == 0, done.stderr
    assert prefixes(done.stdout) <= {"node2", "node3"}  # api runs on the app nodes only


def test_follow_ends_cleanly_on_ctrl_c(lab: Lab, repo: Path) -> None:
    proc = start(repo, "logs", "web", "-f", "--lines", "1", "--node", "node2")
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith("node2 | ")
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert code == 130
    assert "Traceback" not in proc.stderr.read()
    # The pty's hangup ends the node's journalctl -f: polled for a second, as long as it waited before.
    deadline = time.monotonic() + 1
    while (left := lab.exec("node2", "pgrep -f '[j]ournalctl.*--follow' || true").stdout.strip()) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert left == ""
