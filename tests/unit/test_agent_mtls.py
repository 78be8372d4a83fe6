"""The agent's optional mTLS (issue 13): client certificates from the operator CA (`funops agent ca
init|issue`, the real code) authenticate without a token; one from another CA is refused with the
node's name; neither certificate nor token is refused before any work; the token still works. Real
agent processes on a loopback address of their own (test_agent.py's is 127.0.3.77)."""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import json
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from funops.agent import ca
from funops.errors import FunopsError
from funops.model.inventory import Node
from funops.settings import Settings
from funops.tasks import model as m
from funops.transports import TransportError
from funops.transports.agent import AgentTransport, WithFallback

from .test_agent import _certificate

TOKEN = "mtls-test-token-0123456789abcdef"
ADDRESS = "127.0.3.78"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((ADDRESS, 0))
        return int(s.getsockname()[1])


def _start(here: Path, name: str, cert: Path, key: Path, client_ca: Path | None) -> tuple[Any, int]:
    port = _free_port()
    config = {"bind": ADDRESS, "port": port, "cert": str(cert), "key": str(key),
              "tokenSha256File": str(here / "token.sha256"), "stateDir": str(here / "state"),
              "requestSeconds": 2, "workers": 2}  # fmt: skip
    if client_ca is not None:
        config["clientCa"] = str(client_ca)
    (here / f"{name}.json").write_text(json.dumps(config))
    serve = [sys.executable, "-m", "funops.agent", "serve", "--config", str(here / f"{name}.json")]
    with (here / f"{name}.log").open("ab") as log:  # not a pipe: one nobody reads blocks the agent
        proc = subprocess.Popen(serve, stderr=log)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection((ADDRESS, port), timeout=1).close()
            return proc, port
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, (here / f"{name}.log").read_text()
            time.sleep(0.05)


@pytest.fixture(scope="module")
def agents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two agents with one certificate and token: `mtls` takes the operator CA's client certificates,
    `plain` (installed without a CA) does not ask for one. The repo holds the operator CA and this
    operator's certificate (`ca init`), a second CA's certificate, and the pins; no token."""
    here = tmp_path_factory.mktemp("mtls")
    cert, key, fingerprint = _certificate(here)
    (here / "token.sha256").write_text(hashlib.sha256(TOKEN.encode()).hexdigest() + "\n")
    repo, other = here / "repo", here / "other"
    for root in (repo, other):
        (root / ".funops" / "agent").mkdir(parents=True)
        ca.init(root, "operator")
    foreign = ca.issue(other, "intruder")  # a client certificate, from another CA
    mtls, mtls_port = _start(here, "mtls", cert, key, ca.ca_cert_path(repo))
    plain, plain_port = _start(here, "plain", cert, key, None)
    pins = "".join(f"{ADDRESS}:{p} sha256:{fingerprint}\n" for p in (mtls_port, plain_port))
    (repo / "agent_known_hosts").write_text(pins)
    (repo / "token").write_text(TOKEN + "\n")
    yield {"repo": repo, "mtls": mtls_port, "plain": plain_port, "foreign": foreign}
    for proc in (mtls, plain):
        proc.terminate()
        proc.wait(10)


def _transport(agents: dict[str, Any], which: str = "mtls", **agent_options: Any) -> AgentTransport:
    url = f"https://{ADDRESS}:{agents[which]}"
    node = Node.model_validate(
        {"name": "n1", "address": ADDRESS, "transport": "agent", "agent": {"url": url, **agent_options}}
    )
    return AgentTransport(node, Settings(), agents["repo"])


def _raw(port: int, token: str | None, client: tuple[Path, Path] | None = None) -> int:
    context = ssl._create_unverified_context()
    if client is not None:
        context.load_cert_chain(*client)
    conn = http.client.HTTPSConnection(ADDRESS, port, context=context, timeout=10)
    headers = {"X-Funops-Protocol": "1", **({"Authorization": f"Bearer {token}"} if token else {})}
    conn.request("POST", "/v1/tasks", body=b"{}", headers=headers)
    status = conn.getresponse().status
    conn.close()
    return status


def test_a_certificate_from_the_operator_ca_is_enough_without_a_token(
    agents: dict[str, Any], tmp_path: Path
) -> None:
    """This operator's certificate from `ca init` is presented by default; there is no token file."""
    transport = _transport(agents)
    assert transport.hello()["protocol"] == [1, 2]
    target = tmp_path / "by-certificate"
    results, _ = transport.run_tasks([m.WriteFile(str(target), "", "0644", "root", "root", None, b"x")])
    assert [r.exit_code for r in results] == [0] and target.read_bytes() == b"x"
    transport.close()
    # Another operator's, issued from the same CA, named in the inventory.
    issued = ca.issue(agents["repo"], "ci-runner", days=1)
    named = _transport(agents, clientCert=str(issued.cert), clientKey=str(issued.key))
    assert named.hello()["protocol"] == [1, 2]
    named.close()


