"""One ACME order (RFC 8555) with certbot's `acme` library: a key made in memory, its CSR, the
challenges (HTTP-01 through the caller's presenter, DNS-01 by an RFC 2136 update), finalize, and
the issued chain.

Every failure becomes an `AcmeError` naming the domain, the challenge and the CA's own problem
document. Each HTTP request is bounded (`REQUEST_SECONDS`), the whole order too (`timeout`).
The certificate's key exists only in this process until it is returned; the account key is only
used to sign. Neither is logged (the library logs JWS payloads: the CSR, never a key).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from . import AcmeError, CertificateRequest, Http01Presenter, IssuedCertificate, IssuerConfig
from .inspect import describe

if TYPE_CHECKING:
    import josepy as jose
    import requests
    from acme import client as acme_client
    from acme import messages
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

log = logging.getLogger(__name__)

REQUEST_SECONDS = 30  # one HTTP request to the CA
ORDER_SECONDS = 300.0  # a whole order: challenges validated, finalized, certificate fetched
NONCE_ATTEMPTS = 6  # a CA may reject any nonce (RFC 8555 §6.5; pebble does 5% on purpose)
RATE_LIMITED = "urn:ietf:params:acme:error:rateLimited"


def new_private_key(key_type: str) -> PrivateKeyTypes:
    """A certificate's (or account's) key: ECDSA P-256 (default) or RSA 2048/3072."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if key_type == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type in ("rsa2048", "rsa3072"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    raise ValueError(f"unknown key type {key_type!r} (ecdsa-p256, rsa2048 or rsa3072)")


def private_pem(key: PrivateKeyTypes) -> bytes:
    from cryptography.hazmat.primitives import serialization as s

    return key.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption())


def account_jwk(account_key: PrivateKeyTypes) -> tuple[jose.JWK, jose.JWASignature]:
    """The account key as a JWK and the JWS algorithm it signs with (ES256 or RS256)."""
    import josepy as jose
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(account_key, ec.EllipticCurvePrivateKey) and account_key.curve.name == "secp256r1":
        return jose.JWKEC(key=account_key), jose.ES256
    if isinstance(account_key, rsa.RSAPrivateKey):
        return jose.JWKRSA(key=account_key), jose.RS256
    raise AcmeError("the ACME account key must be ECDSA P-256 or RSA")


def challenge_domain(domain: str) -> str:
    """The name a challenge validates: a wildcard's base name (`*.example.com` → `example.com`)."""
    return domain[2:] if domain.startswith("*.") else domain


def _network_class() -> type:
    from acme import client as acme_client
    from acme import messages

    class Network(acme_client.ClientNetwork):
        """The library's network, retrying a rejected nonce more than once and remembering the
        last response (a rate-limit error's Retry-After lives in its headers)."""

        last_response: requests.Response | None = None
        bad_nonces = 0  # how many the CA rejected (and were retried), for tests

        def _send_request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
            self.last_response = super()._send_request(method, url, *args, **kwargs)
            return self.last_response

        def post(self, *args: Any, **kwargs: Any) -> requests.Response:
            for attempt in range(NONCE_ATTEMPTS):
                try:
                    return self._post_once(*args, **kwargs)
                except messages.Error as exc:
                    if exc.code != "badNonce" or attempt == NONCE_ATTEMPTS - 1:
                        raise
                    self.bad_nonces += 1
                    log.debug("the CA rejected a nonce; retrying with a fresh one")
            raise AssertionError("unreachable")

    return Network


def connect(issuer: IssuerConfig, account_key: PrivateKeyTypes) -> acme_client.ClientV2:
    """A client for the issuer's directory, signing with the account key (no account bound yet)."""
    from acme import client as acme_client

    jwk, alg = account_jwk(account_key)
    verify: bool | str = str(issuer.ca_bundle) if issuer.ca_bundle else True
    net = _network_class()(jwk, alg=alg, verify_ssl=verify, user_agent="funops", timeout=REQUEST_SECONDS)
    with _translated(f"reading the directory of issuer {issuer.name}", net=net, issuer=issuer):
        directory = acme_client.ClientV2.get_directory(issuer.directory, net)
    return acme_client.ClientV2(directory, net)


