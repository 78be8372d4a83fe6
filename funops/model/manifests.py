"""The manifest kinds every app type shares: Service, Ingress, Release, Certificate.

The Application kind, whose spec the app types make, sits above them in funops/apptypes/application.py
(docs/architecture.md, "Layers and imports"), with the list of every kind.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from .common import (
    FieldError,
    Metadata,
    Port,
    RepoPath,
    SafeName,
    SecretRef,
    Selector,
    Strict,
    pattern,
)
from .strategy import UpdateStrategy
from .versions import Artifact, ImageRef, Version

# Re-exported: where the models of a manifest are looked up.
__all__ = ["Artifact", "ImageRef", "Version"]


class ServiceSpec(Strict):
    app: SafeName
    """The Application this service routes to."""
    port: Port | None = None
    """The app's port to route to (default: the app's port)."""


class PathRule(Strict):
    path: Annotated[str, Field(pattern=pattern(r"^/[A-Za-z0-9_.~\-/]*$", "a URL path starting with /"))] = "/"
    """The URL path prefix this rule matches (default "/")."""
    service: SafeName
    """The Service the matching requests go to."""
    strip_prefix: bool = False
    """Remove the rule's path from the request's path before passing it on (default false)."""


IpAddress = Annotated[
    str, Field(pattern=pattern(r"^[0-9a-fA-F.:\[\]]+$", "an IP address such as 127.0.0.53"))
]


class Tls(Strict):
    """A certificate file of the repo and its key, or (`certificateRef`) a Certificate funops obtains
    from an ACME CA and renews by itself."""

    certificate: RepoPath | None = None
    """The certificate file (PEM) in the repo; goes with key."""
    key: SecretRef | None = None
    """The certificate's private key, as a secret reference."""
    certificate_ref: SafeName | None = None
    """A Certificate's name: funops obtains and renews it (instead of certificate and key)."""
    chain: RepoPath | None = None
    """The issuer chain file (PEM) in the repo: turns OCSP stapling on."""
    resolvers: Annotated[list[IpAddress], Field(min_length=1)] = ["127.0.0.53"]
    """The DNS resolvers nginx asks for OCSP (default 127.0.0.53)."""

    @model_validator(mode="after")
    def _one_source(self) -> Tls:
        if self.certificate_ref is not None:
            for name in ("certificate", "key", "chain"):
                if getattr(self, name) is not None:
                    raise FieldError((name,), "not valid with certificateRef (the Certificate provides it)")
        elif self.certificate is None or self.key is None:
            missing = "certificate" if self.certificate is None else "key"
            raise FieldError((missing,), "tls needs certificate and key, or certificateRef")
        return self


class Hsts(Strict):
    """Strict-Transport-Security on the TLS server (on by default; `hsts: false` turns it off)."""

    enabled: bool = True
    """Send Strict-Transport-Security (default true)."""
    max_age: Annotated[int, Field(ge=0)] = 63072000
    """Its max-age in seconds (default 63072000, two years)."""
    include_subdomains: bool = False
    """Add includeSubDomains (default false)."""
    preload: bool = False
    """Add preload: needs includeSubdomains and a maxAge of a year or more (default false)."""

    @model_validator(mode="after")
    def _preload(self) -> Hsts:
        if self.preload and not (self.include_subdomains and self.max_age >= 31536000):
            raise FieldError(("preload",), "preload needs includeSubdomains and a maxAge of a year or more")
        return self


class NginxOptions(Strict):
    client_max_body_size: Annotated[
        str, Field(pattern=pattern(r"^[0-9]+[kKmMgG]?$", "an nginx size such as 10m"))
    ] = "1m"
    """The largest request body nginx accepts, such as 10m (client_max_body_size, default 1m)."""
    proxy_connect_timeout: Annotated[int, Field(ge=1, le=3600)] = 5
    """Seconds nginx waits to connect to an instance (default 5)."""
    proxy_read_timeout: Annotated[int, Field(ge=1, le=86400)] = 60
    """Seconds nginx waits between two reads from an instance (default 60)."""
    websocket: bool = False
    """Pass WebSocket upgrades through (default false)."""
    keepalive: Annotated[int, Field(ge=0, le=1024)] = 16
    """Idle connections to each upstream that every nginx worker keeps open (default 16; 0: none)."""


DomainName = Annotated[
    str,
    Field(
        pattern=pattern(
            r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$",
            "a lowercase domain name such as www.example.com",
        )
    ),
]


class IngressSpec(Strict):
    selector: Selector
    """The edge nodes that serve this ingress with nginx."""
    domains: Annotated[list[DomainName], Field(min_length=1)]
    """The host names served (server_name)."""
    rules: Annotated[list[PathRule], Field(min_length=1)]
    """Which Service serves which URL path."""
    tls: Tls | None = None
    """Serve HTTPS with this certificate (without: HTTP only)."""
    http_port: Port = 80
    """The HTTP server's port (default 80)."""
    https_port: Port = 443
    """The HTTPS server's port (default 443)."""
    redirect_http: bool = True
    """With tls, redirect HTTP requests to HTTPS (default true)."""
    when_all_unhealthy: Literal["keep", "503"] = "503"
    """When every instance of a rule is down: 503 answers 503 (default), keep sends requests anyway."""
    nginx: NginxOptions = NginxOptions()
    """nginx settings of the site: body size, timeouts, WebSocket, keepalive."""
    hsts: Hsts = Hsts()
    """Strict-Transport-Security on the HTTPS server (on by default; false turns it off)."""
    security_headers: bool = False
    """Add X-Content-Type-Options, X-Frame-Options and Referrer-Policy (default false)."""

    @field_validator("hsts", mode="before")
    @classmethod
    def _hsts_switch(cls, value: object) -> object:
        return {"enabled": value} if isinstance(value, bool) else value

    @model_validator(mode="after")
    def _unique_paths(self) -> IngressSpec:
        paths = [r.path for r in self.rules]
        for i, path in enumerate(paths):
            if path in paths[:i]:
                raise FieldError(("rules", i, "path"), f"path {path!r} appears in more than one rule")
        return self


