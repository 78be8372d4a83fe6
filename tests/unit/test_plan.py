"""`funops plan` on the local transport: exit codes, JSON contract, redaction, idempotence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema

from funops.plan.document import plan_schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "funops" / "schemas" / "plan.schema.json"
SECRET_VALUES = ["demo-token-not-a-real-secret", "BEGIN PRIVATE KEY"]


def funops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "funops", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )


def test_shipped_plan_schema_matches_the_models() -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == plan_schema(), "regenerate: funops schema plan > " + str(
        SCHEMA_FILE
    )


def test_plan_json_validates_against_the_shipped_schema(example: Path) -> None:
    done = funops("plan", "-C", str(example), "--output", "json")
    assert done.returncode == 2, done.stderr
    doc = json.loads(done.stdout)
    jsonschema.validate(doc, json.loads(SCHEMA_FILE.read_text()))
    assert doc["summary"]["create"] > 0 and doc["summary"]["nodesUnreachable"] == 0
    assert doc["versions"]["api"] == {"node2": "v1", "node3": "v2"}  # the 90/10 canary


def test_secrets_never_appear_in_any_output(example: Path) -> None:
    for output in ("text", "json", "markdown"):
        done = funops("plan", "-C", str(example), "--output", output)
        assert done.returncode == 2, done.stderr
        for secret in SECRET_VALUES:
            assert secret not in done.stdout + done.stderr, (output, secret)
    env_change = next(
        c
        for n in json.loads(funops("plan", "-C", str(example), "-o", "json").stdout)["nodes"]
        for c in n["changes"]
        if c["id"] == "file:/etc/funops/apps/api.env"
    )
    assert env_change["secret"] is True
    sha = next(f for f in env_change["fields"] if f["field"] == "sha256")
    # Issue 11: a secret's digest only keyed with the node's key; this node was never applied: no key yet.
    assert sha["new"] == "hmac:(no key yet)"


def test_markdown_plan_is_a_table_per_node(example: Path) -> None:
    done = funops("plan", "-C", str(example), "--output", "markdown")
    assert done.returncode == 2
    assert "| | resource | owner | change |" in done.stdout
    assert "#### node1 (127.0.1.1)" in done.stdout
    assert "| + | `file:/etc/nginx/conf.d/funops-site.conf` | ingress/site |" in done.stdout


def test_rendered_files_written_into_a_node_root_plan_as_unchanged(example: Path) -> None:
    for node in ("node1", "node2", "node3"):
        root = example / ".funops" / "nodes" / node
        done = funops("render", "-C", str(example), "--node", node, "--out", str(root))
        assert done.returncode == 0, done.stderr
    doc = json.loads(funops("plan", "-C", str(example), "-o", "json").stdout)
    pending_files = [c["id"] for n in doc["nodes"] for c in n["changes"] if c["kind"] == "file"]
    assert pending_files == []
    # What is left is what files cannot express here: units, jobs, containers, directories (owned by
    # a user this machine lacks) and artifacts (a release dir and its `current` link, which `render`
    # does not write) of this machine.
    assert {c["kind"] for n in doc["nodes"] for c in n["changes"]} <= {
        "unit",
        "container",
        "artifact",
        "job",
        "directory",
    }
    # 9 files on the edge node (the report job's .service and .timer among them), 6 on each app node
    assert doc["summary"]["unchanged"] == 21


def test_a_hand_edit_shows_as_a_field_level_update(example: Path) -> None:
    root = example / ".funops" / "nodes" / "node1"
    funops("render", "-C", str(example), "--node", "node1", "--out", str(root))
    index = root / "srv" / "web" / "index.html"
    index.write_text("edited by hand\n")
    index.chmod(0o600)
    doc = json.loads(funops("plan", "-C", str(example), "-o", "json", "--node", "node1").stdout)
    (change,) = [c for c in doc["nodes"][0]["changes"] if c["id"] == "file:/srv/web/index.html"]
    assert change["action"] == "update"
    assert {f["field"]: (f["old"], f["new"]) for f in change["fields"]}["mode"] == ("0600", "0644")
    assert change["handlers"] == ["restart:unit:web.service"]


def test_plan_exit_code_is_1_and_nothing_is_touched_on_bad_input(example: Path) -> None:
    (example / "manifests" / "web.yaml").write_text("apiVersion: funops/v1\nkind: Application\n")
    done = funops("plan", "-C", str(example))
    assert done.returncode == 1
    assert "manifests/web.yaml:1: metadata: required field is missing" in done.stderr
    assert not (example / ".funops").exists()


def test_plan_of_an_unknown_node_is_an_error(example: Path) -> None:
    done = funops("plan", "-C", str(example), "--node", "nope")
    assert done.returncode == 1 and "unknown node(s): nope" in done.stderr


def test_a_unit_settling_between_plan_and_lock_is_not_a_change() -> None:
    """apply re-reads its nodes under the lock: a unit that was still starting when the plan was
    made and is running now was changed by nobody (a killed apply's restart finishing, say)."""
    from funops.gather.gatherer import NodeGather
    from funops.gather.probe import LiveFacts
    from funops.plan.planner import observed_digest

    def seen(active: str) -> str:
        unit = {"LoadState": "loaded", "UnitFileState": "enabled", "ActiveState": active}
        facts = LiveFacts(units={"web.service": unit}, state={"version": 1})
        return observed_digest(NodeGather(node="n", facts=facts, probed={"unit:web.service"}))

    assert seen("activating") == seen("active") and seen("deactivating") == seen("inactive")
    assert seen("failed") != seen("active") and seen("inactive") != seen("active")
