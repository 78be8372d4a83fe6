"""Answer a run from a recorded no-op: send each node the recorded probe over its agent, compare the
digest of each answer with the recorded one, and print the recorded output if every one matches.

The agent is reached as `transports/agent.py` reaches it — the certificate checked against its pin
before the token is sent — on the happy path only: whatever else happens (no pin, a refused token, a
newer agent, nothing answering) is left to the full path, which says it properly. Nothing here
imports pydantic, typer, rich or the engine.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import http.client
import json
import os
import socket
import ssl
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from .. import __version__
from ..transports.exchange import authority, read_answer, request

MARK = "@@funops "  # node/probe.py's section marker (held equal by tests/unit/test_noop_cache.py)
PROTOCOL_HEADER = "2"  # node/__init__.py's PROTOCOL[1], as transports/agent.py sends it (tested too)
# Fields of a release record no plan reads (when, by whom, which rollout: history and drift read
# them, and the plan's JSON through its `observed` digest, which the cache never answers).
VOLATILE_RELEASE_FIELDS = ("started", "finished", "rollout", "who")
UNIT_TIMES = ("ActiveEnterTimestamp=", "NRestarts=")


def fingerprint(exit_code: int, text: str, secret: bytes) -> str | None:
    """The digest of a probe's answer, as far as a text plan depends on it. Left out: the free disk
    (read only by the placement of `replicas` apps, which are not cached), when each unit last
    started and how often it restarted (`details` and metrics read them, a plan does not), the
    release records' times, and the node's fingerprint key (it keys the secrets' digests of a plan's
    JSON, never printed in a text no-op; it is made anew when a node is wiped). Keyed with `secret`
    (store.local_key): the answer holds secret files' sha256, which must not become guessable from
    the cache. None when it must not be cached: a lock is on the node (its expiry is a matter of time)."""
    out: list[str] = [str(exit_code)]
    section = ""
    for line in text.splitlines():
        if line.startswith(MARK):
            section = line[len(MARK) :].strip()
            out.append(line)
            if section == "state":
                out.append(_state_lines(text, line))
            continue
        if section in ("df", "state", "key") or (section == "units" and line.startswith(UNIT_TIMES)):
            continue
        if section == "lock" and line.strip():
            return None
        out.append(line)
    return hmac.new(secret, "\n".join(out).encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def _state_lines(text: str, mark: str) -> str:
    """The state section with the release records' volatile fields left out (canonical JSON)."""
    lines = text.split(mark, 1)[1].split(MARK, 1)[0].split()
    if not lines or lines[0] != "present":
        return " ".join(lines)
    try:
        state = json.loads(base64.b64decode("".join(lines[1:]), validate=True))
        for records in state.get("releases", {}).values():
            for record in records:
                for field in VOLATILE_RELEASE_FIELDS:
                    record.pop(field, None)
    except (binascii.Error, ValueError, AttributeError, TypeError):
        return " ".join(lines)  # as it is: the full path says what is wrong with it
    return "present " + json.dumps(state, sort_keys=True)


def replay(entry: dict[str, Any], secret: bytes) -> int | None:
    """The recorded output printed and its exit code, if every node answered as recorded; None
    (nothing printed) otherwise."""
    nodes: dict[str, dict[str, Any]] = entry["nodes"]
    if not nodes:
        return None
    width = max(1, min(int(entry.get("parallel", 20)), len(nodes)))
    pool = ThreadPoolExecutor(max_workers=width)
    shared = _Shared()
    try:
        futures = [pool.submit(_answers_as_recorded, node, secret, shared) for node in nodes.values()]
        # The first node answering otherwise ends it: the full path, which gathers again, starts at once.
        if not all(f.result() for f in as_completed(futures)):
            return None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    for stream, text in ((sys.stdout, entry["stdout"]), (sys.stderr, entry["stderr"])):
        stream.write(text)
        stream.flush()
    return int(entry["exit"])


