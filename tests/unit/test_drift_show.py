"""The drift report in Markdown: one table a reviewer reads in a PR comment or an issue."""

from __future__ import annotations

from funops.drift.check import settle, summarize
from funops.drift.document import AckDoc, DriftDoc, DriftItemDoc, FieldDriftDoc, NodeDriftDoc, PendingDoc
from funops.drift.show import to_markdown
from funops.plan.document import FieldChangeDoc, RevisionDoc


def item(rid: str, cls: str, summary: str, **kw: object) -> DriftItemDoc:
    base = dict(
        id=rid,
        kind=rid.split(":")[0],
        owner="app/web",
        drift_class=cls,
        summary=summary,
        baseline="applied",
        fields=[FieldDriftDoc(field="active", expected="active", live="failed")],
        fingerprint="sha256:0123456789abcdef",
        fixable=True,
        acknowledged=False,
        ack=None,
    )
    return DriftItemDoc.model_validate(base | kw)


def node(name: str, drift: list[DriftItemDoc], reachable: bool = True, **kw: object) -> NodeDriftDoc:
    base = dict(
        name=name,
        address="127.0.2.1",
        transport="ssh",
        reachable=reachable,
        error=None if reachable else "ssh: timed out",
        drift=drift,
        pending=[],
        notices=[],
        nginx_test=None,
    )
    return NodeDriftDoc.model_validate(base | kw)


def doc_of(nodes: list[NodeDriftDoc]) -> DriftDoc:
    doc = DriftDoc(
        project="demo",
        revision=RevisionDoc(commit="0123456789abcdef0123", dirty=False, ref="HEAD"),
        created_at="2030-01-01T00:00:00+00:00",
        targets=[n.name for n in nodes],
        status="clean",
        exit_code=0,
        summary=summarize(nodes, []),
        nodes=nodes,
        fix=None,
    )
    settle(doc)
    return doc


def test_drift_acknowledged_pending_and_unreachable_in_one_table() -> None:
    acked = item(
        "file:/etc/a|b.conf",
        "modified",
        "edited by hand: sha256: sha256:1… → sha256:2…",
        acknowledged=True,
        ack=AckDoc(reason="hotfix", until="2030-02-01", by="alice", expired=False, matches=True, line=4),
    )
    pending = PendingDoc(
        id="container:api",
        kind="container",
        owner="app/api",
        action="update",
        fields=[FieldChangeDoc(field="image", old="img:v1", new="img:v2")],
    )
    doc = doc_of(
        [
            node(
                "node1",
                [item("unit:web.service", "stopped", "active: active → failed"), acked],
                pending=[pending],
            ),
            node("node3", [], reachable=False),
        ]
    )
    md = to_markdown(doc)
    assert doc.exit_code == 4 and doc.status == "drift"  # unreachable outranks drift (exit_codes.worst)
    assert md.splitlines()[0] == "### :warning: funops drift — demo · HEAD at `0123456789ab`"
    assert "**Drift: 1 item(s) on 1 of 2 node(s) (1 stopped); 1 acknowledged; 1 repo change(s)" in md
    assert "| node | resource | drift | owner | what | --fix |\n|---|---|---|---|---|---|\n" in md
    assert "| node1 | `unit:web.service` | **stopped** | app/web | active: active → failed | yes |" in md
    assert (
        "| node1 | `file:/etc/a\\|b.conf` | :white_check_mark: acknowledged (modified) | app/web | "
        "edited by hand: sha256: sha256:1… → sha256:2… — _acknowledged until 2030-02-01 by alice: hotfix_ "
        "| yes |"
    ) in md
    assert "| node3 | | :x: unreachable | | `ssh: timed out` | |" in md
    assert "| node1 | `container:api` | ~ image: img:v1 → img:v2 |" in md


def test_clean_and_unreachable_only() -> None:
    assert to_markdown(doc_of([node("node1", [])])).startswith("### :white_check_mark: funops drift")
    doc = doc_of([node("node1", []), node("node2", [], reachable=False)])
    assert (doc.exit_code, doc.status) == (4, "unreachable")
    assert "No drift on 1 reachable node(s); 1 node(s) UNREACHABLE." in to_markdown(doc)
