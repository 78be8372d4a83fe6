"""The ACME client's pure parts: the CA's problem documents in errors (subproblems, Retry-After),
challenge names of wildcards, key types, the bridge from funops.yaml, and keys kept out of repr.
The protocol itself runs against the lab's real pebble (tests/lab/test_acme.py)."""

from __future__ import annotations

import datetime as dt
import types
from pathlib import Path

import pytest
from acme import errors, messages
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from funops.acme import AcmeError, CertificateRequest, Dns01Config, IssuedCertificate, IssuerConfig, account
from funops.acme import client as acme
from funops.acme.config import dns_config, issuer_config
from funops.acme.dns01 import challenge_name, txt_records
from funops.errors import FunopsError, InputError
from funops.load.loader import load_project

RATE_LIMITED = "urn:ietf:params:acme:error:rateLimited"
NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def test_the_error_names_domain_challenge_and_every_subproblem() -> None:
    problem = acme.problem_document(
        messages.Error.from_json(
            {
                "type": "urn:ietf:params:acme:error:compound",
                "detail": "2 identifiers failed",
                "subproblems": [
                    {
                        "type": "urn:ietf:params:acme:error:caa",
                        "detail": "CAA forbids",
                        "identifier": {"type": "dns", "value": "a.example.com"},
                    },
                    {"type": "urn:ietf:params:acme:error:dns", "detail": "NXDOMAIN"},
                ],
            }
        )
    )
    error = AcmeError("ordering failed", domain="a.example.com", challenge="http-01", problem=problem)
    assert str(error) == (
        "ordering failed [a.example.com, http-01] (CA: urn:ietf:params:acme:error:compound: 2 identifiers "
        "failed; a.example.com: urn:ietf:params:acme:error:caa: CAA forbids; "
        "urn:ietf:params:acme:error:dns: NXDOMAIN)"
    )
    assert not error.rate_limited and error.retry_after is None


def test_a_rate_limit_carries_the_cas_retry_after() -> None:
    response = types.SimpleNamespace(headers={"Retry-After": "3600"})
    net = types.SimpleNamespace(last_response=response)
    refused = messages.Error.from_json({"type": RATE_LIMITED, "detail": "too many certificates"})
    error = acme._refused("ordering", refused, net, "dns-01")
    assert error.rate_limited and error.challenge == "dns-01"
    assert error.retry_after is not None
    wait = (error.retry_after - dt.datetime.now(dt.UTC)).total_seconds()
    assert 3500 < wait <= 3600
    assert "rateLimited: too many certificates" in str(error) and "retry after" in str(error)


def test_retry_after_is_seconds_or_an_http_date() -> None:
    assert acme.parse_retry_after("120", NOW) == NOW + dt.timedelta(seconds=120)
    assert acme.parse_retry_after("Sun, 06 Dec 2026 13:00:00 GMT", NOW) == NOW + dt.timedelta(hours=1)
    assert acme.parse_retry_after("soon", NOW) is None
    assert acme.parse_retry_after(None, NOW) is None


def test_a_failed_authorization_names_its_domain_challenge_and_problem() -> None:
    authz = messages.AuthorizationResource(
        uri="https://ca/authz/1",
        body=messages.Authorization.from_json(
            {
                "identifier": {"type": "dns", "value": "example.com"},
                "status": "invalid",
                "wildcard": True,
                "challenges": [
                    {
                        "type": "dns-01",
                        "url": "https://ca/chall/1",
                        "status": "invalid",
                        "token": "x" * 43,
                        "error": {"type": "urn:ietf:params:acme:error:unauthorized", "detail": "wrong TXT"},
                    }
                ],
            }
        ),
    )
    error = acme._validation_error("validating", errors.ValidationError([authz]), "dns-01")
    assert (error.domain, error.challenge) == ("*.example.com", "dns-01")
    assert error.problem == {"type": "urn:ietf:params:acme:error:unauthorized", "detail": "wrong TXT"}
    assert "could not validate *.example.com" in str(error) and "wrong TXT" in str(error)


def test_a_wildcard_is_validated_at_its_base_name() -> None:
    assert challenge_name("*.example.com") == "_acme-challenge.example.com."
    assert challenge_name("www.example.com.") == "_acme-challenge.www.example.com."
    assert acme.challenge_domain("*.example.com") == "example.com"
    assert acme.challenge_domain("example.com") == "example.com"


def test_a_wildcard_needs_dns01_and_each_challenge_its_means() -> None:
    with pytest.raises(AcmeError, match="wildcard name needs the dns-01") as wild:
        acme._check(CertificateRequest(name="c", domains=("*.example.com",)), object())  # type: ignore[arg-type]
    assert (wild.value.domain, wild.value.challenge) == ("*.example.com", "http-01")
    with pytest.raises(AcmeError, match="needs a presenter"):
        acme._check(CertificateRequest(name="c", domains=("example.com",)), None)
    with pytest.raises(AcmeError, match="needs a DNS server"):
        acme._check(CertificateRequest(name="c", domains=("example.com",), challenge="dns-01"), None)


def test_a_txt_record_outside_the_zone_is_refused_before_any_update() -> None:
    config = Dns01Config("127.0.0.1", 1, "example.com.", "k", "hmac-sha256", "c2VjcmV0")
    with (
        pytest.raises(AcmeError, match=r"not in the DNS zone example\.com"),
        txt_records(config, {"_acme-challenge.example.org.": ["v"]}),
    ):
        pass


