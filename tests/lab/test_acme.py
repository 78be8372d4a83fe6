"""The ACME protocol side against the lab's real pebble and BIND (no nodes needed): DNS-01 for a
wildcard through RFC 2136, HTTP-01 from a real HTTP server on a slot address, a served certificate
verified by curl against pebble's root, a rejected nonce retried, the account registered once, and
the CA's own problem document in the errors."""

from __future__ import annotations

import http.server
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.tsig
import dns.update
import pytest

from funops.acme import AcmeError, CertificateRequest, Dns01Config, IssuerConfig
from funops.acme import client as acme
from funops.acme.dns01 import authoritative_servers
from lab.acme import CA_HOST, AcmeLab
from lab.acme import status as lab_acme_status
from lab.config import lab_slot


def issuer(lab: AcmeLab, **kw: object) -> IssuerConfig:
    return IssuerConfig(
        name="pebble", directory=lab.directory, email="ops@lab.test", ca_bundle=Path(lab.ca_bundle), **kw
    )


def dns_config(lab: AcmeLab) -> Dns01Config:
    return Dns01Config(
        server=lab.dns_server,
        port=lab.dns_port,
        zone=lab.zone,
        tsig_key_name=lab.tsig_key_name,
        tsig_algorithm=lab.tsig_algorithm,
        tsig_secret=lab.tsig_secret,
        propagation_seconds=30,
    )


def ask(lab: AcmeLab, name: str, rdtype: str) -> list[str]:
    reply = dns.query.udp(dns.message.make_query(name, rdtype), lab.dns_server, port=lab.dns_port, timeout=5)
    return [rr.to_text() for rrset in reply.answer for rr in rrset]


def set_a_record(lab: AcmeLab, name: str, address: str) -> None:
    """The test's own name in lab.test, added the way any client adds one: a TSIG-signed update."""
    key = dns.tsig.Key(lab.tsig_key_name, lab.tsig_secret, lab.tsig_algorithm)
    update = dns.update.UpdateMessage(lab.zone, keyring=key)
    update.replace(dns.name.from_text(name), 60, "A", address)
    assert dns.query.tcp(update, lab.dns_server, port=lab.dns_port, timeout=5).rcode() == 0


def slot_address(host: int) -> str:
    assert host != CA_HOST
    return f"127.0.{lab_slot()}.{host}"


class TokenServer(http.server.ThreadingHTTPServer):
    """Port 80 of one slot address, answering /.well-known/acme-challenge/<token> from `tokens`:
    an HTTP-01 presenter the CA really validates against."""

    def __init__(self, address: str) -> None:
        self.tokens: dict[str, str] = {}
        self.presented: list[list[str]] = []
        self.cleaned: list[list[str]] = []
        tokens = self.tokens

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                token = self.path.removeprefix("/.well-known/acme-challenge/")
                body = tokens.get(token)
                self.send_response(200 if body else 404)
                self.end_headers()
                self.wfile.write((body or "").encode())

            def log_message(self, *args: object) -> None:
                pass

        super().__init__((address, 80), Handler)

    def present(self, tokens: dict[str, str]) -> None:
        self.presented.append(list(tokens))
        self.tokens.update(tokens)

    def cleanup(self, tokens: list[str]) -> None:
        self.cleaned.append(list(tokens))
        for token in tokens:
            self.tokens.pop(token, None)


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    server = TokenServer(slot_address(249))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_dns01_wildcard_through_bind_leaves_no_txt_record(acme_lab: AcmeLab) -> None:
    config = dns_config(acme_lab)
    assert authoritative_servers(config) == [(acme_lab.dns_server, acme_lab.dns_port)]  # through NS + A
    request = CertificateRequest(
        name="wildcard", domains=("*.lab.test", "lab.test"), challenge="dns-01", dns=config
    )

    cert = acme.issue(issuer(acme_lab), acme.new_private_key("ecdsa-p256"), request, None)

    assert cert.domains == ("*.lab.test", "lab.test")
    assert "Pebble" in cert.issuer and cert.not_after > cert.not_before
    assert b"PRIVATE KEY" in cert.key_pem and b"PRIVATE KEY" not in cert.fullchain_pem
    assert "PRIVATE" not in repr(cert)
    assert ask(acme_lab, "_acme-challenge.lab.test.", "TXT") == []  # deleted afterwards


