"""`funops exec`: the RunCommand task's rendering, the targets, refusals and the journal (the real
runs on nodes: tests/lab/test_day_two.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from funops.apply import journal
from funops.node.shell import render
from funops.tasks import model as m
from funops.tasks.values import ValueProblem

from .test_agent import agent  # noqa: F401 (the fixture: a real agent process)
from .test_plan import funops

HOSTILE = ["printf", "[%s]\\n", "a b", "$(touch /tmp/funops-pwned)", "; rm -rf /", "'quoted'", "*"]


def test_each_argument_stays_one_word() -> None:
    step = render(m.RunCommand(tuple(HOSTILE)), lambda p: p)
    done = subprocess.run(["/bin/sh", "-c", step.script], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == [f"[{a}]" for a in HOSTILE[2:]]
    assert not Path("/tmp/funops-pwned").exists()


def test_the_exit_code_is_the_commands() -> None:
    step = render(m.RunCommand(("sh", "-c", "echo out; echo err >&2; exit 7")), lambda p: p)
    done = subprocess.run(["/bin/sh", "-c", step.script], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (7, "out\n", "err\n")


@pytest.mark.parametrize("argv", [(), ("",), ("ls", "a\nb")])
def test_a_bad_command_is_refused_as_it_is_made(argv: tuple[str, ...]) -> None:
    with pytest.raises(ValueProblem, match=r"RunCommand\.argv"):
        m.RunCommand(argv)


def test_exec_targets_the_apps_nodes_and_journals_the_run(example: Path) -> None:
    done = funops("exec", "-C", str(example), "-o", "json", "docs", "--", "uptime")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["formatVersion"] == 1 and doc["app"] == "docs" and doc["command"] == ["uptime"]
    assert [n["node"] for n in doc["nodes"]] == ["node2", "node3"]  # docs: role=app
    assert all(n["stdout"] == "not run on a local node\n" for n in doc["nodes"])  # host-wide
    (entry,) = journal.entries(example / ".funops" / "journal.jsonl")
    assert (
        entry["event"] == "exec"
        and entry["command"] == ["uptime"]
        and set(entry["nodes"]) == {"node2", "node3"}
    )
    assert entry["who"] and entry["when"]


def test_exec_by_node_selector_narrows_and_refuses_what_matches_nothing(example: Path) -> None:
    done = funops("exec", "-C", str(example), "-o", "json", "--node", "node[12]", "--", "true")
    assert [n["node"] for n in json.loads(done.stdout)["nodes"]] == ["node1", "node2"]
    done = funops("exec", "-C", str(example), "-o", "json", "docs", "--node", "node3", "--", "true")
    assert [n["node"] for n in json.loads(done.stdout)["nodes"]] == ["node3"]
    done = funops("exec", "-C", str(example), "docs", "--node", "node1", "--", "true")
    assert done.returncode == 1 and "does not run on node1" in done.stderr
    done = funops("exec", "-C", str(example), "wbe", "--", "true")
    assert done.returncode == 1 and "did you mean 'web'" in done.stderr
    done = funops("exec", "-C", str(example), "web")
    assert done.returncode == 1 and "no command" in done.stderr
    assert len(journal.entries(example / ".funops" / "journal.jsonl")) == 2  # the refused: not run


def test_exec_is_refused_on_pull_nodes(example: Path) -> None:
    inventory = example / "inventory" / "demo.yaml"
    text = inventory.read_text()
    assert "  - name: node3\n" in text
    pull = "    agent: {url: 'https://127.0.0.1:7391'}\n    pull: {store: 'file:///srv/store'}\n"
    inventory.write_text(text.replace("  - name: node3\n", "  - name: node3\n" + pull))
    done = funops("exec", "-C", str(example), "docs", "--", "true")
    assert done.returncode == 1 and "node3: in pull mode" in done.stderr, done.stderr
    assert not (example / ".funops").exists()


def test_an_agent_runs_the_command_as_values(agent: dict, tmp_path: Path) -> None:  # noqa: F811
    """Through a real agent process (tests/unit/test_agent.py's): output and exit code come back,
    and a hostile argument stays one word."""
    from .test_agent import _transport

    transport = _transport(agent)
    try:
        marker = tmp_path / "pwned"
        done = transport.call(m.RunCommand(("sh", "-c", 'echo "[$1]"; exit 5', "sh", f"x; touch {marker}")))
        assert done.exit_code == 5 and done.stdout == f"[x; touch {marker}]\n".encode()
        assert not marker.exists()
    finally:
        transport.close()
