"""`type: systemd`: the app's command as a systemd service (`<app>.service`), sandboxed, run under its
own user or a DynamicUser, optionally from an artifact."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, get_args

from pydantic import Field, field_validator

from .. import resources as r
from ..ids import Handler, ResourceId
from ..model.common import AbsolutePath, FieldError, Strict, pattern
from ..model.versions import Artifact
from ..resources import app_unit
from .base import AppBuild, AppType
from .hardening import unit_directives

if TYPE_CHECKING:
    from .base import AppSpec

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
SERVICE_TEMPLATE = "systemd/app.service.j2"


class SystemdFields(Strict):
    """What a service runs (jobs share these: a job is a service started by a timer)."""

    command: str | None = None
    """The command the service runs (ExecStart=; a template, e.g. {{ release.dir }}/bin/app)."""
    working_directory: AbsolutePath | None = None
    """The command's working directory (WorkingDirectory=)."""
    artifact: Artifact | None = None
    """What the command runs: a download or a repo file, placed per version (a Release's artifact wins)."""
    create_user: bool = False
    """Create `user` on the node as a system user without login (default false)."""
    hardening_overrides: dict[HardeningDirective, DirectiveValue | bool | None] = {}
    """Sandbox directives to set (a value, true or false) or drop (null) over the hardening level."""

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


class Systemd(AppType):
    name = "systemd"
    fields = SystemdFields
    refused = ("image", "volumes", "backends", "pids_limit", "read_only_rootfs", "schedule", "persistent",
               "randomized_delay")  # fmt: skip
    artifact = True

    def check(self, spec: AppSpec) -> None:
        if not spec.command:
            raise FieldError(("command",), f"a {self.name} app needs a command")
        if spec.user and ":" in spec.user:
            raise FieldError(("user",), f"a {self.name} app's user is a name or a uid (no :group)")

    def restart(self, name: str) -> Handler:
        return Handler.restart("unit", app_unit(name))

    def resources(self, build: AppBuild) -> list[r.Resource]:
        unit_file = self.unit_file(build, job=False)
        unit = r.Resource(
            id=ResourceId.of("unit", app_unit(build.app.metadata.name)),
            kind="unit",
            owner=build.owner,
            order=r.ORDER_UNIT,
            desired={"enabled": "enabled", "active": "active"},
        )
        return [*unit_file, unit]

    def unit_file(self, build: AppBuild, job: bool) -> list[r.Resource]:
        """The service unit running the app's command (none when the command or unit fails to render:
        the problem is reported)."""
        name = build.app.metadata.name
        command = build.string(build.app.spec.command or "", ("spec", "command"))
        if command and not build.exec_line(command):
            command = None
        text = command and build.unit_text(
            SERVICE_TEMPLATE,
            ("spec",),
            command=command,
            env_file=build.env_file,
            sandbox=unit_directives(name, build.app.spec),
            job=job,
        )
        if not text:
            return []
        path = f"{r.UNIT_DIR}/{app_unit(name)}"
        handlers = (r.DAEMON_RELOAD, build.restart)
        return [build.file(path, text.encode(), handlers, r.ORDER_UNIT_FILE, build.origin(SERVICE_TEMPLATE))]

    def placement(self, name: str) -> tuple[str | None, str | None]:
        return app_unit(name), None

    def logs(self, name: str) -> tuple[tuple[str, ...], str | None]:
        return (app_unit(name),), None


TYPE = Systemd()
