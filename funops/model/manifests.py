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
    """Absolute path of the directory on the node (below one of funops.yaml's allowedRoots)."""
    owner: UnixName | None = None
    """The directory's owner (default: the app's user, root when it has none)."""
    group: UnixName | None = None
    """The directory's group (default: the owner's)."""
    mode: FileMode = "0755"
    """Permissions as an octal string (default "0755")."""

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
    """Absolute path of the file on the node."""
    content: str | None = None
    """The file's content, a jinja2 template (exactly one of content or source)."""
    source: RepoPath | None = None
    """A file of the repo, a jinja2 template, rendered as the content (exactly one of content or source)."""
    mode: FileMode = "0644"
    """Permissions as an octal string (default "0644")."""
    owner: UnixName = "root"
    """The file's owner (default root)."""
    group: UnixName = "root"
    """The file's group (default root)."""
    diff: bool = True
    """Show the file's diff in plans and drift; false: only that it changes (default true)."""

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
    """Memory limit, such as 512M or 2G (systemd MemoryMax=, docker --memory)."""
    cpus: Annotated[float, Field(gt=0, le=1024)] | None = None
    """CPU limit in cores, such as 0.5 (systemd CPUQuota=, docker --cpus)."""


class _AppHead(Strict):
    """The fields every Application starts with (its type, where and at which version it runs)."""

    type: TypeName
    """How funops runs the app: systemd (a service), container, proxy (runs nothing) or job (on a timer)."""
    selector: Selector | None = None
    """The nodes the app may run on (required for every type that runs something)."""
    replicas: Annotated[int, Field(ge=1)] | None = None
    """How many of the selected nodes run the app (default: all of them); placements are sticky."""
    placement: Literal["disk-aware", "spread"] = "disk-aware"
    """How replicas pick nodes: disk-aware (most free disk first; default) or spread (fewest containers)."""
    version: Version | None = None
    """The version to run when no Release names one."""


class _AppCommon(Strict):
    """The fields of every app type (a type may refuse some: its `refused`)."""

    env: dict[EnvName, str | SecretRef] = {}
    """Environment variables: a value (a template) or a secret reference (fromFile or fromEnv)."""
    config_files: list[ConfigFile] = []
    """Files of the app on the node, rendered with jinja2; a change restarts the app."""
    directories: list[Directory] = []
    """Directories made on the node before the app's files."""
    port: Port | None = None
    """The port the app listens on: Services route to it and health checks use it."""
    health_check: HealthCheck | None = None
    """How funops checks that an instance is healthy after a change."""
    resources: Resources = Resources()
    """Memory and CPU limits."""
    restart: Literal["always", "on-failure", "no"] = "always"
    """When an instance that exits is restarted: always (default), on-failure or no."""
    # Zero downtime (issue 15): how an instance stops (systemd KillSignal/TimeoutStopSec, docker
    # --stop-signal/stop -t) and how long the ingress waits for its in-flight requests to end
    # after marking it down, before funops touches it.
    stop_signal: Annotated[
        str, Field(pattern=pattern(r"^SIG[A-Z0-9+]+$", "a signal name such as SIGTERM or SIGQUIT"))
    ] = "SIGTERM"
    """The signal asking an instance to stop (KillSignal=, docker --stop-signal; default SIGTERM)."""
    stop_timeout: Annotated[int, Field(ge=1, le=3600)] = 20
    """Seconds an instance has to stop after stopSignal before it is killed (default 20)."""
    drain_timeout: Annotated[float, Field(ge=0, le=3600)] = 5
    """Seconds to wait for an instance's connections to end before it is stopped (default 5)."""
    strategy: UpdateStrategy | None = None
    """How a change rolls out over the app's nodes (default: funops.yaml's strategy; a Release's wins)."""
    vars: dict[str, str | int | float | bool] = {}
    """Values for the app's templates (app.vars)."""
    # security (systemd and container): a non-root identity and a sandbox unless relaxed
    user: UserRef | None = None
    """The user the app runs as: a name or uid, for containers also user:group (default: a DynamicUser,
    root with hardening none; a container runs as its image's user)."""
    hardening: Literal["strict", "relaxed", "none"] = "strict"
    """The sandbox: strict (default, full), relaxed (for JIT runtimes and tools probing the system), none."""
    cap_add: list[Capability] = []
    """Linux capabilities to grant, without CAP_ (such as NET_BIND_SERVICE)."""

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


class _Document(Strict):
    api_version: Literal["funops/v1"]
    """The format of the document: funops/v1."""
    metadata: Metadata
    """The document's name, labels and annotations."""


class Application(_Document):
    kind: Literal["Application"]
    """Application: an app funops runs on nodes (or routes to)."""
    spec: ApplicationSpec
    """What the app runs and how."""


class Service(_Document):
    kind: Literal["Service"]
    """Service: a name for an app's port, that ingresses route to."""
    spec: ServiceSpec
    """The app and port the service routes to."""


class Ingress(_Document):
    kind: Literal["Ingress"]
    """Ingress: an nginx site routing domains and paths to Services."""
    spec: IngressSpec
    """The site: nodes, domains, rules, TLS."""


class Release(_Document):
    kind: Literal["Release"]
    """Release: the version, or the canary versions, an app runs."""
    spec: ReleaseSpec
    """The app, its version(s) and how they roll out."""


class Certificate(_Document):
    kind: Literal["Certificate"]
    """Certificate: a certificate funops obtains from an ACME CA and renews."""
    spec: CertificateSpec
    """The names, the issuer and how to prove control of the names."""


KINDS: dict[str, type[_Document]] = {
    "Application": Application,
    "Service": Service,
    "Ingress": Ingress,
    "Release": Release,
    "Certificate": Certificate,
}
Manifest = Application | Service | Ingress | Release | Certificate
