"""Certificates from an ACME CA: the types the protocol side (`funops.acme.client`) and the fleet side
(the Certificate manifest, its node resources, plan and apply) share.

The controller runs the ACME order itself: the certificate's key is made in its memory, the CSR sent,
the challenges presented (HTTP-01 on every edge node serving the names, DNS-01 by an RFC 2136 update),
the order finalized; certificate and key then go to the nodes like any other secret file. Nothing
here touches a node: presenting an HTTP-01 token is the caller's job (`Http01Presenter`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

KeyType = Literal["ecdsa-p256", "rsa2048", "rsa3072"]
ChallengeType = Literal["http-01", "dns-01"]


@dataclass(frozen=True)
class IssuerConfig:
    """An ACME CA as funops.yaml names it (its directory URL, the account's contact, optional EAB)."""

    name: str
    directory: str
    email: str | None = None
    eab_kid: str | None = None
    eab_hmac_key: str | None = field(default=None, repr=False)  # base64url, a secret
    ca_bundle: Path | None = None  # a private ACME CA's root(s), for the HTTPS to its directory


@dataclass(frozen=True)
class Dns01Config:
    """Where DNS-01's TXT records go: an authoritative server taking TSIG-signed RFC 2136 updates."""

    server: str  # host or address of the primary that takes updates
    port: int
    zone: str  # e.g. example.test.
    tsig_key_name: str
    tsig_algorithm: str  # e.g. hmac-sha256
    tsig_secret: str = field(repr=False)  # base64, read from a secret file
    propagation_seconds: float = 120  # how long to wait for every authoritative server to answer


@dataclass(frozen=True)
class CertificateRequest:
    """One certificate to order: its names (the first is the subject), key type and challenge."""

    name: str  # the Certificate manifest's name (for messages)
    domains: tuple[str, ...]
    key_type: KeyType = "ecdsa-p256"
    challenge: ChallengeType = "http-01"
    dns: Dns01Config | None = None  # with dns-01


class Http01Presenter(Protocol):
    """Places HTTP-01 key authorizations where the CA will look: on every edge node serving the names."""

    def present(self, tokens: dict[str, str]) -> None:
        """token -> key authorization, served at /.well-known/acme-challenge/<token> by every edge
        node; raises (naming the node) unless all of them hold every token."""

    def cleanup(self, tokens: list[str]) -> None:
        """Removes the tokens again (best effort: a failure is reported, never raised)."""


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate the CA issued and the key made for it. The key never reaches output or logs."""

    key_pem: bytes = field(repr=False)
    fullchain_pem: bytes
    serial: str  # lowercase hex, no colons
    domains: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    issuer: str  # the issuing CA's subject, as RFC 4514 text


class AcmeError(Exception):
    """An order that failed: which names, which challenge, and the CA's own problem document.

    `problem` is the RFC 7807 document as the CA sent it (type, detail, subproblems: each with its
    identifier); `retry_after` is when a rate-limited CA (urn:ietf:params:acme:error:rateLimited)
    said to come back, from its Retry-After header."""

    def __init__(
        self,
        message: str,
        *,
        domain: str | None = None,
        challenge: str | None = None,
        problem: dict[str, Any] | None = None,
        retry_after: dt.datetime | None = None,
    ) -> None:
        super().__init__(message)
        self.domain, self.challenge, self.problem = domain, challenge, problem or {}
        self.retry_after = retry_after

    @property
    def rate_limited(self) -> bool:
        return self.problem.get("type") == "urn:ietf:params:acme:error:rateLimited"

    def __str__(self) -> str:
        where = ", ".join(x for x in (self.domain, self.challenge) if x)
        tail = f" (CA: {_problem_text(self.problem)})" if self.problem else ""
        if self.retry_after is not None:
            tail += f"; the CA asks to retry after {self.retry_after:%Y-%m-%d %H:%M:%S} UTC"
        return f"{super().__str__()}{f' [{where}]' if where else ''}{tail}"


def _problem_text(problem: dict[str, Any]) -> str:
    """`type: detail`, then each subproblem as `identifier: type: detail` (RFC 8555 §6.7.1)."""
    text = ": ".join(str(x) for x in (problem.get("type"), problem.get("detail")) if x)
    subs = []
    for sub in problem.get("subproblems") or ():
        ident = (sub.get("identifier") or {}).get("value")
        subs.append(": ".join(str(x) for x in (ident, sub.get("type"), sub.get("detail")) if x))
    return text + (f"; {'; '.join(subs)}" if subs else "")
