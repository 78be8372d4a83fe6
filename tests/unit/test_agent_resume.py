"""TLS session resumption between the controller and an agent (issue 32): a node's connection dialled
again (the agent's idle timeout, a dropped connection, a log stream) resumes its last session instead
of a full handshake, and the agent's certificate is held to the pin all the same. A real agent process
on loopback, the real transport (the fixture is test_agent.py's)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from funops.model.inventory import Node
from funops.settings import Settings
from funops.transports import Connections, TransportError
from funops.transports.agent import _Resume
from tests.unit.test_agent import _transport, agent  # noqa: F401 (the agent fixture)


def test_a_connection_dialled_again_resumes_the_nodes_tls_session(agent: dict[str, Any]) -> None:  # noqa: F811
    transport = _transport(agent)
    assert transport.hello()["agent"]
    first = transport._conn
    assert first is not None and first.sock is not None and not first.sock.session_reused
    transport._drop()  # as when the agent closed it while idle
    assert transport.hello()["agent"]
    again = transport._conn
    assert again is not None and again is not first and again.sock is not None
    assert again.sock.session_reused
    transport.close()


def test_a_resumed_session_is_held_to_the_pin_and_then_forgotten(agent: dict[str, Any]) -> None:  # noqa: F811
    transport = _transport(agent)
    transport.hello()
    pin, token, client = transport._credentials()
    transport._drop()
    transport._creds = ("0" * 64, token, client)  # as if the pinned certificate were another
    with pytest.raises(
        TransportError, match=r"node n1: the agent's certificate .* does not match the pinned"
    ):
        transport.hello()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    assert transport._resume.offer(context) is None and transport._resume._session is None
    transport._creds = (pin, token, client)
    assert transport.hello()["agent"]  # a full handshake again, the right pin
    assert transport._conn is not None and not transport._conn.sock.session_reused
    transport.close()


def test_a_session_is_offered_only_with_the_context_that_made_it(agent: dict[str, Any]) -> None:  # noqa: F811
    """A client certificate renewed in place makes a new context: the old context's session would be
    refused by ssl (ValueError), so it is not offered."""
    transport = _transport(agent)
    transport.hello()
    conn = transport._conn
    assert conn is not None
    resume = _Resume()
    resume.keep(conn)
    assert resume.offer(conn._context) is not None
    assert resume.offer(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)) is None
    transport.close()


def test_a_resting_connection_is_closed_with_its_session(agent: dict[str, Any]) -> None:  # noqa: F811
    """A plan's own connections rest once gathered (Connections.rest): the connection and its TLS
    session freed (~35 KB a node), and a node needed again (file diffs) dials anew."""
    transport = _transport(agent)
    nodes = {"n1": transport.node}
    connections = Connections(nodes, Settings(), agent["repo"])
    connections._open["n1"] = transport
    assert connections("n1").hello()["agent"]
    connections.rest("n1")
    assert transport._conn is None and transport._resume._session is None
    assert connections("n1") is transport and transport.hello()["agent"]
    assert transport._conn is not None and not transport._conn.sock.session_reused
    connections.close()


def test_other_transports_keep_their_connection_when_resting(tmp_path: Path) -> None:
    node = Node.model_validate({"name": "l1", "address": "127.0.0.1", "transport": "local"})
    connections = Connections({"l1": node}, Settings(), tmp_path)
    local = connections("l1")
    connections.rest("l1")
    connections.rest("never-opened")
    assert connections("l1") is local
