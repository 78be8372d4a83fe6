"""The agent's log stream (`funops logs -f` over the agent) against a real agent process on a loopback
address: the chunked framing, lines as they come, the cap on open streams, and the reader killed
when the client goes away. The node's journalctl is a stand-in on the agent's PATH (tail -f of a
file), so the test needs no systemd."""

from __future__ import annotations

import http.client
import json
import os
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from funops.node import wire
from funops.tasks import model as m
from funops.transports import TransportError
from funops.transports.agent import AgentTransport
from tests.unit.agentproc import AgentProcess
from tests.unit.test_agent import TOKEN

ADDRESS = "127.0.3.79"

# Follows (tail -f) or prints (then exit 3) the file $FAKE_LOG; its pid lands beside it.
JOURNALCTL = """#!/bin/sh
echo $$ >> "$FAKE_LOG.pids"
case "$*" in *--follow*) exec tail -n +1 -f "$FAKE_LOG";; esac
cat "$FAKE_LOG"; exit 3
"""
FOLLOW = m.ReadLogs(units=("web.service",), follow=True)


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    here = tmp_path_factory.mktemp("agent-stream")
    (here / "bin").mkdir()
    (here / "bin" / "journalctl").write_text(JOURNALCTL)
    (here / "bin" / "journalctl").chmod(0o755)
    log = here / "app.log"
    log.write_text("first line\nsecond line\n")
    env = {"PATH": f"{here / 'bin'}:{os.environ['PATH']}", "FAKE_LOG": str(log)}
    process = AgentProcess(here, ADDRESS, env)
    process.start()
    yield {"port": process.port, "log": log, "process": process}
    process.stop()


def _transport(agent: dict[str, Any]) -> AgentTransport:
    return agent["process"].transport()


def _raw_stream(
    agent: dict[str, Any], task: m.Task
) -> tuple[http.client.HTTPSConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPSConnection(
        ADDRESS, agent["port"], context=ssl._create_unverified_context(), timeout=10
    )
    conn.request("POST", "/v1/stream", body=json.dumps({"task": wire.encode(task)}).encode(),
                 headers={"Authorization": f"Bearer {TOKEN}", "X-Funops-Protocol": "1"})  # fmt: skip
    return conn, conn.getresponse()


class _Follower:
    """`transport.stream(FOLLOW)` in a thread, its lines collected."""

    def __init__(self, agent: dict[str, Any]) -> None:
        self.transport = _transport(agent)
        self.lines: list[str] = []
        self.outcome: list[Any] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.outcome.append(self.transport.stream(FOLLOW, self.lines.append))
        except TransportError as exc:
            self.outcome.append(exc)

    def wait_for(self, line: str, seconds: float = 10) -> None:
        deadline = time.monotonic() + seconds
        while line not in self.lines:
            assert time.monotonic() < deadline and not self.outcome, (self.lines, self.outcome)
            time.sleep(0.05)

    def stop(self) -> Any:
        self.transport.close()
        self.thread.join(10)
        assert not self.thread.is_alive()
        return self.outcome[0]


def _pids(agent: dict[str, Any]) -> list[int]:
    path = Path(f"{agent['log']}.pids")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"


def test_a_finite_stream_is_chunked_lines_then_the_exit_code(agent: dict[str, Any]) -> None:
    _, response = _raw_stream(agent, m.ReadLogs(units=("web.service",), lines=5))
    assert response.status == 200 and response.getheader("Transfer-Encoding") == "chunked"
    assert response.read() == b"| first line\n| second line\n= 3\n"


def test_only_a_logs_task_streams(agent: dict[str, Any]) -> None:
    _, response = _raw_stream(agent, m.StopUnit("web.service"))
    assert response.status == 400 and "ReadLogs task only" in json.loads(response.read())["error"]


def test_follow_shows_lines_written_after_it_started_and_close_kills_the_reader(
    agent: dict[str, Any],
) -> None:
    follower = _Follower(agent)
    follower.wait_for("second line")
    with agent["log"].open("a") as f:
        f.write("written later\n")
    follower.wait_for("written later")
    reader = _pids(agent)[-1]
    assert _alive(reader)
    assert follower.stop() == 0  # ended by close(): no error
    deadline = time.monotonic() + 5
    while _alive(reader):  # the agent saw the connection close and ended the reader
        assert time.monotonic() < deadline, f"the reader {reader} outlived its stream"
        time.sleep(0.05)


def test_streams_are_capped_and_a_worker_stays_free_for_plans(agent: dict[str, Any]) -> None:
    followers = [_Follower(agent) for _ in range(2)]  # workers 4: at most 2 streams
    try:
        for follower in followers:
            follower.wait_for("first line")
        with pytest.raises(TransportError, match="node n1: the agent answered 503: 2 log streams are open"):
            _transport(agent).stream(FOLLOW, print)
        transport = _transport(agent)
        assert transport.hello()["protocol"] == [1, 2]  # a plan's request is still served
        transport.close()
    finally:
        for follower in followers:
            assert follower.stop() == 0
    deadline = time.monotonic() + 5  # the agent gives the slots back as it sees the connections close
    while True:
        third = _Follower(agent)
        third.thread.join(0.5)
        if not third.outcome or time.monotonic() > deadline:
            break
    third.wait_for("first line")
    assert third.stop() == 0


def test_a_client_that_vanishes_without_reading_leaves_no_reader(agent: dict[str, Any]) -> None:
    before = len(_pids(agent))
    conn, response = _raw_stream(agent, FOLLOW)
    assert response.status == 200
    deadline = time.monotonic() + 5
    while len(_pids(agent)) == before:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    reader = _pids(agent)[-1]
    response.close()  # the socket closed, nothing read: as a killed controller
    conn.close()
    deadline = time.monotonic() + 5
    while _alive(reader):
        assert time.monotonic() < deadline, f"the reader {reader} outlived its stream"
        time.sleep(0.05)
