"""Issue 17 acceptance: plans and drift show what changes inside files, secrets redacted, and a no-op
plan still costs one round trip per node (counted on the transport, not timed).

The tests run in file order on one repo (the bundled example with the lab's inventory, applied once
with known secrets and one plain env value).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from funops.load.loader import load_project
from funops.plan.diffs import DiffOptions
from funops.plan.planner import Plan, make_plan
from funops.transports import Connections, Transport
from lab import Lab

from .fleet import apply, edit_yaml, funops, make_repo, reset

ROOT = Path(__file__).resolve().parents[2]
PLAN_SCHEMA = json.loads((ROOT / "funops" / "schemas" / "plan.schema.json").read_text())
DRIFT_SCHEMA = json.loads((ROOT / "funops" / "schemas" / "drift.schema.json").read_text())
SITE = "file:/etc/nginx/conf.d/funops-site.conf"
ENV = "file:/etc/funops/apps/api.env"
OLD_SECRET = "tok-first-9f3a7c1e5b"
NEW_SECRET = "tok-second-4d8e2b6a0c"
TLS_KEY = (ROOT / "secrets" / "demo.funops.test.key").read_text().strip().splitlines()[1]


def set_greeting(repo: Path, value: str) -> None:
    def edit(docs: list[dict[str, Any]]) -> None:
        for doc in docs:
            if doc["kind"] == "Application" and doc["metadata"]["name"] == "api":
                doc["spec"]["env"]["GREETING"] = value

    edit_yaml(repo / "manifests" / "api.yaml", edit)


def set_read_timeout(repo: Path, seconds: int) -> None:
    def edit(docs: list[dict[str, Any]]) -> None:
        docs[0]["spec"]["nginx"]["proxyReadTimeout"] = seconds

    edit_yaml(repo / "manifests" / "ingress.yaml", edit)


@pytest.fixture(scope="module")
def repo(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reset(lab)
    path = make_repo(lab, tmp_path_factory.mktemp("diffs") / "repo")
    (path / "secrets" / "api-token").write_text(OLD_SECRET + "\n")
    set_greeting(path, "hello-one")
    code, _, err = apply(path)
    assert code == 0, err
    yield path
    reset(lab)


def counted(connect: Callable[[str], Transport]) -> tuple[Callable[[str], Transport], Counter[str]]:
    """`connect`, with every script a node runs counted (one run = one round trip)."""
    calls: Counter[str] = Counter()
    wrapped: set[str] = set()

    def counting(name: str) -> Transport:
        transport = connect(name)
        if name not in wrapped:
            inner = transport.run

            def run(script: str, **kwargs: Any) -> Any:
                calls[name] += 1
                return inner(script, **kwargs)

            transport.run = run  # type: ignore[method-assign]
            wrapped.add(name)
        return transport

    return counting, calls


def plan_counted(repo: Path) -> tuple[Plan, Counter[str]]:
    project = load_project(repo)
    connections = Connections(project.nodes, project.settings, project.root)
    try:
        connect, calls = counted(connections)
        return make_plan(project, None, connect, diff=DiffOptions()), calls
    finally:
        connections.close()


def plan_all(repo: Path) -> tuple[str, dict[str, Any], str]:
    """The plan as text, JSON (checked against the shipped schema) and Markdown."""
    text = funops(repo, "plan")
    assert text.returncode == 2, text.stderr
    js = funops(repo, "plan", "-o", "json")
    doc = json.loads(js.stdout)
    jsonschema.validate(doc, PLAN_SCHEMA)
    md = funops(repo, "plan", "-o", "markdown")
    return text.stdout, doc, md.stdout


def change(doc: dict[str, Any], node: str, rid: str) -> dict[str, Any]:
    nodes = {n["name"]: n for n in doc["nodes"]}
    return next(c for c in nodes[node]["changes"] if c["id"] == rid)


def test_a_no_op_plan_is_one_round_trip_per_node(repo: Path) -> None:
    plan, calls = plan_counted(repo)
    assert not plan.doc.has_changes()
    assert calls == {n: 1 for n in plan.doc.targets}


def test_an_ingress_edit_shows_its_lines_in_every_format(repo: Path) -> None:
    set_read_timeout(repo, 45)
    try:
        text, doc, md = plan_all(repo)
        minus, plus = "-        proxy_read_timeout 30s;", "+        proxy_read_timeout 45s;"
        shown = [line.strip() for line in text.splitlines()]  # the text plan indents diffs under changes
        assert minus in shown and plus in shown
        assert "sha256: sha256:" not in text
        diff = change(doc, "node1", SITE)["diff"]
        assert diff["format"] == "unified"
        assert minus in diff["unified"].splitlines() and plus in diff["unified"].splitlines()
        block = md.split("```diff\n", 1)[1].split("\n```", 1)[0].splitlines()
        assert minus in block and plus in block
        # Only the node whose file changes pays one more round trip (for the live content).
        plan, calls = plan_counted(repo)
        assert calls == {"node1": 2, "node2": 1, "node3": 1}
        assert plan.doc.nodes[0].changes[0].diff is not None
    finally:
        set_read_timeout(repo, 30)


def test_a_secret_change_names_the_key_and_never_the_value(repo: Path) -> None:
    (repo / "secrets" / "api-token").write_text(NEW_SECRET + "\n")
    set_greeting(repo, "hello-two")
    try:
        text, doc, md = plan_all(repo)
        for out in (text, json.dumps(doc), md):
            assert "-GREETING=hello-one" in out and "+GREETING=hello-two" in out
            assert "+API_TOKEN=<secret changed>" in out and "-API_TOKEN=<secret>" in out
            assert OLD_SECRET not in out and NEW_SECRET not in out and TLS_KEY not in out
        env = change(doc, "node2", ENV)
        assert env["secret"] and env["diff"]["format"] == "unified"
    finally:
        (repo / "secrets" / "api-token").write_text(OLD_SECRET + "\n")
        set_greeting(repo, "hello-one")


def test_a_hand_edit_shows_in_drift(lab: Lab, repo: Path) -> None:
    lab.exec(
        "node1",
        "sed -i 's/proxy_read_timeout 30s;/proxy_read_timeout 31s;/' /etc/nginx/conf.d/funops-site.conf",
    )
    lab.exec(
        "node2", f"sed -i 's/^API_TOKEN=.*/API_TOKEN={NEW_SECRET}/' /etc/funops/apps/api.env", check=True
    )
    lab.exec("node2", "echo 'HANDEDIT=xyzzy' >> /etc/funops/apps/api.env", check=True)
    try:
        done = funops(repo, "drift", "-o", "json")
        assert done.returncode == 2, done.stderr
        doc = json.loads(done.stdout)
        jsonschema.validate(doc, DRIFT_SCHEMA)
        items = {(n["name"], i["id"]): i for n in doc["nodes"] for i in n["drift"]}
        site = items[("node1", SITE)]["diff"]["unified"].splitlines()
        assert "-        proxy_read_timeout 30s;" in site and "+        proxy_read_timeout 31s;" in site
        assert site[0].endswith("(applied)") and site[1].endswith("(live)")
        env = items[("node2", ENV)]["diff"]["unified"].splitlines()
        assert "+API_TOKEN=<secret changed>" in env and "+HANDEDIT=<value hidden>" in env
        text = funops(repo, "drift").stdout
        md = funops(repo, "drift", "-o", "markdown").stdout
        for out in (text, md, done.stdout):
            assert "proxy_read_timeout 31s;" in out and "HANDEDIT" in out
            assert NEW_SECRET not in out and OLD_SECRET not in out and "xyzzy" not in out
        assert "```diff" in md
    finally:
        code, _, err = apply(repo)
        assert code == 0, err


def test_a_rollback_shows_the_restored_content_from_the_artifact_store(repo: Path) -> None:
    def edit(docs: list[dict[str, Any]]) -> None:
        docs[0]["spec"]["version"] = "2"

    edit_yaml(repo / "manifests" / "web.yaml", edit)
    code, _, err = apply(repo)
    assert code == 0, err
    done = funops(repo, "rollback", "web", "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    shown = [line.strip() for line in done.stdout.splitlines()]
    # The restored release's files are not in the repo any more: their content is the artifact store's.
    assert "-<h1>web 2 on node1</h1>" in shown and "+<h1>web 1 on node1</h1>" in shown
