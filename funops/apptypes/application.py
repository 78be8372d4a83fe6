"""The Application kind: its spec is assembled from the app types' fields (this package's registry),
so it sits above them; with it, the list of every manifest kind.

The app type modules never import this one (they name a spec by `AppSpec`, funops/apptypes/base.py):
the registry is complete before ApplicationSpec is made from it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from ..model.common import (
    AbsolutePath,
    EnvName,
    FieldError,
    FileMode,
    Port,
    RepoPath,
    SecretRef,
    Selector,
    Strict,
    UnixName,
    pattern,
)
from ..model.manifests import Certificate, Document, Ingress, Release, Service
from ..model.strategy import HealthCheck, UpdateStrategy
from ..model.versions import Version
from . import REGISTRY as APP_TYPES
from . import TypeName
from .proxy import Backend
from .systemd import HARDENING_DIRECTIVES, HardeningDirective

# Re-exported: where the models of a manifest are looked up.
__all__ = ["HARDENING_DIRECTIVES", "Backend", "HardeningDirective"]


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


class Application(Document):
    kind: Literal["Application"]
    """Application: an app funops runs on nodes (or routes to)."""
    spec: ApplicationSpec
    """What the app runs and how."""


KINDS: dict[str, type[Document]] = {
    "Application": Application,
    "Service": Service,
    "Ingress": Ingress,
    "Release": Release,
    "Certificate": Certificate,
}
Manifest = Application | Service | Ingress | Release | Certificate
