"""A batch's results on the agent's wire (issue 29): typed, a versioned JSON document (node/wire.py),
decoded into the same StepResults the sh bundle's parser gives, every field checked. A malformed
document is a TransportError naming the node and the field, never a crash; an older controller still
gets the marker text it parses, and an older agent is refused with the way out."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from funops.node import native, wire
from funops.node.shell import bundle_text, parse_bundle, run_sh
from funops.tasks import model as m
from funops.tasks.results import StepResult
from funops.transports import TransportError
from funops.transports.agent import AgentTransport
from tests.unit.agentproc import AgentProcess
from tests.unit.test_agent import ADDRESS, _raw

STEPS = [
    StepResult(0, 0, 0.012, ""),
    StepResult(1, 0, 1.5, "wrote /etc/x\nlines\tand tabs, ünïcödé, \ufffd"),
    StepResult(2, 0, 0.0, "", not_run="not run on a local node"),
    StepResult(3, -9, 3600.0, "killed"),
]


def _wired(steps: list[StepResult]) -> Any:
    return json.loads(json.dumps(wire.encode_steps(steps)))


def test_results_cross_the_wire_unchanged() -> None:
    assert wire.decode_steps(_wired(STEPS), len(STEPS)) == STEPS
    assert wire.decode_steps(_wired([]), 3) == []  # a batch refused before its first step
    assert wire.decode_steps({**_wired(STEPS[:1]), "replayed": True}, 1) == STEPS[:1]  # the reply's own key


def test_they_read_as_the_sh_bundles_marker_text_reads() -> None:
    """What an older controller gets (bundle_text) parses to the same steps; not_run is the local
    transport's, never an agent's."""
    ran = [s for s in STEPS if not s.not_run]
    assert parse_bundle(bundle_text(ran)) == ran


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ([], "expected an object, got list"),
        ({"steps": []}, "missing field version"),
        ({"version": 2, "steps": []}, "version: 2 is not one this funops reads (1)"),
        ({"version": "1", "steps": []}, "version: '1' is not one"),
        ({"version": True, "steps": []}, "version: True is not one"),
        ({"version": 1}, "missing field steps"),
        ({"version": 1, "steps": {}}, "steps: expected a list"),
        ({"version": 1, "steps": [{}] * 3}, "steps: 3 results for 2 tasks sent"),
        ({"version": 1, "steps": ["0 0 1"]}, "steps[0]: expected an object, got str"),
        ({"version": 1, "steps": [{"index": 0, "exit": 0, "output": ""}]}, "steps[0]: missing field seconds"),
        ({"version": 1, "steps": [{"index": 0, "exit": "0", "seconds": 0, "output": ""}]},
         "steps[0].exit: expected int, got str"),
        ({"version": 1, "steps": [{"index": 0, "exit": False, "seconds": 0, "output": ""}]},
         "steps[0].exit: expected int, got bool"),
        ({"version": 1, "steps": [{"index": 0, "exit": 0, "seconds": None, "output": ""}]},
         "steps[0].seconds: expected float, got NoneType"),
        ({"version": 1, "steps": [{"index": 0, "exit": 0, "seconds": -1, "output": ""}]},
         "steps[0].seconds: -1 is not a duration"),
        ({"version": 1, "steps": [{"index": 0, "exit": 0, "seconds": float("inf"), "output": ""}]},
         "steps[0].seconds: inf is not a duration"),
        ({"version": 1, "steps": [{"index": 0, "exit": 0, "seconds": 0, "notRun": 1}]},
         "steps[0].notRun: expected str, got int"),
        ({"version": 1, "steps": [{"index": 0, "exit": 0, "seconds": 0, "output": 7}]},
         "steps[0].output: expected str, got int"),
        ({"version": 1, "steps": [{"index": 0, "exit": 0, "seconds": 0, "output": "", "stdout": ""}]},
         "steps[0]: unknown field(s) stdout"),
        ({"version": 1, "steps": [{"index": 1, "exit": 0, "seconds": 0, "output": ""}]},
         "steps[0].index: 1 out of order"),
    ],
)  # fmt: skip
def test_a_malformed_document_is_refused_naming_the_field(doc: Any, field: str) -> None:
    with pytest.raises(wire.ResultError) as caught:
        wire.decode_steps(json.loads(json.dumps(doc)), 2)
    assert str(caught.value).startswith(field), caught.value


def test_output_that_is_not_utf8_keeps_the_replacement_rule(tmp_path: Path) -> None:
    """Bytes of a command's output that are not UTF-8 become U+FFFD on the node (as before); so do
    the bytes of a path in a message (surrogate escapes), and a lone surrogate a document carries."""
    run = lambda s, i, t: run_sh(s, i, t, None)  # noqa: E731
    (step,) = native.run_tasks([m.RunCommand(("printf", "a\\377b"))], str, run, 30)
    assert step.output == "a\ufffdb"
    assert wire.utf8_text("dir/\udcff") == "dir/\ufffd" and wire.utf8_text("\ud800") == "\ufffd"
    doc = json.loads('{"version": 1, "steps": [{"index": 0, "exit": 1, "seconds": 0, "output": "x\\ud800"}]}')
    assert wire.decode_steps(doc, 1)[0].output == "x\ufffd"


# ---- over a real agent process ---------------------------------------------------------------------


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentProcess]:
    process = AgentProcess(tmp_path, ADDRESS)
    process.start()
    yield process
    process.stop()


def test_a_batch_comes_back_typed_and_an_older_controller_gets_its_marker_text(
    agent: AgentProcess, tmp_path: Path
) -> None:
    batch = [
        m.RemoveDirectory(str(tmp_path / "nothing-here")),
        m.RunCommand(("sh", "-c", "echo out; exit 3")),
    ]
    transport = agent.transport()
    results, run = transport.run_tasks(batch)
    transport.close()
    assert run.exit_code == 0 and [(r.index, r.exit_code, r.output) for r in results] == [
        (0, 0, ""),
        (1, 3, "out"),
    ]
    body = {"taskId": _task_id(), "batch": True, "tasks": [wire.encode(t) for t in batch]}
    served = {"port": agent.port}
    status, typed = _raw(served, "/v1/tasks", json.dumps(body).encode(), **{"X-Funops-Protocol": "2"})
    assert status == 200 and typed["version"] == 1 and "stdout" not in typed
    body["taskId"] = _task_id()
    status, text = _raw(served, "/v1/tasks", json.dumps(body).encode(), **{"X-Funops-Protocol": "1"})
    assert status == 200 and "version" not in text
    old = parse_bundle(base64.b64decode(text["stdout"]).decode())
    assert [(r.index, r.exit_code, r.output) for r in old] == [(0, 0, ""), (1, 3, "out")]


def test_an_older_agent_is_refused_naming_the_node_and_the_way_out(tmp_path: Path) -> None:
    """An agent of protocol 1 only (before typed results): this funops sends 2; the agent says 426
    naming both, and the run fails with the node and `funops agent upgrade`."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import funops.node\nfunops.node.PROTOCOL = (1, 1)\n")
    old = AgentProcess(tmp_path, ADDRESS, env={"PYTHONPATH": str(site)})
    old.start()
    try:
        transport = old.transport()
        skew = r"node n1: version skew: .*speaks protocol 1\.\.1, the client 2; run `funops agent upgrade n1`"
        with pytest.raises(TransportError, match=skew):
            transport.run_tasks([m.DaemonReload()])
        transport.close()
    finally:
        old.stop()


def test_a_malformed_reply_fails_the_node_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Beneath the real exchanges above: whatever an agent answers, a bad document is a TransportError
    naming the node and the field (the executor reports the node; nothing crashes)."""
    reply = {
        "version": 1,
        "steps": [{"index": 0, "exit": "0", "seconds": 0.1, "output": ""}],
        "replayed": False,
    }
    monkeypatch.setattr(AgentTransport, "_post", lambda self, what, body, timeout: reply)
    with pytest.raises(
        TransportError, match=r"^node n1: its agent's task results: steps\[0\]\.exit: expected int"
    ):
        AgentProcess(tmp_path, ADDRESS).transport().run_tasks([m.DaemonReload()])  # never started


def _task_id() -> str:
    return f"{int(time.time() * 1000)}-{secrets.token_hex(12)}"