Duration = Annotated[str, Field(pattern=pattern(r"^[0-9]{1,5}[dhm]$", "a duration such as 30d, 12h or 90m"))]


def duration_seconds(text: str) -> int:
    """`30d`, `12h`, `90m` in seconds (the pattern above has checked the form)."""
    return int(text[:-1]) * {"d": 86400, "h": 3600, "m": 60}[text[-1]]


class CertificateSpec(Strict):
    """A certificate funops obtains from an ACME CA (funops.yaml `acme.issuers`), serves on every edge
    node of the ingresses naming it (`tls.certificateRef`) and renews `renewBefore` its expiry."""

    domains: Annotated[list[DomainName], Field(min_length=1, max_length=100)]
    """The names the certificate covers (a wildcard such as *.example.com needs dns-01)."""
    issuer: SafeName
    """The ACME CA that issues it: a name in funops.yaml acme.issuers."""
    challenge: Literal["http-01", "dns-01"] = "http-01"
    """How the CA checks control of the names: http-01 (default) or dns-01."""
    dns: SafeName | None = None
    """The DNS server dns-01 writes its records through (required with it): a name in funops.yaml acme.dns."""
    renew_before: Duration = "30d"
    """Renew this long before the certificate expires: 30d, 12h or 90m (default 30d)."""
    key_type: Literal["ecdsa-p256", "rsa2048", "rsa3072"] = "ecdsa-p256"
    """The certificate's key type (default ecdsa-p256)."""

    @model_validator(mode="after")
    def _challenge(self) -> CertificateSpec:
        for i, domain in enumerate(self.domains):
            if domain in self.domains[:i]:
                raise FieldError(("domains", i), f"domain {domain!r} appears twice")
            if domain.startswith("*.") and self.challenge != "dns-01":
                raise FieldError(
                    ("domains", i),
                    f"{domain}: a wildcard name needs challenge: dns-01 (HTTP-01 cannot prove it)",
                )
        if self.challenge == "dns-01" and self.dns is None:
            raise FieldError(("dns",), "challenge dns-01 needs dns: (a name in funops.yaml acme.dns)")
        if self.challenge == "http-01" and self.dns is not None:
            raise FieldError(("dns",), "only valid with challenge: dns-01")
        if duration_seconds(self.renew_before) <= 0:
            raise FieldError(("renewBefore",), "must be more than zero")
        return self

    def covers(self, domain: str) -> bool:
        """Whether a name of the certificate matches `domain` (a wildcard: one label)."""
        for name in self.domains:
            if name == domain:
                return True
            if name.startswith("*.") and "." in domain and domain.split(".", 1)[1] == name[2:]:
                return not domain.startswith("*.")
        return False


class CanaryVersion(Strict):
    version: Version
    """A version of the app."""
    percent: Annotated[int, Field(ge=0, le=100)]
    """The percent of the app's nodes, and of its requests through ingresses, that run this version."""


class ReleaseSpec(Strict):
    app: SafeName
    """The Application this release sets the version of."""
    version: Version | None = None
    """The version every instance runs (exactly one of version or versions)."""
    versions: list[CanaryVersion] = []
    """A canary: versions with their percents, which sum to 100."""
    image: ImageRef | None = None
    """The image repository, when it is not the app's (container apps)."""
    artifact: Artifact | None = None
    """What the command runs at this version (systemd apps): wins over the app's artifact."""
    strategy: UpdateStrategy | None = None
    """How this release rolls out: wins over the app's and funops.yaml's strategy."""

    @model_validator(mode="after")
    def _versions(self) -> ReleaseSpec:
        if (self.version is None) == (not self.versions):
            raise ValueError("a release needs exactly one of version or versions")
        if self.versions:
            total = sum(v.percent for v in self.versions)
            if total != 100:
                raise FieldError(("versions",), f"canary percents sum to {total}, not 100")
            names = [v.version for v in self.versions]
            for i, name in enumerate(names):
                if name in names[:i]:
                    raise FieldError(("versions", i, "version"), f"version {name!r} appears twice")
        return self

    def split(self) -> list[CanaryVersion]:
        return self.versions or [CanaryVersion(version=self.version or "", percent=100)]


class Document(Strict):
    api_version: Literal["funops/v1"]
    """The format of the document: funops/v1."""
    metadata: Metadata
    """The document's name, labels and annotations."""


class Service(Document):
    kind: Literal["Service"]
    """Service: a name for an app's port, that ingresses route to."""
    spec: ServiceSpec
    """The app and port the service routes to."""


class Ingress(Document):
    kind: Literal["Ingress"]
    """Ingress: an nginx site routing domains and paths to Services."""
    spec: IngressSpec
    """The site: nodes, domains, rules, TLS."""


class Release(Document):
    kind: Literal["Release"]
    """Release: the version, or the canary versions, an app runs."""
    spec: ReleaseSpec
    """The app, its version(s) and how they roll out."""


class Certificate(Document):
    kind: Literal["Certificate"]
    """Certificate: a certificate funops obtains from an ACME CA and renews."""
    spec: CertificateSpec
    """The names, the issuer and how to prove control of the names."""