def ensure_account(
    client: acme_client.ClientV2, issuer: IssuerConfig
) -> tuple[messages.RegistrationResource, bool]:
    """The account of this key at the CA, registered when there is none yet (agreeing to the terms
    of service, with EAB when configured); binds the client to it. Returns (account, created)."""
    from acme import errors, messages

    with _translated(f"looking up the ACME account at {issuer.name}", net=client.net, issuer=issuer):
        try:
            client.new_account(messages.NewRegistration(only_return_existing=True))
            # A server answering 201 to onlyReturnExisting would be wrong; new_account bound it anyway.
            return client.net.account, False
        except errors.ConflictError as existing:
            return _bind(client, existing.location), False
        except messages.Error as exc:
            if exc.code != "accountDoesNotExist":
                raise
    eab = None
    if issuer.eab_kid and issuer.eab_hmac_key:
        eab = messages.ExternalAccountBinding.from_data(
            account_public_key=client.net.key.public_key(),
            kid=issuer.eab_kid,
            hmac_key=issuer.eab_hmac_key,
            directory=client.directory,
        )
    registration = messages.NewRegistration.from_data(
        email=issuer.email, terms_of_service_agreed=True, external_account_binding=eab
    )
    with _translated(f"registering an ACME account at {issuer.name}", net=client.net, issuer=issuer):
        try:
            return client.new_account(registration), True
        except errors.ConflictError as existing:  # registered meanwhile (another run)
            return _bind(client, existing.location), False


def _bind(client: acme_client.ClientV2, location: str) -> messages.RegistrationResource:
    from acme import messages

    regr = messages.RegistrationResource(body=messages.Registration(), uri=location)
    client.net.account = regr
    return regr


def issue(
    issuer: IssuerConfig,
    account_key: PrivateKeyTypes,
    request: CertificateRequest,
    presenter: Http01Presenter | None,
    *,
    timeout: float = ORDER_SECONDS,
) -> IssuedCertificate:
    """Order one certificate for `request.domains` and return it with its new key.

    HTTP-01 places every token through `presenter` (on every edge node) before any is answered and
    removes them afterwards, whatever happened; DNS-01 adds the TXT records through `request.dns`,
    waits until each authoritative server answers them, and deletes them afterwards."""
    from acme import crypto_util

    _check(request, presenter)
    key = new_private_key(request.key_type)
    key_pem = private_pem(key)
    csr_pem = crypto_util.make_csr(key_pem, list(request.domains))
    deadline = dt.datetime.now() + dt.timedelta(seconds=timeout)  # naive local: as the library compares

    client = connect(issuer, account_key)
    ensure_account(client, issuer)
    names = ", ".join(request.domains)
    with _translated(f"ordering a certificate for {names} from {issuer.name}", net=client.net, issuer=issuer):
        order = client.new_order(csr_pem)
    pending = _pending_challenges(order, request)
    jwk = client.net.key
    with (
        _translated(
            f"validating {names} at {issuer.name}", net=client.net, issuer=issuer, challenge=request.challenge
        ),
        _presented(pending, jwk, request, presenter),
    ):
        for challb, _domain in pending:
            client.answer_challenge(challb, challb.response(jwk))
        order = client.poll_authorizations(order, deadline)
    with _translated(f"finalizing the order for {names} at {issuer.name}", net=client.net, issuer=issuer):
        order = client.finalize_order(order, deadline)
    fullchain = order.fullchain_pem.encode()
    info = describe(fullchain)
    return IssuedCertificate(
        key_pem=key_pem,
        fullchain_pem=fullchain,
        serial=info.serial,
        domains=info.domains,
        not_before=info.not_before,
        not_after=info.not_after,
        issuer=info.issuer,
    )


def _check(request: CertificateRequest, presenter: Http01Presenter | None) -> None:
    if not request.domains:
        raise AcmeError(f"certificate {request.name}: no domains to order")
    wildcards = [d for d in request.domains if d.startswith("*.")]
    if request.challenge == "http-01":
        if wildcards:
            raise AcmeError(
                f"certificate {request.name}: a wildcard name needs the dns-01 challenge",
                domain=wildcards[0],
                challenge="http-01",
            )
        if presenter is None:
            raise AcmeError(f"certificate {request.name}: http-01 needs a presenter", challenge="http-01")
    elif request.dns is None:
        raise AcmeError(f"certificate {request.name}: dns-01 needs a DNS server", challenge="dns-01")


def _pending_challenges(
    order: messages.OrderResource, request: CertificateRequest
) -> list[tuple[messages.ChallengeBody, str]]:
    """(challenge, domain) of each authorization still to prove (a CA may reuse valid ones)."""
    from acme import messages

    pending = []
    for authz in order.authorizations:
        body = authz.body
        domain = ("*." if body.wildcard else "") + body.identifier.value
        if body.status == messages.STATUS_VALID:
            continue
        offered = [c for c in body.challenges if c.chall.typ == request.challenge]
        if not offered:
            kinds = ", ".join(sorted(c.chall.typ for c in body.challenges)) or "none"
            raise AcmeError(
                f"the CA offers no {request.challenge} challenge (it offers {kinds})",
                domain=domain,
                challenge=request.challenge,
            )
        pending.append((offered[0], domain))
    return pending


