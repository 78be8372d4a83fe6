"""Diffs in plans on the local transport (real sh, real files under a node root): which side comes
from where, what is fetched, `diff: false`, hidden secrets, the content fetch and its framing."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from funops.drift.extras import parse as extras_parse
from funops.gather.contents import Content, fetch
from funops.load.loader import load_project
from funops.model.inventory import Node
from funops.node.shell import render
from funops.plan.diffs import DiffOptions
from funops.plan.planner import Plan, make_plan
from funops.plan.show import Lines, change_summary, print_text, to_markdown
from funops.tasks.model import ProbeExtras
from funops.transports import Connections
from funops.transports.local import LocalTransport

INDEX = "file:/srv/web/index.html"


def plan(repo: Path, diff: DiffOptions | None = DiffOptions()) -> tuple[Plan, Counter[str]]:
    project = load_project(repo)
    connections = Connections(project.nodes, project.settings, project.root)
    calls: Counter[str] = Counter()

    wrapped: set[str] = set()

    def connect(name: str) -> Any:
        transport = connections(name)
        if name not in wrapped:  # one transport per node, reused: count its runs once
            inner = transport.run

            def run(script: str, **kw: Any) -> Any:
                calls[name] += 1
                return inner(script, **kw)

            transport.run = run  # type: ignore[method-assign]
            wrapped.add(name)
        return transport

    return make_plan(project, ["node1"], connect, diff=diff), calls


def write_node(repo: Path, result: Plan, node: str = "node1") -> Path:
    """What the plan would write, written under the node's root (modes as desired)."""
    root = repo / ".funops" / "nodes" / node
    for res in result.desired.nodes[node].resources:
        if res.content is not None:
            path = root / res.name.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(res.content)
            path.chmod(int(res.desired["mode"], 8))
    return root


def changes(result: Plan) -> dict[str, Any]:
    return {c.id: c for c in result.doc.nodes[0].changes}


def test_creates_need_no_fetch_and_show_all_plus(example: Path) -> None:
    result, calls = plan(example)
    index = changes(result)[INDEX]
    assert index.diff is not None and index.diff.unified is not None
    assert index.diff.unified.splitlines()[-1] == "+<h1>web 1 on node1</h1>"
    key = changes(result)["file:/etc/funops/tls/site.key"]
    assert key.diff is not None and (key.diff.format, key.diff.unified) == ("hidden", None)
    assert calls == {"node1": 1}  # only the gather: a create's content is known here


def test_the_plan_text_is_the_same_printed_in_batches(example: Path, monkeypatch: Any) -> None:
    """The plan's lines go to rich in bounded batches (memory), the same text as in one print."""
    from rich.console import Console

    doc = plan(example)[0].doc

    def text(batch: int) -> str:
        monkeypatch.setattr(Lines, "BATCH", batch)
        console = Console(file=io.StringIO(), width=100, force_terminal=True, color_system="truecolor")
        print_text(doc, console)
        return console.file.getvalue()

    whole = text(10**6)
    assert whole.count("\n") > 40 and "\x1b[" in whole  # diffs, in colour
    assert text(7) == text(1) == whole


def test_an_update_fetches_the_live_file_once_and_a_mode_change_shows_no_diff(example: Path) -> None:
    root = write_node(example, plan(example)[0])
    (root / "srv/web/index.html").write_text("<h1>edited by hand</h1>\n")
    (root / "srv/web/health").chmod(0o600)
    result, calls = plan(example)
    index, health = changes(result)[INDEX], changes(result)["file:/srv/web/health"]
    assert index.diff is not None and index.diff.unified is not None
    assert index.diff.unified.splitlines()[-2:] == ["-<h1>edited by hand</h1>", "+<h1>web 1 on node1</h1>"]
    assert health.diff is None  # mode only
    assert calls == {"node1": 2}  # the gather, then one fetch for the changed file
    assert "sha256: sha256:" not in change_summary(index) and "→ sha256:" in change_summary(index)
    md = to_markdown(result.doc)
    assert "```diff\n" in md and "+<h1>web 1 on node1</h1>" in md


