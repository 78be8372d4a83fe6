"""The names funops builds and reads back: resource ids, owners and handlers, as typed strings.

Each is a `str` (so it serializes, compares and sorts as the text people see in plans, state files
and acks) that knows its parts; nothing else builds `"file:/x"`, `"app/web"` or `"restart:unit:x"`
by hand or splits one.
"""

from __future__ import annotations

from typing import Literal


class ResourceId(str):
    """`<kind>:<name>`: `file:/etc/x.conf`, `unit:web.service`, `container:api`."""

    __slots__ = ()

    @classmethod
    def of(cls, kind: str, name: str) -> ResourceId:
        return cls(f"{kind}:{name}")

    @property
    def kind(self) -> str:
        return self.partition(":")[0]

    @property
    def name(self) -> str:
        return self.partition(":")[2]


OwnerType = Literal["app", "ingress"]


class Owner(str):
    """Who asked for a resource: `app/<name>` or `ingress/<name>`."""

    __slots__ = ()

    @classmethod
    def of_app(cls, name: str) -> Owner:
        return cls(f"app/{name}")

    @classmethod
    def of_ingress(cls, name: str) -> Owner:
        return cls(f"ingress/{name}")

    @property
    def type(self) -> str:
        return self.partition("/")[0]

    @property
    def name(self) -> str:
        return self.partition("/")[2]

    @property
    def app(self) -> str | None:
        """The app's name when an app owns it; None for an ingress."""
        return self.name if self.type == "app" else None

    def deletable_in(self, apps: set[str] | None) -> bool:
        """Whether a plan of `apps` (None: of everything) may delete what this owner owns: a plan of
        some apps deletes only theirs (an ingress's files, shared, are not deleted by one)."""
        return apps is None or self.app in apps


class Handler(str):
    """What a change owes, run once per node after the tasks: a node-wide action (`daemon-reload`,
    `reload:nginx`) or a restart of one resource (`restart:<kind>:<name>`)."""

    __slots__ = ()
    RESTART = "restart"

    @classmethod
    def restart(cls, kind: str, name: str) -> Handler:
        return cls(f"{cls.RESTART}:{kind}:{name}")

    @property
    def restarts(self) -> ResourceId | None:
        """The resource a restart handler restarts; None for node-wide handlers."""
        verb, sep, target = self.partition(":")
        return ResourceId(target) if sep and verb == self.RESTART and ":" in target else None