def test_http01_issues_and_curl_verifies_the_served_certificate_against_pebbles_root(
    acme_lab: AcmeLab, token_server: TokenServer, tmp_path: Path
) -> None:
    name = "h01.lab.test"
    set_a_record(acme_lab, name, slot_address(249))
    request = CertificateRequest(name="h01", domains=(name,), key_type="rsa2048")

    cert = acme.issue(issuer(acme_lab), acme.new_private_key("ecdsa-p256"), request, token_server)

    assert cert.domains == (name,)
    assert token_server.presented and token_server.cleaned == token_server.presented
    assert token_server.tokens == {}
    (tmp_path / "fullchain.pem").write_bytes(cert.fullchain_pem)
    (tmp_path / "key.pem").write_bytes(cert.key_pem)
    (tmp_path / "root.pem").write_bytes(acme_lab.fetch_root())
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(tmp_path / "fullchain.pem", tmp_path / "key.pem")
    server = http.server.ThreadingHTTPServer((slot_address(249), 0), http.server.SimpleHTTPRequestHandler)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        curl = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{ssl_verify_result}",
             "--cacert", str(tmp_path / "root.pem"), "--resolve", f"{name}:{port}:{slot_address(249)}",
             f"https://{name}:{port}/"],
            capture_output=True, text=True, timeout=30, cwd=tmp_path, check=False,
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert curl.returncode == 0, curl.stderr
    assert curl.stdout.split()[1] == "0"  # verified against pebble's root


def test_a_challenge_that_cannot_succeed_names_domain_challenge_and_the_cas_problem(
    acme_lab: AcmeLab,
) -> None:
    name = "nothing.lab.test"
    set_a_record(acme_lab, name, slot_address(248))  # nothing listens on its port 80

    class Placed:
        def __init__(self) -> None:
            self.tokens: dict[str, str] = {}

        def present(self, tokens: dict[str, str]) -> None:
            self.tokens.update(tokens)

        def cleanup(self, tokens: list[str]) -> None:
            for t in tokens:
                self.tokens.pop(t)

    presenter = Placed()
    request = CertificateRequest(name="nothing", domains=(name,))
    with pytest.raises(AcmeError) as failed:
        acme.issue(issuer(acme_lab), acme.new_private_key("ecdsa-p256"), request, presenter)

    error = failed.value
    assert error.domain == name and error.challenge == "http-01"
    assert error.problem["type"] == "urn:ietf:params:acme:error:connection"
    assert slot_address(248) in error.problem["detail"]
    assert name in str(error) and "urn:ietf:params:acme:error:connection" in str(error)
    assert presenter.tokens == {}  # removed after the failure too


def test_a_rejected_nonce_is_retried(acme_lab: AcmeLab) -> None:
    client = acme.connect(issuer(acme_lab), acme.new_private_key("ecdsa-p256"))
    client.net._nonces = {b"not-a-nonce-this-ca-gave"}  # the CA answers badNonce to it

    account, created = acme.ensure_account(client, issuer(acme_lab))

    assert created and account.uri.startswith(acme_lab.directory.removesuffix("/dir"))
    assert client.net.bad_nonces >= 1