@pytest.mark.parametrize(
    ("key_type", "kind", "size"),
    [("ecdsa-p256", ec.EllipticCurvePrivateKey, 256), ("rsa2048", rsa.RSAPrivateKey, 2048),
     ("rsa3072", rsa.RSAPrivateKey, 3072)],
)  # fmt: skip
def test_key_types(key_type: str, kind: type, size: int) -> None:
    key = acme.new_private_key(key_type)
    assert isinstance(key, kind) and key.key_size == size
    assert acme.private_pem(key).startswith(b"-----BEGIN PRIVATE KEY-----")


def test_an_unknown_key_type_and_an_unusable_account_key_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown key type"):
        acme.new_private_key("dsa")
    assert acme.account_jwk(acme.new_private_key("ecdsa-p256"))[1].name == "ES256"
    assert acme.account_jwk(acme.new_private_key("rsa2048"))[1].name == "RS256"
    with pytest.raises(AcmeError, match="P-256 or RSA"):
        acme.account_jwk(ec.generate_private_key(ec.SECP384R1()))
    p384 = acme.private_pem(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(FunopsError, match="P-256 or RSA"):
        account.parse_key(p384, "$KEY")
    with pytest.raises(FunopsError, match=r"\$KEY: not an unencrypted private key"):
        account.parse_key(b"garbage", "$KEY")


def test_no_key_or_secret_in_repr() -> None:
    key_pem = acme.private_pem(acme.new_private_key("ecdsa-p256"))
    issued = IssuedCertificate(key_pem, b"CERT", "1f", ("a.example",), NOW, NOW, "CN=ca")
    assert "PRIVATE" not in repr(issued) and "1f" in repr(issued)
    assert "hmacsecret" not in repr(
        IssuerConfig("ca", "https://ca/dir", eab_kid="k", eab_hmac_key="hmacsecret")
    )
    assert "tsigsecret" not in repr(Dns01Config("ns", 53, "example.com.", "k", "hmac-sha256", "tsigsecret"))


def _repo(tmp_path: Path, acme_yaml: str) -> Path:
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "none.yaml").write_text("nodes: []\n")
    (tmp_path / "funops.yaml").write_text("apiVersion: funops/v1\nacme:\n" + acme_yaml)
    return tmp_path


ACME_YAML = """\
  issuers:
    le:
      directory: https://acme-staging-v02.api.letsencrypt.org/directory
      email: ops@example.com
      caBundle: certs/ca.pem
      eab:
        kid: kid-1
        hmacKey: {fromEnv: TEST_ACME_EAB}
      accountKeyFromEnv: TEST_ACME_ACCOUNT_KEY
  dns:
    primary:
      server: 192.0.2.53
      port: 5353
      zone: example.com
      tsigKeyName: acme-key
      tsigSecret: {fromFile: secrets/tsig.key}
"""


def test_the_config_bridge_reads_funops_yaml_and_its_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _repo(tmp_path, ACME_YAML)
    (repo / "secrets").mkdir()
    (repo / "secrets" / "tsig.key").write_text("dHNpZw==\n")
    monkeypatch.setenv("TEST_ACME_EAB", "aG1hYw")
    project = load_project(repo, None, None, manifests=False)

    issuer = issuer_config(project, "le")
    assert issuer == IssuerConfig(
        "le", "https://acme-staging-v02.api.letsencrypt.org/directory", "ops@example.com", "kid-1", "aG1hYw",
        repo / "certs" / "ca.pem",
    )  # fmt: skip
    assert dns_config(project, "primary") == Dns01Config(
        "192.0.2.53", 5353, "example.com.", "acme-key", "hmac-sha256", "dHNpZw=="
    )


def test_the_config_bridge_names_funops_yaml_line_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_ACME_EAB", raising=False)
    project = load_project(_repo(tmp_path, ACME_YAML), None, None, manifests=False)
    with pytest.raises(InputError) as unset:
        issuer_config(project, "le")
    assert [str(p) for p in unset.value.problems] == [
        "funops.yaml:10: acme.issuers.le.eab.hmacKey.fromEnv: environment variable TEST_ACME_EAB is not set"
    ]
    with pytest.raises(InputError) as unreadable:
        dns_config(project, "primary")
    assert (
        "funops.yaml:18: acme.dns.primary.tsigSecret.fromFile: cannot read secret file secrets/tsig.key"
        in str(unreadable.value.problems[0])
    )
    with pytest.raises(InputError, match="1 problem") as unknown:
        issuer_config(project, "zerossl")
    assert "no ACME issuer 'zerossl' (issuers: le)" in str(unknown.value.problems[0])


def test_the_account_key_comes_from_the_env_variable_else_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_ACME_ACCOUNT_KEY", raising=False)
    with pytest.raises(
        FunopsError, match=r"set \$TEST_ACME_ACCOUNT_KEY .* `funops acme account init --issuer le"
    ):
        account.load_key(tmp_path, "le", "TEST_ACME_ACCOUNT_KEY")
    file_key = acme.private_pem(acme.new_private_key("ecdsa-p256"))
    account.key_file(tmp_path, "le").parent.mkdir(parents=True)
    account.key_file(tmp_path, "le").write_bytes(file_key)
    assert account.load_key(tmp_path, "le", "TEST_ACME_ACCOUNT_KEY")[1].endswith(".funops/acme/le.key")
    monkeypatch.setenv("TEST_ACME_ACCOUNT_KEY", acme.private_pem(acme.new_private_key("rsa2048")).decode())
    key, where = account.load_key(tmp_path, "le", "TEST_ACME_ACCOUNT_KEY")
    assert where == "$TEST_ACME_ACCOUNT_KEY" and isinstance(key, rsa.RSAPrivateKey)
