"""The manifest kinds: Application, Service, Ingress, Release."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

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


class ConfigFile(Strict):
    """A file the app needs: inline content, or a file of the repo; rendered with jinja2."""

    path: AbsolutePath
    content: str | None = None
    source: RepoPath | None = None
    mode: FileMode = "0644"
    owner: UnixName = "root"
    group: UnixName = "root"

    @model_validator(mode="after")
    def _one_source(self) -> ConfigFile:
        if (self.content is None) == (self.source is None):
            raise ValueError("a config file needs exactly one of content or source")
        return self


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
    type: Literal["systemd", "container", "proxy"]
    selector: Selector | None = None
    replicas: Annotated[int, Field(ge=1)] | None = None
    placement: Literal["disk-aware", "spread"] = "disk-aware"
    version: Version | None = None  # the default when no Release names one
    # systemd
    command: str | None = None
    user: UnixName = "root"
    working_directory: AbsolutePath | None = None
    # container
    image: ImageRef | None = None
    volumes: list[
        Annotated[
            str, Field(pattern=pattern(r"^/[^:\s]+:/[^:\s]+(:ro|:rw)?$", "/host/path:/container/path[:ro]"))
        ]
    ] = []
    cleanup_images: bool = False
    # proxy
    backends: list[Backend] = []
    # common
    env: dict[EnvName, str | SecretRef] = {}
    config_files: list[ConfigFile] = []
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
            "systemd": ["image", "volumes", "backends"],
            "container": ["command", "backends"],
            "proxy": ["command", "image", "volumes", "selector", "replicas", "config_files", "env"],
        }[self.type]
        present = [f for f in wrong if f in self.model_fields_set]
        if present:
            raise FieldError((to_camel(present[0]),), f"not valid for a {self.type} app")
        if self.type == "systemd" and not self.command:
            raise FieldError(("command",), "a systemd app needs a command")
        if self.type == "container" and not self.image:
            raise FieldError(("image",), "a container app needs an image")
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


class Tls(Strict):
    certificate: RepoPath
    key: SecretRef


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

    @model_validator(mode="after")
    def _unique_paths(self) -> IngressSpec:
        paths = [r.path for r in self.rules]
        for i, path in enumerate(paths):
            if path in paths[:i]:
                raise FieldError(("rules", i, "path"), f"path {path!r} appears in more than one rule")
        return self


class CanaryVersion(Strict):
    version: Version
    percent: Annotated[int, Field(ge=0, le=100)]


class ReleaseSpec(Strict):
    app: SafeName
    version: Version | None = None
    versions: list[CanaryVersion] = []
    image: ImageRef | None = None  # the image repository, when it is not the app's
    artifact: str | None = None  # for systemd apps: what the command runs (exposed to templates)
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


KINDS: dict[str, type[_Document]] = {
    "Application": Application,
    "Service": Service,
    "Ingress": Ingress,
    "Release": Release,
}
Manifest = Application | Service | Ingress | Release
