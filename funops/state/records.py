"""Release records: one app's release as it landed on one node, kept in the node's state file.

A record holds everything needed to put the release back without the repo: each resource's spec and
attributes (file contents live in the node's artifact store, by sha256), the app's placement (its
health check), the strategy it rolled out with, and the revision it came from.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from ..model.strategy import HealthCheck, UpdateStrategy
from ..resources import AppPlacement, Resource

Status = Literal["created", "running", "succeeded", "failed", "rolled_back"]
Kind = Literal["deploy", "rollback", "auto-rollback"]
UNFINISHED = ("created", "running")


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class ResourceSpec(_Model):
    id: str
    kind: str
    owner: str
    desired: dict[str, Any]
    order: int
    handlers: list[str] = []
    secret: bool = False
    run_spec: dict[str, Any] | None = None
    routes: list[str] = []

    @classmethod
    def of(cls, res: Resource) -> ResourceSpec:
        return cls(
            id=res.id, kind=res.kind, owner=res.owner, desired=dict(res.desired), order=res.order,
            handlers=list(res.handlers), secret=res.secret,
            run_spec=dict(res.run_spec) if res.run_spec is not None else None, routes=list(res.routes),
        )  # fmt: skip

    def resource(self) -> Resource:
        """Back to a resource; a file's content is left on the node (its artifact store has it)."""
        return Resource(
            id=self.id, kind=self.kind, owner=self.owner, desired=self.desired,  # type: ignore[arg-type]
            order=self.order, handlers=tuple(self.handlers), secret=self.secret, run_spec=self.run_spec,
            routes=tuple(self.routes),
        )  # fmt: skip


class PlacementSpec(_Model):
    app: str
    type: str
    version: str
    release: str | None = None
    port: int | None = None
    bind: str
    health: dict[str, Any] | None = None
    unit: str | None = None
    container: str | None = None

    @classmethod
    def of(cls, p: AppPlacement) -> PlacementSpec:
        health = p.health.model_dump(by_alias=True) if p.health else None
        return cls(
            app=p.app, type=p.type, version=p.version, release=p.release, port=p.port, bind=p.bind,
            health=health, unit=p.unit, container=p.container,
        )  # fmt: skip

    def placement(self) -> AppPlacement:
        return AppPlacement(
            app=self.app, type=self.type, version=self.version, release=self.release, port=self.port,
            bind=self.bind, health=HealthCheck.model_validate(self.health) if self.health else None,
            unit=self.unit, container=self.container,
        )  # fmt: skip


class RevisionRef(_Model):
    commit: str | None = None
    dirty: bool = False
    ref: str | None = None


class ReleaseRecord(_Model):
    id: str  # "<app>-<number>", the same on every node of the release
    app: str
    number: int
    kind: Kind = "deploy"
    status: Status = "created"
    revision: RevisionRef = RevisionRef()
    version: str | None = None  # on this node; None when the release removed the app from it
    restores: str | None = None  # rollbacks: the release whose artifacts they put back
    rollout: str | None = None
    who: str | None = None
    started: str | None = None  # UTC, ISO 8601
    finished: str | None = None
    error: str | None = None
    strategy: dict[str, Any] | None = None
    placement: PlacementSpec | None = None
    resources: list[ResourceSpec] = []

    def images(self) -> set[str]:
        return {r.run_spec["image"] for r in self.resources if r.run_spec and r.run_spec.get("image")}

    def update_strategy(self) -> UpdateStrategy | None:
        return UpdateStrategy.model_validate(self.strategy) if self.strategy else None


def release_id(app: str, number: int) -> str:
    return f"{app}-{number}"


def interrupted(record: ReleaseRecord) -> ReleaseRecord:
    """The rule for a release whose apply died (a killed controller, a lost node): once no live apply
    holds the node, a record still `running` is `failed`, never running forever."""
    return record.model_copy(
        update={"status": "failed", "error": record.error or "interrupted: the apply running it stopped"}
    )
