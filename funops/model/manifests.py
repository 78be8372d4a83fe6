"""The manifest kinds: Application, Service, Ingress, Release, Certificate."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from ..apptypes import REGISTRY as APP_TYPES
from ..apptypes import TypeName
from ..apptypes.proxy import Backend
from ..apptypes.systemd import HARDENING_DIRECTIVES, HardeningDirective
from .common import (
    AbsolutePath,
    EnvName,
    FieldError,
    FileMode,
    Metadata,
    Port,
    RepoPath,
    SafeName,
    SecretRef,
    Selector,
    Strict,
    UnixName,
    pattern,
)
from .strategy import HealthCheck, UpdateStrategy
from .versions import Artifact, ImageRef, Version

# Re-exported: where the models of a manifest are looked up.
__all__ = ["HARDENING_DIRECTIVES", "Artifact", "Backend", "HardeningDirective", "ImageRef", "Version"]


class Directory(Strict):
    """A directory the app needs on the node, made before its files (they may go inside)."""

    path: AbsolutePath
    owner: UnixName | None = None  # default: the app's user (root when it has none)
    group: UnixName | None = None  # default: the owner
    mode: FileMode = "0755"

    def attributes(self, user: str | None) -> dict[str, str]:
        """Owner, group and mode on the node, for an app running as `user` (None: DynamicUser or
        root; its directories are root's; a container's `user:group` gives both). One place, so
        compile and the per-node conflict check agree on what two apps sharing a directory want."""
        name, _, group = (user or "root").partition(":")
        owner = self.owner or name
        group = self.group or (group if group and not self.owner else owner)
        return {"owner": owner, "group": group, "mode": self.mode.rjust(4, "0")}


class ConfigFile(Strict):
    """A file the app needs: inline content, or a file of the repo; rendered with jinja2."""

    path: AbsolutePath
    content: str | None = None
    source: RepoPath | None = None
    mode: FileMode = "0644"
    owner: UnixName = "root"
    group: UnixName = "root"
    diff: bool = True  # false: plans say the file changes, not how (noisy generated files)

    @model_validator(mode="after")
    def _one_source(self) -> ConfigFile:
        if (self.content is None) == (self.source is None):
            raise ValueError("a config file needs exactly one of content or source")
        return self


Capability = Annotated[
    str, Field(pattern=pattern(r"^[A-Z][A-Z_]{1,31}$", "a capability without CAP_, such as NET_BIND_SERVICE"))
]
# A systemd User= or docker --user: a name or uid, for containers optionally :group or :gid.
UserRef = Annotated[
    str,
    Field(
        pattern=pattern(
            r"^([a-z_][a-z0-9_-]{0,31}|[0-9]{1,10})(:([a-z_][a-z0-9_-]{0,31}|[0-9]{1,10}))?$",
            "a user name or uid (containers: also user:group)",
        )
    ),
]


class Resources(Strict):
    memory: Annotated[str, Field(pattern=pattern(r"^[0-9]+[KMG]?$", "a size such as 512M or 2G"))] | None = (
        None
    )
    cpus: Annotated[float, Field(gt=0, le=1024)] | None = None


class _AppHead(Strict):
    """The fields every Application starts with (its type, where and at which version it runs)."""

    type: TypeName  # one of funops/apptypes' registry
    selector: Selector | None = None
    replicas: Annotated[int, Field(ge=1)] | None = None
    placement: Literal["disk-aware", "spread"] = "disk-aware"
    version: Version | None = None  # the default when no Release names one


class _AppCommon(Strict):
    """The fields of every app type (a type may refuse some: its `refused`)."""

    env: dict[EnvName, str | SecretRef] = {}
    config_files: list[ConfigFile] = []
    directories: list[Directory] = []
    port: Port | None = None
    health_check: HealthCheck | None = None
    resources: Resources = Resources()
    restart: Literal["always", "on-failure", "no"] = "always"
    # Zero downtime (issue 15): how an instance stops (systemd KillSignal/TimeoutStopSec, docker
    # --stop-signal/stop -t) and how long the ingress waits for its in-flight requests to end
    # after marking it down, before funops touches it.
    stop_signal: Annotated[
        str, Field(pattern=pattern(r"^SIG[A-Z0-9+]+$", "a signal name such as SIGTERM or SIGQUIT"))
    ] = "SIGTERM"
    stop_timeout: Annotated[int, Field(ge=1, le=3600)] = 20
    drain_timeout: Annotated[float, Field(ge=0, le=3600)] = 5
    strategy: UpdateStrategy | None = None
    vars: dict[str, str | int | float | bool] = {}
    # security (systemd and container): a non-root identity and a sandbox unless relaxed
    user: UserRef | None = None  # systemd: DynamicUser when unset; container: the image's user
    hardening: Literal["strict", "relaxed", "none"] = "strict"
    cap_add: list[Capability] = []

    @field_validator("env", mode="before")
    @classmethod
    def _env_values_are_strings(cls, value: object) -> object:
        if isinstance(value, dict):
            for key, val in value.items():
                if isinstance(val, bool | int | float):
                    shown = str(val).lower() if isinstance(val, bool) else val
                    raise FieldError((key,), f'must be a string: quote it ({key}: "{shown}")')
        return value


# The app types' own fields sit between the head and the common fields, in registry order (pydantic
# takes fields from the last base first).
_TYPE_FIELDS = tuple(dict.fromkeys(t.fields for t in APP_TYPES.values()))


# An Application's spec: one flat object (one schema, one set of YAML keys) whose meaning is its
# type's (funops/apptypes). No docstring: it would become the schema's description.
class ApplicationSpec(_AppCommon, *reversed(_TYPE_FIELDS), _AppHead):  # type: ignore[misc]
    @model_validator(mode="after")
    def _fields_of_type(self) -> ApplicationSpec:
        app_type = APP_TYPES[self.type]
        present = [f for f in app_type.refused if f in self.model_fields_set]
        if present:
            raise FieldError((to_camel(present[0]),), f"not valid for a {self.type} app")
        app_type.check(self)
        if self.create_user and (not self.user or self.user == "root" or self.user.isdigit()):
            raise FieldError(("createUser",), "createUser needs a user name (not root, not a uid)")
        if app_type.runs and self.selector is None:
            raise FieldError(("selector",), f"a {self.type} app needs a selector")
        check = self.health_check
        if check and check.type != "process" and not (self.port or check.port):
            raise FieldError(
                ("healthCheck",), f"an {check.type} health check needs a port (spec.port or healthCheck.port)"
            )
        return self


class ServiceSpec(Strict):
    app: SafeName
    port: Port | None = None  # default: the app's port


class PathRule(Strict):
    path: Annotated[str, Field(pattern=pattern(r"^/[A-Za-z0-9_.~\-/]*$", "a URL path starting with /"))] = "/"
    service: SafeName
    strip_prefix: bool = False


IpAddress = Annotated[
    str, Field(pattern=pattern(r"^[0-9a-fA-F.:\[\]]+$", "an IP address such as 127.0.0.53"))
]


class Tls(Strict):
    """A certificate file of the repo and its key, or (`certificateRef`) a Certificate funops obtains
    from an ACME CA and renews by itself."""

    certificate: RepoPath | None = None
    key: SecretRef | None = None
    certificate_ref: SafeName | None = None  # a Certificate's name: issued and renewed by funops
    chain: RepoPath | None = None  # the issuer chain: turns OCSP stapling on
    resolvers: Annotated[list[IpAddress], Field(min_length=1)] = ["127.0.0.53"]  # for OCSP, local only

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
    max_age: Annotated[int, Field(ge=0)] = 63072000  # two years (Mozilla)
    include_subdomains: bool = False
    preload: bool = False

    @model_validator(mode="after")
    def _preload(self) -> Hsts:
        if self.preload and not (self.include_subdomains and self.max_age >= 31536000):
            raise FieldError(("preload",), "preload needs includeSubdomains and a maxAge of a year or more")
        return self


class NginxOptions(Strict):
    client_max_body_size: Annotated[
        str, Field(pattern=pattern(r"^[0-9]+[kKmMgG]?$", "an nginx size such as 10m"))
    ] = "1m"
    proxy_connect_timeout: Annotated[int, Field(ge=1, le=3600)] = 5
    proxy_read_timeout: Annotated[int, Field(ge=1, le=86400)] = 60
    websocket: bool = False
    keepalive: Annotated[int, Field(ge=0, le=1024)] = 16


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
    domains: Annotated[list[DomainName], Field(min_length=1)]
    rules: Annotated[list[PathRule], Field(min_length=1)]
    tls: Tls | None = None
    http_port: Port = 80
    https_port: Port = 443
    redirect_http: bool = True
    when_all_unhealthy: Literal["keep", "503"] = "503"
    nginx: NginxOptions = NginxOptions()
    hsts: Hsts = Hsts()
    security_headers: bool = False  # X-Content-Type-Options, X-Frame-Options, Referrer-Policy

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
    issuer: SafeName  # a name in funops.yaml acme.issuers
    challenge: Literal["http-01", "dns-01"] = "http-01"
    dns: SafeName | None = None  # a name in funops.yaml acme.dns: required with dns-01
    renew_before: Duration = "30d"
    key_type: Literal["ecdsa-p256", "rsa2048", "rsa3072"] = "ecdsa-p256"

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
    percent: Annotated[int, Field(ge=0, le=100)]


class ReleaseSpec(Strict):
    app: SafeName
    version: Version | None = None
    versions: list[CanaryVersion] = []
    image: ImageRef | None = None  # the image repository, when it is not the app's
    artifact: Artifact | None = None  # for systemd apps: what the command runs (see Artifact)
    strategy: UpdateStrategy | None = None

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


class _Document(Strict):
    api_version: Literal["funops/v1"]
    metadata: Metadata


class Application(_Document):
    kind: Literal["Application"]
    spec: ApplicationSpec


class Service(_Document):
    kind: Literal["Service"]
    spec: ServiceSpec


class Ingress(_Document):
    kind: Literal["Ingress"]
    spec: IngressSpec


class Release(_Document):
    kind: Literal["Release"]
    spec: ReleaseSpec


class Certificate(_Document):
    kind: Literal["Certificate"]
    spec: CertificateSpec


KINDS: dict[str, type[_Document]] = {
    "Application": Application,
    "Service": Service,
    "Ingress": Ingress,
    "Release": Release,
    "Certificate": Certificate,
}
Manifest = Application | Service | Ingress | Release | Certificate