@contextlib.contextmanager
def _presented(
    pending: list[tuple[messages.ChallengeBody, str]],
    jwk: jose.JWK,
    request: CertificateRequest,
    presenter: Http01Presenter | None,
) -> Iterator[None]:
    """Every challenge's proof in place for the duration, removed afterwards (also on failure)."""
    if not pending:
        yield
        return
    if request.challenge == "dns-01":
        from .dns01 import txt_records

        assert request.dns is not None
        records: dict[str, list[str]] = {}
        for challb, domain in pending:
            name = challb.chall.validation_domain_name(challenge_domain(domain))
            records.setdefault(name, []).append(challb.chall.validation(jwk))
        try:
            with txt_records(request.dns, records):
                yield
        except AcmeError as exc:
            exc.domain = exc.domain or ", ".join(d for _, d in pending)  # the DNS side knows only records
            raise
        return
    assert presenter is not None
    tokens = {challb.chall.encode("token"): challb.chall.validation(jwk) for challb, _ in pending}
    try:
        try:
            presenter.present(tokens)
        except AcmeError:
            raise
        except Exception as exc:
            domains = ", ".join(d for _, d in pending)
            raise AcmeError(
                f"placing the HTTP-01 tokens failed: {exc}", domain=domains, challenge="http-01"
            ) from exc
        yield
    finally:
        try:
            presenter.cleanup(list(tokens))
        except Exception as exc:  # the order's own outcome matters more than a leftover token
            log.warning("removing the HTTP-01 tokens failed: %s", exc)


def problem_document(error: messages.Error) -> dict[str, Any]:
    """The CA's RFC 7807 problem as plain JSON (type, detail, identifier, subproblems)."""
    return json.loads(error.json_dumps())


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """A Retry-After header (seconds or an HTTP date) as an aware UTC time; None when absent/bad."""
    if not value:
        return None
    now = now or dt.datetime.now(dt.UTC)
    value = value.strip()
    if value.isdigit():
        return now + dt.timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC)


@contextlib.contextmanager
def _translated(step: str, *, net: Any, issuer: IssuerConfig, challenge: str | None = None) -> Iterator[None]:
    """The library's and requests' exceptions as an AcmeError saying what was being done."""
    import requests
    from acme import errors, messages

    try:
        yield
    except AcmeError:
        raise
    except errors.ValidationError as exc:
        raise _validation_error(step, exc, challenge) from None
    except errors.IssuanceError as exc:
        raise AcmeError(f"{step}: the CA refused to issue", problem=problem_document(exc.error)) from None
    except messages.Error as exc:
        raise _refused(step, exc, net, challenge) from None
    except errors.TimeoutError:
        raise AcmeError(f"{step}: the CA did not finish in time", challenge=challenge) from None
    except requests.exceptions.SSLError as exc:
        hint = "" if issuer.ca_bundle else " (a private CA needs its root in the issuer's caBundle)"
        raise AcmeError(f"{step}: TLS to {issuer.directory} failed{hint}: {exc}") from None
    except requests.exceptions.RequestException as exc:
        raise AcmeError(f"{step}: the CA at {issuer.directory} is unreachable: {exc}") from None
    except errors.Error as exc:
        raise AcmeError(f"{step}: {exc or type(exc).__name__}", challenge=challenge) from None


def _refused(step: str, exc: messages.Error, net: Any, challenge: str | None) -> AcmeError:
    problem = problem_document(exc)
    retry_after = None
    if problem.get("type") == RATE_LIMITED and net.last_response is not None:
        retry_after = parse_retry_after(net.last_response.headers.get("Retry-After"))
    identifier = (problem.get("identifier") or {}).get("value")
    return AcmeError(
        f"{step}: the CA refused",
        domain=identifier,
        challenge=challenge,
        problem=problem,
        retry_after=retry_after,
    )


def _validation_error(step: str, exc: Any, challenge: str | None) -> AcmeError:
    """The first failed authorization's domain and challenge error (all of them in the message)."""
    failures: list[tuple[str, str, dict[str, Any]]] = []
    for authz in exc.failed_authzrs:
        body = authz.body
        domain = ("*." if body.wildcard else "") + body.identifier.value
        for challb in body.challenges:
            if challb.error is not None:
                failures.append((domain, challb.chall.typ, problem_document(challb.error)))
    if not failures:
        return AcmeError(f"{step}: validation failed", challenge=challenge)
    domain, kind, problem = failures[0]
    others = "; ".join(f"{d} ({k}): {p.get('detail', '')}" for d, k, p in failures[1:])
    message = f"{step}: the CA could not validate {domain}" + (f"; also {others}" if others else "")
    return AcmeError(message, domain=domain, challenge=kind, problem=problem)
