"""Issue 12: `funops logs` — which nodes are asked, and the command each node runs (quoted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from funops.load.loader import load_project
from funops.load.project import Project
from funops.node.shell import render
from funops.nodes.logs import LogsError, Since, log_nodes, logs_task, parse_since
from funops.tasks.model import ReadLogs
from funops.tasks.values import ValueProblem
from funops.transports.local import LocalTransport
from tests.unit.task_samples import unchecked


@pytest.fixture
def project(example: Path) -> Project:
    return load_project(example)


def script(task: ReadLogs) -> str:
    return render(task, lambda p: p).script


def test_nodes_follow_the_apps_selector(project: Project) -> None:
    assert log_nodes(project, "web") == ["node1", "node2", "node3"]
    assert log_nodes(project, "api") == ["node2", "node3"]  # role: app
    assert log_nodes(project, "report") == ["node1"]  # role: edge
    assert log_nodes(project, "web", ["node2"]) == ["node2"]
    assert log_nodes(project, "web", ["node[13]"]) == ["node1", "node3"]
    assert log_nodes(project, "web", ["role=app"]) == ["node2", "node3"]


@pytest.mark.parametrize(
    ("app", "only", "message"),
    [
        ("nope", None, "unknown app 'nope'; the apps in this repo: api, docs, legacy, report, web"),
        ("legacy", None, "is a proxy"),
        ("web", ["node9"], "unknown node 'node9'"),
        ("report", ["node2"], "report does not run on node2 (its nodes: node1)"),
    ],
)
def test_bad_selection_is_a_clear_error(
    project: Project, app: str, only: list[str] | None, message: str
) -> None:
    with pytest.raises(LogsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        log_nodes(project, app, only)


def test_systemd_and_job_apps_read_the_journal(project: Project) -> None:
    web = script(logs_task(project, "web", Since(seconds=600), 20, True))
    assert web == (
        "exec env SYSTEMD_COLORS=0 journalctl --no-pager --quiet --output short-iso --unit web.service "
        "--since -600s --lines 20 --follow 2>&1\n"
    )
    job = script(logs_task(project, "report", Since(time="2026-11-25T08:00:00"), None, False))
    assert "--unit report.service --unit report.timer --since '2026-11-25 08:00:00' 2>&1" in job
    assert "--follow" not in job and "--lines" not in job


def test_container_apps_read_docker_logs(project: Project) -> None:
    api = script(logs_task(project, "api", Since(seconds=30), 5, True))
    assert api == (
        "docker container inspect api >/dev/null 2>&1 || exit 0\n"
        "exec docker logs --timestamps --since 30s --tail 5 --follow api 2>&1\n"
    )
    assert "--since 2026-11-25T08:00:00 " in script(
        logs_task(project, "api", Since(time="2026-11-25T08:00:00"), None, False)
    )


def test_hostile_names_are_refused_and_would_be_quoted() -> None:
    with pytest.raises(ValueProblem, match=r"ReadLogs\.container: 'a b;rm -rf /' is not a container name"):
        ReadLogs(container="a b;rm -rf /")
    with pytest.raises(ValueProblem, match=r"ReadLogs\.since_time"):
        ReadLogs(container="api", since_time="x'y")
    task = unchecked(ReadLogs, units=(), container="a b;rm -rf /", since_time="x'y", since_seconds=None)
    assert "'a b;rm -rf /'" in script(task) and "'x'\"'\"'y'" in script(task)


@pytest.mark.parametrize(
    ("value", "since"),
    [
        ("30s", Since(seconds=30)),
        ("10m", Since(seconds=600)),
        ("2h", Since(seconds=7200)),
        ("1d", Since(seconds=86400)),
        ("2026-11-25", Since(time="2026-11-25T00:00:00")),
        ("2026-11-25T08:00", Since(time="2026-11-25T08:00:00")),
        ("2026-11-25 08:00:30", Since(time="2026-11-25T08:00:30")),
    ],
)
def test_since(value: str, since: Since) -> None:
    assert parse_since(value) == since


@pytest.mark.parametrize("value", ["yesterday", "-1h", "10", "1w", "2026-13-01", "; rm -rf /", "1h; id"])
def test_bad_since_is_refused(value: str) -> None:
    with pytest.raises(LogsError, match="--since"):
        parse_since(value)


def test_local_stream_delivers_lines_and_the_exit_code(tmp_path: Path, project: Project) -> None:
    transport = LocalTransport(project.nodes["node1"].model_copy(update={"root": None}), tmp_path)
    got: list[str] = []
    code = transport.stream_script("printf 'a\\nb\\n'; echo oops >&2; printf c; exit 3", got.append)
    assert (code, got) == (3, ["a", "b", "oops", "c"])


def test_cli_unknown_app_and_bad_since(example: Path) -> None:
    def funops(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "funops", "logs", *args, "-C", str(example)],
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
        )  # fmt: skip

    done = funops("nope")
    assert done.returncode == 1 and "unknown app 'nope'" in done.stderr and "Traceback" not in done.stderr
    done = funops("web", "--since", "yesterday")
    assert done.returncode == 1 and "--since 'yesterday'" in done.stderr


def test_following_over_an_unpinned_agent_is_refused_naming_the_node(tmp_path: Path) -> None:
    """Following goes over the agent's /v1/stream (tests/unit/test_agent_stream.py); like any request,
    only to a pinned certificate."""
    from funops.model.inventory import Node
    from funops.settings import Settings
    from funops.transports import TransportError
    from funops.transports.agent import AgentTransport

    node = Node.model_validate(
        {"name": "a1", "address": "127.0.3.77", "transport": "agent",
         "agent": {"url": "https://127.0.3.77:1", "tokenFromEnv": "T"}}
    )  # fmt: skip
    transport = AgentTransport(node, Settings(), tmp_path)
    with pytest.raises(TransportError, match=r"node a1: no pinned certificate for 127\.0\.3\.77:1"):
        transport.stream(ReadLogs(units=("web.service",), follow=True), print)
