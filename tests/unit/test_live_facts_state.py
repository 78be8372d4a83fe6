"""A node's state file in its facts (kinds/facts.py): kept as compact JSON text (a run holds every
node's facts), read back as the same data, its model made from the current text."""

from __future__ import annotations

from funops.kinds.facts import LiveFacts

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
