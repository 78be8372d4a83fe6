"""`funops history --output json`: the release history as a versioned document. Its JSON Schema
ships in funops/schemas/history.schema.json (`funops schema history`); bump FORMAT_VERSION on any
incompatible change."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .history import Release

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


class HistoryDoc(_Doc):
    format_version: Literal[1] = FORMAT_VERSION
    kind: Literal["history"] = "history"
    project: str
    app: str | None = Field(description="the app asked for; null for all")
    unreachable: list[str] = Field(description="nodes whose records could not be read")
    releases: list[ReleaseDoc] = Field(description="newest first")

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2) + "\n"


def history_doc(project: str, app: str | None, rels: list[Release], unreachable: list[str]) -> HistoryDoc:
    return HistoryDoc(
        project=project,
        app=app,
        unreachable=unreachable,
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