class _Shared:
    """What the nodes of one replay share, made once: each pins file parsed (looking one node's pin
    up by reading the file to its line was quadratic: ~0.45 ms a node at 2,000 nodes), and the TLS
    client context of each client certificate (~0.12 ms to make; thread-safe to share)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pins: dict[str, dict[str, str]] = {}
        self._contexts: dict[tuple[str, ...] | None, ssl.SSLContext] = {}

    def pin(self, path: str, where: str) -> str | None:
        with self._lock:
            if path not in self._pins:
                self._pins[path] = _pins(path)
            return self._pins[path].get(where)

    def context(self, client: tuple[str, ...] | None) -> ssl.SSLContext:
        with self._lock:
            if client not in self._contexts:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.minimum_version = ssl.TLSVersion.TLSv1_2
                context.check_hostname = False  # the pin is the check (transports/agent.py)
                context.verify_mode = ssl.CERT_NONE
                if client is not None:
                    context.load_cert_chain(*client)
                self._contexts[client] = context
            return self._contexts[client]


def _answers_as_recorded(node: dict[str, Any], secret: bytes, shared: _Shared) -> bool:
    try:
        answer = _gather(node, shared)
    except (OSError, ValueError, KeyError, TypeError, ssl.SSLError, http.client.HTTPException):
        return False
    return answer is not None and fingerprint(*answer, secret) == node["digest"]


def _gather(node: dict[str, Any], shared: _Shared) -> tuple[int, str] | None:
    """The node's answer to the recorded probe: (exit code, stdout), or None (the full path decides)."""
    from ..node.dial import address_family, dial

    host, port = node["host"], int(node["port"])
    pin = shared.pin(node["pins"], f"{host}:{port}")
    client = tuple(node["client"]) if node.get("client") else None
    token = _token(node, client is not None)
    if pin is None or token is False:
        return None
    context = shared.context(client)
    raw = dial(host, port, float(node["connectTimeout"]))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock = context.wrap_socket(raw, server_hostname=None if address_family(host) else host)
    except BaseException:
        raw.close()
        raise
    try:
        der = sock.getpeercert(binary_form=True) or b""
        if not hmac.compare_digest(hashlib.sha256(der).hexdigest(), pin):
            return None  # never send the token: the full path refuses it with the node's name
        sock.settimeout(float(node["timeout"]))
        sock.sendall(_request(host, port, node["body"].encode(), token))
        answer = read_answer(sock)  # the transport's reader (no http.client answer object, no email parser)
        if answer.status != 200 or _version(answer.getheader("X-Funops-Agent")) > _version(__version__):
            return None
        doc = json.loads(answer.body)
        stdout = base64.b64decode(doc["stdout"]).decode("utf-8", errors="replace")
        return int(doc["exit"]), stdout
    finally:
        sock.close()


def _request(host: str, port: int, body: bytes, token: str | None) -> bytes:
    """The probe's request, as transports/agent.py sends it (exchange.request: head and body in one write)."""
    headers = {"Content-Type": "application/json", "X-Funops-Protocol": PROTOCOL_HEADER}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return request(authority(host, port), "/v1/gather", body, headers)


def _pins(path: str) -> dict[str, str]:
    """agent_known_hosts' first pin for each host:port (transports/agent.py's `_pins`); none when the
    file cannot be read."""
    pins: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[1].startswith("sha256:"):
                    pins.setdefault(parts[0], parts[1][len("sha256:") :])
    except (OSError, ValueError):
        return {}
    return pins


def _token(node: dict[str, Any], has_client: bool) -> str | bool | None:
    """The bearer token as the transport reads it; None: none (a client certificate only); False:
    missing where the transport would fail (left to it)."""
    if node.get("tokenEnv"):
        token = (os.environ.get(node["tokenEnv"]) or "").strip() or None
        return False if token is None and not has_client else token
    try:
        with open(node["tokenFile"], encoding="utf-8") as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None if has_client else False
    except OSError:
        return False


def _version(text: str) -> tuple[int, ...]:
    parts = text.split("-")[0].split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else ()
