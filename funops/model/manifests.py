"""The manifest kinds: Application, Service, Ingress, Release."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .common import (
    AbsolutePath,
    FileMode,
    Metadata,
    Port,
    RepoPath,
    SafeName,
    SecretRef,
    Selector,
    Strict,
    UnixName,
)
from .strategy import HealthCheck, UpdateStrategy

EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Version = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")]
ImageRef = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._\-/:]*[a-z0-9]$")]


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
    memory: Annotated[str, Field(pattern=r"^[0-9]+[KMG]?$")] | None = None
    cpus: Annotated[float, Field(gt=0, le=1024)] | None = None


class Backend(Strict):
    address: Annotated[str, Field(pattern=r"^[A-Za-z0-9.\-:\[\]]+$")]
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
    volumes: list[Annotated[str, Field(pattern=r"^/[^:\s]+:/[^:\s]+(:ro|:rw)?$")]] = []
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
    strategy: UpdateStrategy | None = None
    vars: dict[str, str | int | float | bool] = {}

    @model_validator(mode="after")
    def _fields_of_type(self) -> ApplicationSpec:
        wrong = {
            "systemd": ["image", "volumes", "backends"],
            "container": ["command", "backends"],
            "proxy": ["command", "image", "volumes", "selector", "replicas", "config_files", "env"],
        }[self.type]
        present = [f for f in wrong if f in self.model_fields_set]
        if present:
            raise ValueError(f"{', '.join(present)} not valid for type {self.type}")
        if self.type == "systemd" and not self.command:
            raise ValueError("a systemd app needs a command")
        if self.type == "container" and not self.image:
            raise ValueError("a container app needs an image")
        if self.type == "proxy" and not self.backends:
            raise ValueError("a proxy app needs backends")
        if self.type != "proxy" and self.selector is None:
            raise ValueError(f"a {self.type} app needs a selector")
        if (
            self.health_check
            and self.health_check.type != "process"
            and not (self.port or self.health_check.port)
        ):
            raise ValueError(f"a {self.health_check.type} health check needs a port")
        return self


class ServiceSpec(Strict):
    app: SafeName
    port: Port | None = None  # default: the app's port


class PathRule(Strict):
    path: Annotated[str, Field(pattern=r"^/[A-Za-z0-9_.~\-/]*$")] = "/"
    service: SafeName
    strip_prefix: bool = False


class Tls(Strict):
    certificate: RepoPath
    key: SecretRef


class NginxOptions(Strict):
    client_max_body_size: Annotated[str, Field(pattern=r"^[0-9]+[kKmMgG]?$")] = "1m"
    proxy_connect_timeout: Annotated[int, Field(ge=1, le=3600)] = 5
    proxy_read_timeout: Annotated[int, Field(ge=1, le=86400)] = 60
    websocket: bool = False
    keepalive: Annotated[int, Field(ge=0, le=1024)] = 16


DomainName = Annotated[
    str, Field(pattern=r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
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
        dupes = sorted({p for p in paths if paths.count(p) > 1})
        if dupes:
            raise ValueError(f"path {dupes[0]!r} appears in more than one rule")
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
                raise ValueError(f"canary percents sum to {total}, not 100")
            names = [v.version for v in self.versions]
            if len(set(names)) != len(names):
                raise ValueError("a version appears twice in versions")
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