def test_a_certificate_from_another_ca_is_refused_with_the_nodes_name(agents: dict[str, Any]) -> None:
    foreign = agents["foreign"]
    for token_file in (None, str(agents["repo"] / "token")):  # a right token does not rescue it
        transport = _transport(
            agents, clientCert=str(foreign.cert), clientKey=str(foreign.key), tokenFile=token_file
        )
        with pytest.raises(TransportError, match="node n1: client certificate not accepted") as refused:
            transport.hello()
        assert str(foreign.cert) in str(refused.value)
    # It answered and refused: `fallback: ssh` is not taken.
    refusing = _transport(agents, clientCert=str(foreign.cert), clientKey=str(foreign.key))
    with pytest.raises(TransportError, match="client certificate not accepted"):
        WithFallback(refusing, lambda: pytest.fail("fell back to ssh")).call(m.ReadFiles(("/x",), 10))
    with pytest.raises(ssl.SSLError, match="UNKNOWN_CA"):
        _raw(agents["mtls"], None, (foreign.cert, foreign.key))


def test_an_expired_certificate_from_the_operator_ca_is_refused(
    agents: dict[str, Any], tmp_path: Path
) -> None:
    """No revocation list: expiry is how a client certificate stops working."""
    repo = agents["repo"]
    ca_cert = x509.load_pem_x509_certificate(ca.ca_cert_path(repo).read_bytes())
    ca_key = serialization.load_pem_private_key((repo / ca.CA_KEY).read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old")]))
        .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=91)).not_valid_after(now - dt.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    (tmp_path / "old.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "old.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))  # fmt: skip
    old = _transport(agents, clientCert=str(tmp_path / "old.crt"), clientKey=str(tmp_path / "old.key"))
    with pytest.raises(TransportError, match=r"node n1: client certificate not accepted .*EXPIRED"):
        old.hello()


def test_neither_certificate_nor_token_is_refused_before_any_work(
    agents: dict[str, Any], tmp_path: Path
) -> None:
    assert _raw(agents["mtls"], None) == 401
    assert _raw(agents["mtls"], "wrong-token") == 401
    # The controller does not even ask without one or the other; a configured certificate that is not
    # there is named, not skipped.
    (tmp_path / "agent_known_hosts").write_text((agents["repo"] / "agent_known_hosts").read_text())
    node = Node.model_validate({"name": "n1", "address": ADDRESS, "transport": "agent",
                                "agent": {"url": f"https://{ADDRESS}:{agents['mtls']}"}})  # fmt: skip
    with pytest.raises(TransportError, match="node n1: cannot read the agent token"):
        AgentTransport(node, Settings(), tmp_path).hello()
    nothing = agents["repo"] / "missing"
    with pytest.raises(TransportError, match=r"node n1: cannot load the client certificate .*missing"):
        _transport(agents, clientCert=str(nothing), clientKey=str(nothing)).hello()


def test_the_token_still_works_with_mtls_enabled(agents: dict[str, Any], tmp_path: Path) -> None:
    assert _raw(agents["mtls"], TOKEN) == 400  # authorized: refused for the empty body only
    bare = tmp_path / "bare"  # no client certificate of this operator: the token alone
    (bare / ".funops" / "agent").mkdir(parents=True)
    (bare / "agent_known_hosts").write_text((agents["repo"] / "agent_known_hosts").read_text())
    url, token = f"https://{ADDRESS}:{agents['mtls']}", str(agents["repo"] / "token")
    node = Node.model_validate(
        {"name": "n1", "address": ADDRESS, "transport": "agent", "agent": {"url": url, "tokenFile": token}}
    )
    transport = AgentTransport(node, Settings(), bare)
    assert transport.hello()["protocol"] == [1, 2]
    transport.close()


def test_an_agent_installed_without_the_ca_says_so_to_a_certificate_without_a_token(
    agents: dict[str, Any],
) -> None:
    refused = r"node n1: .*does not take client certificates.*agent install n1"
    with pytest.raises(TransportError, match=refused):
        _transport(agents, "plain").hello()
    assert _transport(agents, "plain", tokenFile=str(agents["repo"] / "token")).hello()["agent"]


def test_only_a_ca_certificate_is_shipped_never_a_key(tmp_path: Path) -> None:
    assert ca.certificate_to_ship(tmp_path) is None  # no CA: token authentication only
    (tmp_path / ".funops" / "agent").mkdir(parents=True)
    ca.init(tmp_path, "me")
    shipped = ca.certificate_to_ship(tmp_path)
    assert shipped is not None and b"PRIVATE KEY" not in shipped
    assert oct((tmp_path / ca.CA_KEY).stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / ca.CLIENT_KEY).stat().st_mode & 0o777) == "0o600"
    with pytest.raises(FunopsError, match="an operator CA exists already"):
        ca.init(tmp_path, "me")
    path = ca.ca_cert_path(tmp_path)
    path.write_bytes(shipped + (tmp_path / ca.CA_KEY).read_bytes())
    with pytest.raises(FunopsError, match="holds a private key"):
        ca.certificate_to_ship(tmp_path)
    path.write_bytes((tmp_path / ca.CLIENT_CERT).read_bytes())
    with pytest.raises(FunopsError, match="one CA certificate expected"):
        ca.certificate_to_ship(tmp_path)


def test_client_cert_and_key_go_together() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="clientCert and clientKey go together"):
        Node.model_validate({"name": "n1", "address": ADDRESS, "transport": "agent",
                             "agent": {"url": f"https://{ADDRESS}:1", "clientCert": "c.pem"}})  # fmt: skip