def test_no_diff_means_no_fetch(example: Path) -> None:
    root = write_node(example, plan(example)[0])
    (root / "srv/web/index.html").write_text("changed\n")
    result, calls = plan(example, diff=None)
    assert changes(result)[INDEX].diff is None and calls == {"node1": 1}


def test_diff_false_in_a_manifest_turns_a_file_off(example: Path) -> None:
    path = example / "manifests" / "web.yaml"
    docs = list(yaml.safe_load_all(path.read_text()))
    docs[0]["spec"]["configFiles"][0]["diff"] = False
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    result, _ = plan(example)
    diff = changes(result)[INDEX].diff
    assert diff is not None and diff.format == "off" and diff.unified is None


def test_long_diffs_fold_into_details_in_markdown(example: Path) -> None:
    path = example / "manifests" / "web.yaml"
    docs = list(yaml.safe_load_all(path.read_text()))
    docs[0]["spec"]["configFiles"][0]["content"] = "".join(f"line {i}\n" for i in range(60))
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    md = to_markdown(plan(example)[0].doc)
    assert "<details><summary>`file:/srv/web/index.html`</summary>" in md


def test_the_fetch_brings_any_bytes_back_and_bounds_them(tmp_path: Path) -> None:
    transport = LocalTransport(
        Node(name="n", address="127.0.0.1", transport="local", root=str(tmp_path)), tmp_path
    )
    (tmp_path / "bin").write_bytes(bytes(range(256)) + b"\n@@funops content 0\n")
    (tmp_path / "big").write_bytes(b"x" * 5000)
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "link").symlink_to(tmp_path / "bin")
    got = fetch(transport, ["/bin", "/big", "/empty", "/link", "/none"], limit=1000)
    assert got["/bin"] == Content(size=276, data=bytes(range(256)) + b"\n@@funops content 0\n")
    assert got["/big"] == Content(size=5000, data=None)  # over the limit: its size only
    assert got["/empty"] == Content(size=0, data=b"")
    assert got["/link"] is None and got["/none"] is None


def test_the_drift_probe_carries_the_fetch_without_disturbing_its_own_sections(tmp_path: Path) -> None:
    transport = LocalTransport(
        Node(name="n", address="127.0.0.1", transport="local", root=str(tmp_path)), tmp_path
    )
    apps = tmp_path / "etc" / "funops" / "apps"
    apps.mkdir(parents=True)
    (apps / "x.env").write_text("A=1\n")
    extra_look = ProbeExtras(False, (transport.path("/etc/funops/apps/x.env"),), 1000)
    script = render(extra_look, transport.path).script
    out = transport.run(script).text()
    extras = extras_parse(out, transport.path)
    assert list(extras.own_files) == ["/etc/funops/apps/x.env"]


def test_what_may_be_shown_follows_the_repo_and_what_was_applied() -> None:
    from funops.compile.compiler import _file
    from funops.plan.diffs import redaction
    from funops.state.node_state import NodeState, secrecy_record

    env = _file("/etc/funops/apps/a.env", b"A=1\nB=2\n", "app/a", "0600", "root", "root", secret_keys=())
    assert secrecy_record(env) == {}  # no secret now: the state record stays as it was
    was = NodeState.model_validate(
        {
            "managed": {
                env.id: {"owner": "app/a", "kind": "file", "secret": True, "secretKeys": ["A"]},
                "file:/srv/a.conf": {"owner": "app/a", "kind": "file", "secret": True},
            }
        }
    )
    now = redaction(env, was, env.id)  # A was a secret when applied: its old value stays hidden
    assert now.env and now.secret_keys == {"A"} and now.plain_keys == {"B"}
    assert redaction(None, was, "file:/srv/a.conf").hidden  # deleted; recorded as a secret
    assert redaction(None, NodeState(), "file:/etc/funops/tls/x.key").hidden  # funops's own places
    gone = redaction(None, NodeState(), "file:/etc/funops/apps/b.env")
    assert gone.env and not gone.plain_keys
    assert redaction(None, NodeState(), "file:/srv/b.conf") == redaction(None, NodeState(), "file:/x")
    key = _file("/etc/funops/tls/s.key", b"k\n", "ingress/s", "0600", "root", "root", secret=True)
    assert secrecy_record(key) == {"secret": True} and redaction(key, NodeState(), key.id).hidden