def test_eab_registers_and_a_wrong_eab_key_brings_the_cas_problem(acme_lab: AcmeLab) -> None:
    good = issuer(acme_lab, eab_kid=acme_lab.eab_kid, eab_hmac_key=acme_lab.eab_hmac_key)
    _, created = acme.ensure_account(acme.connect(good, acme.new_private_key("ecdsa-p256")), good)
    assert created

    wrong = issuer(acme_lab, eab_kid=acme_lab.eab_kid, eab_hmac_key="AAAA" + acme_lab.eab_hmac_key[4:])
    with pytest.raises(AcmeError) as failed:
        acme.ensure_account(acme.connect(wrong, acme.new_private_key("ecdsa-p256")), wrong)
    assert failed.value.problem.get("type", "").startswith("urn:ietf:params:acme:error:")
    assert "registering an ACME account at pebble" in str(failed.value)
    assert acme_lab.eab_hmac_key not in str(failed.value)


def test_account_init_registers_once_and_takes_the_key_from_env_in_ci(
    acme_lab: AcmeLab, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    (repo / "inventory").mkdir(parents=True)
    (repo / "inventory" / "none.yaml").write_text("nodes: []\n")
    (repo / "pebble-ca.pem").write_bytes(Path(acme_lab.ca_bundle).read_bytes())
    (repo / "funops.yaml").write_text(
        "apiVersion: funops/v1\nacme:\n  issuers:\n    pebble:\n"
        f"      directory: {acme_lab.directory}\n      email: ops@lab.test\n      caBundle: pebble-ca.pem\n"
        "      accountKeyFromEnv: LAB_ACME_ACCOUNT_KEY\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LAB_ACME_ACCOUNT_KEY"}

    def init(environment: dict[str, str]) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "funops", "acme", "account", "init", "--issuer", "pebble",
             "--repo", str(repo)],
            capture_output=True, text=True, env=environment, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    first, second = init(env), init(env)
    key_file = repo / ".funops" / "acme" / "pebble.key"
    assert "account registered" in first and "made now" in first
    assert "account exists" in second and "made now" not in second
    uri = first.split("account registered: ")[1].split(";")[0]
    assert uri in second
    assert key_file.stat().st_mode & 0o777 == 0o600

    key = key_file.read_text()
    key_file.unlink()  # a CI runner: no file, the key in the variable
    ci = init({**env, "LAB_ACME_ACCOUNT_KEY": key})
    assert f"account exists: {uri}" in ci and "$LAB_ACME_ACCOUNT_KEY" in ci
    assert not key_file.exists() and "PRIVATE" not in ci


def test_an_update_signed_with_the_wrong_tsig_key_is_refused_and_nothing_is_ordered(
    acme_lab: AcmeLab,
) -> None:
    config = dns_config(acme_lab)
    wrong = Dns01Config(**{**config.__dict__, "tsig_secret": "d3JvbmcgdHNpZyBzZWNyZXQgb2YgMzIgYnl0ZXMhIQ=="})
    request = CertificateRequest(name="wrong-key", domains=("wrong.lab.test",), challenge="dns-01", dns=wrong)

    with pytest.raises(AcmeError) as failed:
        acme.issue(issuer(acme_lab), acme.new_private_key("ecdsa-p256"), request, None)

    assert (failed.value.domain, failed.value.challenge) == ("wrong.lab.test", "dns-01")
    assert "adding the DNS-01 TXT records (_acme-challenge.wrong.lab.test) on" in str(failed.value)
    assert "refused TSIG key funops-lab" in str(failed.value)
    assert wrong.tsig_secret not in str(failed.value)
    assert ask(acme_lab, "_acme-challenge.wrong.lab.test.", "TXT") == []


def test_the_lab_ca_listens_on_its_own_loopback_address_only(acme_lab: AcmeLab) -> None:
    pids = {lab_acme_status()[name] for name in ("named", "pebble")}
    listening = subprocess.run(["ss", "-Hlntup"], capture_output=True, text=True, check=True).stdout
    ours = [line.split()[4] for line in listening.splitlines() if any(f"pid={pid}," in line for pid in pids)]
    assert ours and {local.rsplit(":", 1)[0] for local in ours} == {acme_lab.dns_server}
    assert {local.rsplit(":", 1)[1] for local in ours} == {"53", "14000", "15000"}
