"""The manifest kinds: Application, Service, Ingress, Release, Certificate."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from .calendar import calendar_problem
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

Version = Annotated[
    str,
    Field(
        pattern=pattern(
            r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$", "a version such as v1.2.3 (letters, digits, '._-')"
        )
    ),
]
ImageRef = Annotated[
    str,
    Field(
        pattern=pattern(
            r"^[a-z0-9][a-z0-9._\-/:]*[a-z0-9]$", "an image reference such as registry:5000/team/app"
        )
    ),
]


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


class Artifact(Strict):
    """What a systemd app runs (issue 15): fetched on the node from `url` and checked against
    `sha256`, or a file or directory of the repo (`path`) uploaded by funops. A `.tar`, `.tar.gz` or
    `.tgz` download is unpacked; any other file is placed as is, under its own name."""

    url: Annotated[str, Field(pattern=pattern(r"^https?://[^\s'\"\\]+$", "an http(s) URL"))] | None = None
    sha256: Annotated[str, Field(pattern=pattern(r"^[0-9a-f]{64}$", "64 lowercase hex digits"))] | None = None
    path: RepoPath | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Artifact:
        if (self.url is None) == (self.path is None):
            raise ValueError("an artifact needs exactly one of url or path")
        if self.url is not None and self.sha256 is None:
            raise FieldError(("sha256",), "an artifact url needs its sha256 (checked on the node)")
        if self.path is not None and self.sha256 is not None:
            raise FieldError(("sha256",), "a path artifact's sha256 is computed from the repo: drop it")
        return self


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


# The directives `hardeningOverrides` may set or drop: the sandbox family of a funops unit.
HardeningDirective = Literal[
    "NoNewPrivileges", "PrivateTmp", "PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectSystem",
    "ProtectHome", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
    "ProtectControlGroups", "ProtectClock", "ProtectHostname", "ProtectProc", "ProcSubset",
    "PrivateMounts", "PrivateUsers", "PrivateNetwork", "PrivateIPC", "RestrictNamespaces",
    "RestrictAddressFamilies", "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality",
    "MemoryDenyWriteExecute", "RemoveIPC", "SystemCallArchitectures", "SystemCallFilter",
    "SystemCallErrorNumber", "UMask", "CapabilityBoundingSet", "AmbientCapabilities", "StateDirectory",
    "ConfigurationDirectory", "CacheDirectory", "LogsDirectory", "RuntimeDirectory", "ReadWritePaths",
    "ReadOnlyPaths", "InaccessiblePaths", "IPAddressAllow", "IPAddressDeny", "KeyringMode",
]  # fmt: skip
HARDENING_DIRECTIVES: tuple[str, ...] = get_args(HardeningDirective)
DirectiveValue = Annotated[
    str, Field(pattern=pattern(r"^[^\x00-\x1f\x7f]*$", "one line of text (no control characters)"))
]
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


class Backend(Strict):
    address: Annotated[str, Field(pattern=pattern(r"^[A-Za-z0-9.\-:\[\]]+$", "a host name or IP address"))]
    port: Port
    weight: Annotated[int, Field(ge=1, le=1000)] = 1


class ApplicationSpec(Strict):
    type: Literal["systemd", "container", "proxy", "job"]
    selector: Selector | None = None
    replicas: Annotated[int, Field(ge=1)] | None = None
    placement: Literal["disk-aware", "spread"] = "disk-aware"
    version: Version | None = None  # the default when no Release names one
    # systemd
    command: str | None = None
    working_directory: AbsolutePath | None = None
    artifact: Artifact | None = None  # a Release's artifact wins
    create_user: bool = False  # create `user` on the node (a system user without login)
    hardening_overrides: dict[HardeningDirective, DirectiveValue | bool | None] = {}  # null drops one
    # job: a oneshot service run by a timer
    schedule: str | None = None  # systemd calendar syntax (OnCalendar=)
    persistent: bool = True  # a run missed while the node was off happens at boot
    # Spreads the runs of many nodes (RandomizedDelaySec=): each waits up to this many seconds.
    randomized_delay: Annotated[int, Field(ge=0, le=86400)] = 0
    # container
    image: ImageRef | None = None
    volumes: list[
        Annotated[
            str, Field(pattern=pattern(r"^/[^:\s]+:/[^:\s]+(:ro|:rw)?$", "/host/path:/container/path[:ro]"))
        ]
    ] = []
    cleanup_images: bool = False
    pids_limit: Annotated[int, Field(ge=1, le=4194304)] = 1024
    read_only_rootfs: bool = False
    # proxy
    backends: list[Backend] = []
    # common
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

    @field_validator("hardening_overrides", mode="before")
    @classmethod
    def _known_directives(cls, value: object) -> object:
        for key in value if isinstance(value, dict) else ():
            if key not in HARDENING_DIRECTIVES:
                raise FieldError(
                    (key,),
                    f"{key} is not a sandbox directive funops renders (`funops schema manifest` lists them)",
                )
        return value

    @field_validator("env", mode="before")
    @classmethod
    def _env_values_are_strings(cls, value: object) -> object:
        if isinstance(value, dict):
            for key, val in value.items():
                if isinstance(val, bool | int | float):
                    shown = str(val).lower() if isinstance(val, bool) else val
                    raise FieldError((key,), f'must be a string: quote it ({key}: "{shown}")')
        return value

    @model_validator(mode="after")
    def _fields_of_type(self) -> ApplicationSpec:
        wrong = {
            "systemd": ["image", "volumes", "backends", "pids_limit", "read_only_rootfs", "schedule",
                        "persistent", "randomized_delay"],
            "container": ["command", "backends", "create_user", "hardening_overrides", "artifact", "schedule",
                          "persistent", "randomized_delay"],
            "proxy": ["command", "image", "volumes", "selector", "replicas", "config_files", "env", "user",
                      "hardening", "cap_add", "create_user", "hardening_overrides", "artifact", "directories",
                      "schedule", "persistent", "randomized_delay"],
            "job": ["image", "volumes", "backends", "pids_limit", "read_only_rootfs", "port", "health_check",
                    "strategy"],
        }[self.type]  # fmt: skip
        present = [f for f in wrong if f in self.model_fields_set]
        if present:
            raise FieldError((to_camel(present[0]),), f"not valid for a {self.type} app")
        if self.type in ("systemd", "job") and not self.command:
            raise FieldError(("command",), f"a {self.type} app needs a command")
        if self.type == "job":
            problem = calendar_problem(self.schedule or "")
            if self.schedule is None:
                raise FieldError(
                    ("schedule",), "a job needs a schedule (systemd calendar syntax, e.g. daily)"
                )
            if problem:
                raise FieldError(
                    ("schedule",), f"{self.schedule!r} is not a systemd calendar expression: {problem}"
                )
        if self.type == "container" and not self.image:
            raise FieldError(("image",), "a container app needs an image")
        if self.type in ("systemd", "job") and self.user and ":" in self.user:
            raise FieldError(("user",), f"a {self.type} app's user is a name or a uid (no :group)")
        if self.create_user and (not self.user or self.user == "root" or self.user.isdigit()):
            raise FieldError(("createUser",), "createUser needs a user name (not root, not a uid)")
        if self.type == "proxy" and not self.backends:
            raise FieldError(("backends",), "a proxy app needs backends")
        if self.type != "proxy" and self.selector is None:
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
