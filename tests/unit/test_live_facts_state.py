"""A node's state file in its facts (kinds/facts.py): kept as compact JSON text (a run holds every
node's facts), read back as the same data, its model made from the current text."""

from __future__ import annotations

import hashlib
import json

from funops.diff.differ import live_attributes
from funops.gather.gatherer import NodeGather
from funops.kinds import kind_of
from funops.kinds.facts import LiveFacts
from funops.plan.planner import observed_digest

STATE = {
    "formatVersion": 1,
    "managed": {"file:/etc/x.conf": {"owner": "app:web", "kind": "file", "applied": {"mode": "0644"}}},
    "apps": {"web": {"version": "2", "release": "r2"}},
    "owed": ["reload:nginx"],
    "future": {"kept": True},  # a key of a newer funops stays
}


def test_the_state_reads_back_as_it_was_given_a_new_dict_each_time() -> None:
    facts = LiveFacts(state=STATE)
    assert facts.has_state and facts.state == STATE
    facts.state["owed"].append("x")  # type: ignore[index]  # a reader's change stays its own
    assert facts.state == STATE
    assert LiveFacts().state is None and not LiveFacts().has_state


def test_the_model_follows_the_state_it_is_made_from() -> None:
    facts = LiveFacts(state=STATE)
    assert facts.node_state.owed == ["reload:nginx"] and set(facts.node_state.managed) == {"file:/etc/x.conf"}
    assert facts.node_state.apps["web"].release == "r2"
    facts.state = {"owed": []}
    assert facts.node_state.owed == [] and facts.node_state.managed == {}
    facts.state = None
    assert facts.node_state.managed == {} and not facts.has_state


def _former_digest(g: NodeGather) -> str:
    """observed_digest as it was, parsing the state again: the same bytes, so saved plans still verify."""
    assert g.facts is not None
    seen = {rid: kind_of(rid).observed(live_attributes(rid, g.facts)) for rid in sorted(g.probed)}
    body = json.dumps({"resources": seen, "state": g.facts.state}, sort_keys=True, default=str).encode()
    return hashlib.sha256(body).hexdigest()


def test_the_observed_digest_is_the_same_bytes_as_before() -> None:
    probed = {"file:/etc/x.conf", "unit:web.service"}
    for state in (STATE, None, {}):
        g = NodeGather(node="n1", facts=LiveFacts(state=state), probed=probed)
        assert observed_digest(g) == _former_digest(g)
