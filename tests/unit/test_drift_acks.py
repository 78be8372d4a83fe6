"""drift-ack.yaml: strict, located validation; expiry; a changed drift is no longer covered."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from funops.drift.acks import Ack, apply_acks, parse_acks, record_ack
from funops.drift.document import DriftItemDoc, NodeDriftDoc
from funops.errors import InputError

FP = "sha256:0123456789abcdef"
GOOD = f"""\
apiVersion: funops/v1
kind: DriftAcknowledgements
acknowledgements:
  - node: node2
    resource: file:/etc/funops/apps/api.env
    reason: hotfix OPS-1
    until: 2030-01-31
    by: alice
    fingerprint: {FP}
"""


def problems(text: str, nodes: frozenset[str] = frozenset({"node2"})) -> list[str]:
    with pytest.raises(InputError) as err:
        parse_acks(text, set(nodes))
    return [str(p) for p in err.value.problems]


def test_a_good_file_parses_with_lines() -> None:
    [located] = parse_acks(GOOD, {"node2"})
    assert located.line == 4 and located.ack.until == dt.date(2030, 1, 31) and located.ack.by == "alice"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    by: alice\n",
            "    by: alice\n    colour: red\n",
            "drift-ack.yaml:9: acknowledgements.0.colour: unknown field",
        ),
        ("2030-01-31", "next week", "drift-ack.yaml:7: acknowledgements.0.until:"),
        (FP, "sha256:abc", "drift-ack.yaml:9: acknowledgements.0.fingerprint: 'sha256:abc' is not"),
        ("node: node2", "node: node9", "drift-ack.yaml:4: acknowledgements.0.node: unknown node 'node9'"),
        (
            "    reason: hotfix OPS-1\n",
            "",
            "drift-ack.yaml:4: acknowledgements.0.reason: required field is missing",
        ),
        ("resource: file:/etc", "resource: /etc", "drift-ack.yaml:5: acknowledgements.0.resource:"),
        ("kind: DriftAcknowledgements", "kind: Acks", "drift-ack.yaml:2: kind:"),
    ],
)
def test_bad_entries_name_file_line_and_field(old: str, new: str, expected: str) -> None:
    assert GOOD.count(old) == 1
    found = problems(GOOD.replace(old, new))
    assert any(p.startswith(expected) for p in found), found


def test_duplicates_and_yaml_errors_are_located() -> None:
    twice = GOOD + GOOD.split("acknowledgements:\n", 1)[1]
    assert problems(twice) == [
        "drift-ack.yaml:11: acknowledgements.1.resource: file:/etc/funops/apps/api.env on node2 is already "
        "acknowledged at drift-ack.yaml:4"
    ]
    assert problems("acknowledgements: [\n")[0].startswith("drift-ack.yaml:2: invalid YAML")


def node_with(fingerprint: str) -> NodeDriftDoc:
    item = DriftItemDoc(
        id="file:/etc/funops/apps/api.env", kind="file", owner="app/api", drift_class="modified", summary="x",
        baseline="applied", fields=[], fingerprint=fingerprint, fixable=True, acknowledged=False, ack=None,
    )  # fmt: skip
    return NodeDriftDoc(name="node2", address="a", transport="ssh", reachable=True, error=None, drift=[item],
                        pending=[], notices=[], nginx_test=None)  # fmt: skip


def test_an_ack_covers_the_same_drift_through_its_date_only() -> None:
    acks = parse_acks(GOOD, {"node2"})
    for today, covered in ((dt.date(2030, 1, 31), True), (dt.date(2030, 2, 1), False)):
        nodes = [node_with(FP)]
        assert apply_acks(nodes, acks, today) == []
        item = nodes[0].drift[0]
        assert item.acknowledged is covered and item.ack is not None and item.ack.expired is not covered
    changed = [node_with("sha256:ffffffffffffffff")]
    apply_acks(changed, acks, dt.date(2030, 1, 1))
    assert changed[0].drift[0].acknowledged is False and changed[0].drift[0].ack.matches is False  # type: ignore[union-attr]


def test_an_ack_without_drift_is_reported_unused() -> None:
    clean = node_with(FP)
    clean.drift = []
    assert apply_acks([clean], parse_acks(GOOD, {"node2"}), dt.date(2030, 1, 1)) == [
        "node2 file:/etc/funops/apps/api.env"
    ]


def test_recording_replaces_the_same_resource_and_reads_back(tmp_path: Path) -> None:
    (tmp_path / "drift-ack.yaml").write_text(GOOD)
    existing = parse_acks(GOOD, {"node2"})
    new = Ack(node="node2", resource="file:/etc/funops/apps/api.env", reason="still",
              until=dt.date(2031, 1, 1), by="bob", fingerprint="sha256:fedcba9876543210")  # fmt: skip
    other = Ack(node="node1", resource="unit:web.service", reason="r", until=dt.date(2031, 1, 1), by="bob",
                fingerprint=FP)  # fmt: skip
    record_ack(tmp_path, existing, new)
    record_ack(tmp_path, parse_acks((tmp_path / "drift-ack.yaml").read_text(), {"node1", "node2"}), other)
    text = (tmp_path / "drift-ack.yaml").read_text()
    assert text.startswith("# Known drift, acknowledged")
    assert [a.ack for a in parse_acks(text, {"node1", "node2"})] == [other, new]
