"""`funops history --output json`: the release history as a versioned document. Its JSON Schema
ships in funops/schemas/history.schema.json (`funops schema history`); bump FORMAT_VERSION on any
incompatible change."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .history import Release
from .stats import Figures

FORMAT_VERSION = 1


class _Doc(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class RevisionDoc(_Doc):
    commit: str | None = Field(description="git commit the release's manifests came from")
    dirty: bool = Field(description="deployed from a working tree with uncommitted changes")
    ref: str | None = None


class ReleaseDoc(_Doc):
    id: str = Field(description="<app>-<number>, the same on every node of the release")
    app: str
    number: int
    kind: Literal["deploy", "rollback", "auto-rollback"]
    status: Literal["created", "running", "succeeded", "failed", "rolled_back"] = Field(
        description="over all its nodes: rolled_back > running > created > failed > succeeded"
    )
    revision: RevisionDoc
    versions: list[str] = Field(description="versions the release put on its nodes")
    nodes: dict[str, str] = Field(description="node → the release's status there")
    restores: str | None = Field(description="rollbacks: the release whose artifacts they put back")
    who: str | None
    started: str | None = Field(description="UTC, ISO 8601")
    finished: str | None
    seconds: float | None
    errors: dict[str, str] = Field(description="node → why the release failed there")


class FiguresDoc(_Doc):
    name: str = Field(description="the app (apps) or the journal's kind of rollout (rollouts)")
    runs: int = Field(description="finished within the window")
    succeeded: int
    success_rate: float | None = Field(description="succeeded / runs; null without runs")
    median_seconds: float | None
    p95_seconds: float | None = Field(description="nearest rank")


class StatsDoc(_Doc):
    window: str = Field(description="as given to --since, e.g. 7d")
    since: str = Field(description="UTC, ISO 8601: the window's start")
    apps: list[FiguresDoc] = Field(
        description="per app, the deploys (not rollbacks) the nodes' records show started in the window; "
        "a rolled-back deploy is not a success"
    )
    rollouts: list[FiguresDoc] = Field(
        description="per kind, the rollouts this controller's journal holds (exit 0 is a success)"
    )


class HistoryDoc(_Doc):
    format_version: Literal[1] = FORMAT_VERSION
    kind: Literal["history"] = "history"
    project: str
    app: str | None = Field(description="the app asked for; null for all")
    unreachable: list[str] = Field(description="nodes whose records could not be read")
    releases: list[ReleaseDoc] = Field(description="newest first")
    stats: StatsDoc | None = Field(default=None, description="deploy figures over the window")

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2) + "\n"


def stats_doc(window: str, since: str, apps: list[Figures], rollouts: list[Figures]) -> StatsDoc:
    def one(f: Figures) -> FiguresDoc:
        return FiguresDoc(
            name=f.name, runs=f.runs, succeeded=f.succeeded, success_rate=f.success_rate,
            median_seconds=f.median_seconds, p95_seconds=f.p95_seconds,
        )  # fmt: skip

    return StatsDoc(
        window=window, since=since, apps=[one(f) for f in apps], rollouts=[one(f) for f in rollouts]
    )


def history_doc(
    project: str, app: str | None, rels: list[Release], unreachable: list[str], stats: StatsDoc | None = None
) -> HistoryDoc:
    return HistoryDoc(
        project=project,
        app=app,
        unreachable=unreachable,
        stats=stats,
        releases=[
            ReleaseDoc(
                id=r.id,
                app=r.app,
                number=r.number,
                kind=r.kind,
                status=r.status,  # type: ignore[arg-type]
                revision=RevisionDoc(commit=r.revision.commit, dirty=r.revision.dirty, ref=r.revision.ref),
                versions=r.versions,
                nodes=r.nodes,
                restores=r.restores,
                who=r.who,
                started=r.started,
                finished=r.finished,
                seconds=r.seconds,
                errors=r.errors,
            )
            for r in sorted(rels, key=lambda r: (r.started or "", r.app, r.number), reverse=True)
        ],
    )


def history_schema() -> dict[str, Any]:
    schema = HistoryDoc.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://funops.dev/schemas/history-v1.json"
    return schema
