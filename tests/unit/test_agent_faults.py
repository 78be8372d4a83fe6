"""The agent restarted under a controller (`systemctl restart funops-agent` during a run), against a
real agent process on a loopback address: a kept-alive connection it closed while idle is replaced
before anything is sent on it; a read in flight is sent again once the agent is back; tasks in
flight are not (a restarted agent has forgotten their ids, so a retry could run them twice): an
error names the node."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from funops.tasks import model as m
from funops.transports import TransportError
from funops.transports.base import CommandResult
from tests.unit.agentproc import AgentProcess

ADDRESS = "127.0.3.79"


# A stand-in journalctl on the agent's PATH: slow (3 s) the first time after $SLOW_MARK appears.
JOURNALCTL = """#!/bin/sh
if [ -e "$SLOW_MARK" ]; then rm -f "$SLOW_MARK"; sleep 3; fi
echo "read by $$"
"""


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentProcess]:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "journalctl").write_text(JOURNALCTL)
    (tmp_path / "bin" / "journalctl").chmod(0o755)
    env = {"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "SLOW_MARK": str(tmp_path / "slow")}
    process = AgentProcess(tmp_path, ADDRESS, env)
    process.start()
    yield process
    process.stop()


def test_a_connection_closed_by_a_restart_while_idle_is_replaced_before_use(
    agent: AgentProcess, tmp_path: Path
) -> None:
    transport = agent.transport()
    assert transport.hello()["protocol"] == [1, 2]  # the kept-alive connection
    agent.stop()
    agent.start()
    # Tasks are never resent after a loss: this one goes out on a fresh connection in the first place.
    results, run = transport.run_tasks([m.RemoveDirectory(str(tmp_path / "nothing-here"))])
    assert run.exit_code == 0 and [r.exit_code for r in results] == [0]
    agent.stop()
    agent.start()
    assert transport.hello()["protocol"] == [1, 2]  # a read, likewise
    transport.close()


def test_tasks_in_flight_when_the_agent_restarts_are_not_sent_again(agent: AgentProcess) -> None:
    transport = agent.transport()
    transport.hello()
    errors: list[TransportError] = []

    def wait_for_idle() -> None:  # this very connection is established to the port: it waits 4 s
        try:
            transport.call(m.AwaitIdle((agent.port,), 4))
        except TransportError as exc:
            errors.append(exc)

    worker = threading.Thread(target=wait_for_idle)
    worker.start()
    watcher = agent.transport()
    deadline = time.monotonic() + 5
    while not watcher.status()["running"]:  # the task is on the agent
        assert time.monotonic() < deadline
        time.sleep(0.05)
    watcher.close()
    agent.stop()
    agent.start()
    worker.join(15)
    assert len(errors) == 1, "the task was sent again to the restarted agent"
    message = str(errors[0])
    assert message.startswith("node n1: the agent connection was lost with tasks in flight")
    assert "not retried" in message and "run again" in message
    assert transport.hello()["protocol"] == [1, 2]  # the transport itself goes on
    transport.close()


def test_a_read_in_flight_when_the_agent_restarts_is_retried_once_it_is_back(
    agent: AgentProcess, tmp_path: Path
) -> None:
    transport = agent.transport()
    transport.hello()
    mark = tmp_path / "slow"
    mark.write_text("")
    answers: list[object] = []

    def read() -> None:
        try:
            answers.append(transport.call(m.ReadLogs(units=("web.service",), lines=1)))
        except TransportError as exc:
            answers.append(exc)

    worker = threading.Thread(target=read)
    worker.start()
    deadline = time.monotonic() + 5
    while mark.exists():  # the read is running on the agent
        assert time.monotonic() < deadline
        time.sleep(0.05)
    agent.stop()
    agent.start()
    worker.join(15)
    (answer,) = answers
    assert isinstance(answer, CommandResult), answer  # not "cannot reach the agent" mid-restart
    assert answer.exit_code == 0 and answer.text().startswith("read by ")
    transport.close()
