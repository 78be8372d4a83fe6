"""The app type contract: what an Application's `type:` means, in one module per type.

An `AppType` holds the spec fields only its apps may set (`fields`, mixed into the manifest's
ApplicationSpec by funops/apptypes/application.py), the fields it refuses and its own validation rules,
what it means for the repo checks (funops/load/checks.py), the resources one app of the type becomes
on a node (`resources`, given an `AppBuild` by the compiler), and where its logs are read from.
Nothing outside funops/apptypes/ decides by the type's name (tests/unit/test_apptypes_registry.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..model.common import Strict

if TYPE_CHECKING:
    from ..ids import Handler, Owner
    from ..model.common import Metadata
    from ..model.inventory import Node
    from ..model.manifests import Release
    from ..resources import Resource, TemplateOrigin


class AppSpec(Protocol):
    """An Application's spec as a type sees it: every field of the spec (the common ones and each
    type's) is an attribute. ApplicationSpec (application.py) is made from this package's registry, so
    the modules the registry imports name it by this protocol, never by importing it."""

    type: str

    def __getattr__(self, name: str) -> Any: ...


class AppManifest(Protocol):
    """An Application as a type sees it (see AppSpec)."""

    metadata: Metadata
    spec: AppSpec


class NoFields(Strict):
    """A type that declares no fields of its own."""


class AppBuild(Protocol):
    """One app on one node, as the compiler hands it to its type: the template context, where errors
    point, and the compiler's rendering with located errors (each returns None once it has reported a
    problem, so a type just leaves the resource out)."""

    app: AppManifest
    node: Node
    version: str
    release: Release | None
    owner: Owner
    restart: Handler  # what a change to the app's files owes
    env_file: str | None  # the app's env file on the node, when it has an environment
    ctx: dict[str, Any]

    def render(self, template: str, path: tuple, **extra: Any) -> str | None: ...

    def render_json(self, template: str, **extra: Any) -> dict | None: ...

    def unit_text(self, template: str, path: tuple, **extra: Any) -> str | None:
        """A bundled systemd template, rendered and checked line by line (a unit's structure)."""
        ...

    def string(self, text: str, path: tuple) -> str | None:
        """A manifest string rendered as a template."""
        ...

    def exec_line(self, command: str) -> bool:
        """Whether a rendered command may be an ExecStart= line (problems are reported)."""
        ...

    def origin(self, template: str) -> TemplateOrigin | None: ...

    def file(
        self,
        path: str,
        data: bytes,
        handlers: tuple[str, ...],
        order: int,
        template: TemplateOrigin | None,
    ) -> Resource:
        """A root-owned 0644 file of the app (a unit file)."""
        ...


class AppType:
    """One value of an Application's `type:`. Subclasses set the class attributes and override what
    differs; the defaults are those of an app funops runs as a systemd service."""

    name: ClassVar[str]
    article: ClassVar[str] = "a"
    # The spec fields this type declares (other types refuse or ignore them as `refused` says).
    fields: ClassVar[type[Strict]] = NoFields
    # ApplicationSpec fields (Python names) an app of this type may not set; the first one set is
    # reported, so the order is the order of the messages.
    refused: ClassVar[tuple[str, ...]] = ()
    runs: ClassVar[bool] = True  # False: funops runs nothing for it (no placement, version or logs)
    artifact: ClassVar[bool] = False  # may run an artifact (spec.artifact, a Release's artifact)
    release_image: ClassVar[bool] = False  # a Release may name its image repository
    version_field: ClassVar[tuple[str, ...]] = ("spec",)  # where "no version" points
    env_template: ClassVar[str] = "env/systemd.env.j2"  # renders the app's env file
    # A Service routing to it is refused with this reason (None: it serves its port).
    unroutable: ClassVar[str | None] = None

    def check(self, spec: AppSpec) -> None:
        """The type's own rules on a spec (after `refused`): raise FieldError at the first broken one."""

    def restart(self, name: str) -> Handler:
        """The handler that restarts app `name` when its files change."""
        raise NotImplementedError

    def resources(self, build: AppBuild) -> list[Resource]:
        """What runs the app on the node (unit files, a unit, a container, a timer), after its
        artifact, directories, config files and env file, which the compiler makes for every type."""
        return []

    def placement(self, name: str) -> tuple[str | None, str | None]:
        """The unit and the container apply health-checks and records for app `name`."""
        return None, None

    def logs(self, name: str) -> tuple[tuple[str, ...], str | None]:
        """The systemd units and the container `funops logs` reads for app `name`."""
        return (), None

    def node_files(self, name: str) -> dict[str, str]:
        """Paths funops renders for app `name` besides its env file and service unit (which every app
        may have), each with what it is: a config file may not replace them."""
        return {}

    def endpoints(self, spec: AppSpec) -> list[dict] | None:
        """Fixed upstream servers for ingresses (a type that runs nothing); None: the app's nodes."""
        return None
