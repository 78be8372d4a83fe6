"""The unit of desired state: a resource on a node, with a stable id and the handlers a change owes."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .ids import Handler, Owner, ResourceId

if TYPE_CHECKING:  # the node side (the agent) imports this module with the standard library only
    from .model.inventory import Node
    from .model.strategy import HealthCheck

# Apply order within a node (each may need what comes before it): artifacts → directories → files →
# unit files → units → containers → nginx sites. An artifact comes first: a failed download leaves
# everything else as it was.
ORDER_ARTIFACT, ORDER_DIRECTORY, ORDER_CERT = 5, 8, 9
ORDER_FILE, ORDER_UNIT_FILE, ORDER_UNIT, ORDER_CONTAINER, ORDER_NGINX = 10, 20, 30, 40, 50

# Where funops writes on a node (the compiler writes there; validate, drift and `agent install` check
# paths against them).
UNIT_DIR = "/etc/systemd/system"  # where funops writes the unit files of apps
APPS_DIR = "/etc/funops/apps"
TLS_DIR = "/etc/funops/tls"
NGINX_DIR = "/etc/nginx/conf.d"
# HTTP-01: the webroot every edge node serves /.well-known/acme-challenge/ from, on its http port.
CHALLENGE_ROOT = "/var/lib/funops-acme"

# Node-wide handlers a change owes; run once per node after the tasks (see kinds.handler_order).
DAEMON_RELOAD = Handler("daemon-reload")
NGINX_RELOAD = Handler("reload:nginx")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Resource:
    """One thing on a node funops owns (a file, a unit, a container), as it should be."""

    id: ResourceId  # "file:/etc/nginx/conf.d/funops-site.conf", "unit:web.service", "container:api"
    kind: str  # the id's prefix: the module in funops/kinds/ that gathers, diffs and applies it
    owner: Owner  # "app/web" or "ingress/site": who asked for it
    desired: Mapping[str, Any]  # the attributes compared with the live ones
    order: int
    handlers: tuple[Handler, ...] = ()
    secret: bool = False  # never print content or values, only fingerprints
    content: bytes | None = field(default=None, repr=False)  # files
    run_spec: Mapping[str, Any] | None = None  # containers: what `docker run` gets
    routes: tuple[str, ...] = ()  # ingress files: the apps whose endpoints and weights they carry
    template: TemplateOrigin | None = None  # what it was rendered from (bundled or the repo's)
    # Env files: the keys whose values are secrets (their values never print); None: not an env file.
    secret_keys: tuple[str, ...] | None = None
    diff: bool = True  # plans show what changes inside the file (`diff: false` for noisy generated files)

    def __post_init__(self) -> None:  # typed names, also when built from plain strings (records, tests)
        object.__setattr__(self, "id", ResourceId(self.id))
        object.__setattr__(self, "owner", Owner(self.owner))
        object.__setattr__(self, "handlers", tuple(Handler(h) for h in self.handlers))

    def in_release_of(self, app: str) -> bool:
        """Part of `app`'s release (recorded with it, restored by its rollback): what the app owns,
        and the ingress files that route to it (its endpoints and canary weights live there)."""
        return self.owner.app == app or app in self.routes

    @property
    def name(self) -> str:
        return self.id.name


@dataclass(frozen=True)
class AppPlacement:
    """An app as it runs on one node: what apply health-checks and records."""

    app: str
    type: str
    version: str
    release: str | None
    port: int | None
    bind: str
    health: HealthCheck | None
    unit: str | None = None
    container: str | None = None
    create_user: str | None = None  # a system user apply makes before writing the app's files


@dataclass
class NodeDesired:
    """Everything one node should have: its resources and the apps placed on it."""

    node: Node
    resources: list[Resource] = field(default_factory=list)
    apps: dict[str, AppPlacement] = field(default_factory=dict)

    def sort(self) -> None:
        self.resources.sort(key=lambda r: (r.order, r.id))

    def resource(self, rid: str) -> Resource | None:
        return next((r for r in self.resources if r.id == rid), None)


def app_unit(app: str) -> str:
    return f"{app}.service"


def timer_unit(app: str) -> str:
    return f"{app}.timer"


@dataclass(frozen=True)
class TemplateOrigin:
    """Where a rendered file's template came from: the repo's templates/ or funops's bundled ones."""

    name: str  # the template name, e.g. "nginx/site.conf.j2"
    origin: Literal["bundled", "repo"]
    path: str  # "templates/nginx/site.conf.j2" (repo-relative) or "funops/templates/nginx/site.conf.j2"
    uses: tuple[str, ...] = ()  # templates it extends, includes or imports, e.g. "bundled/nginx/site.conf.j2"

    def describe(self) -> str:
        text = f"{self.path} ({self.origin}"
        return text + (f"; uses {', '.join(self.uses)})" if self.uses else ")")
