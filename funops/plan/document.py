"""The plan as a document: the `--output json` contract. Its JSON Schema ships in
funops/schemas/plan.schema.json (regenerate with `funops schema plan > funops/schemas/plan.schema.json`);
bump FORMAT_VERSION on any incompatible change."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ..kinds import KindName

FORMAT_VERSION = 2  # 2: a saved plan may carry its program (older plans still read)


class _Doc(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class RevisionDoc(_Doc):
    commit: str | None = Field(description="git commit the manifests were read from; null outside git")
    dirty: bool = Field(description="the working tree differed from the commit")
    ref: str = Field(description="'working tree' or the --revision given")


class FieldChangeDoc(_Doc):
    field: str
    old: Any = Field(description="live value; null when absent; secrets only as a short fingerprint")
    new: Any = Field(description="desired value; null on delete; secrets only as a short fingerprint")


class TemplateDoc(_Doc):
    name: str = Field(description="the template's name, e.g. nginx/site.conf.j2")
    origin: Literal["bundled", "repo"] = Field(
        description="bundled: funops's own template; repo: the repo's templates/ (an override or its own)"
    )
    path: str = Field(description="templates/<name> in the repo, or funops/templates/<name>")
    uses: list[str] = Field(
        [], description="templates it extends, includes or imports (bundled/<name>: the bundled one)"
    )


class FileDiffDoc(_Doc):
    """What changes inside a file: a unified diff with secrets redacted, or why there is none."""

    format: Literal["unified", "binary", "large", "hidden", "off", "unavailable"] = Field(
        description="unified: `unified` holds the diff; binary/large: sizes only; hidden: the file is "
        "a secret; off: `diff: false` in the manifest; unavailable: the old content could not be read"
    )
    unified: str | None = Field(None, description="the unified diff (secret values replaced by markers)")
    note: str | None = Field(
        None, description="a line for people: sizes, what a delete removes, why not shown"
    )
    old_size: int | None = Field(None, description="bytes before; null when the file did not exist")
    new_size: int | None = Field(None, description="bytes after; null when the file goes")
    truncated: bool = Field(False, description="only the first lines of the diff are shown")


class ChangeDoc(_Doc):
    id: str = Field(
        description="stable resource id: file:<path>, unit:<name>, container:<name>, artifact:<current link>"
    )
    kind: KindName
    owner: str = Field(description="app/<name> or ingress/<name>")
    action: Literal["create", "update", "replace", "delete"] = Field(
        description="replace: deleted and created anew (a container with a new image or spec)"
    )
    fields: list[FieldChangeDoc]
    handlers: list[str] = Field(
        description="what the change triggers: daemon-reload, restart:…, reload:nginx"
    )
    secret: bool = Field(description="the resource holds secrets: values are never shown")
    template: TemplateDoc | None = Field(
        None, description="what the resource was rendered from; null for inline content, deletes, units"
    )
    diff: FileDiffDoc | None = Field(
        None, description="files: what changes inside (absent with --no-diff and for other kinds)"
    )


class NodeDoc(_Doc):
    name: str
    address: str
    transport: Literal["ssh", "agent", "local"]
    reachable: bool
    error: str | None
    changes: list[ChangeDoc] = Field(description="pending changes only, in apply order")
    unchanged: int = Field(description="resources already as desired")
    handlers: list[str] = Field(description="handlers this node will run, owed ones included")
    owed: list[str] = Field(description="handlers owed by an earlier apply that did not finish")
    facts: dict[str, Any] = Field(description="diskFreePct, containerCount, nginx, gatherSeconds")
    observed: str | None = Field(
        None,
        description="sha256 of what the plan saw (live resources, state file): a saved plan is refused "
        "when it differs at apply time",
    )
    interrupted: list[str] = Field(
        [], description="releases whose apply died mid-way here; the next apply records them as failed"
    )


class SummaryDoc(_Doc):
    create: int
    update: int
    replace: int = 0
    delete: int
    unchanged: int
    owed: int
    nodes: int
    nodes_changed: int
    nodes_unreachable: int


class ScheduleDoc(_Doc):
    """How apply will roll the plan out (the strictest strategy among the apps that change)."""

    batches: list[list[str]] = Field(description="the nodes that change, batch by batch, in order")
    max_failures: int = Field(description="failed nodes allowed before the rollout halts")
    pause_seconds: float = Field(description="pause between batches")
    min_healthy_seconds: float = Field(description="each node holds healthy this long in its batch")
    bake_seconds: float = Field(description="after the last batch, updated instances are watched this long")
    auto_rollback: bool = Field(description="a halt (failed batch or bake) rolls the release back")
    drains: dict[str, list[str]] = Field(
        description="node → the apps drained from every ingress before the node is touched"
    )


class CertServedDoc(_Doc):
    serial: str
    not_after: str = Field(description="UTC, ISO 8601")
    days_left: int


class CertificateDoc(_Doc):
    """A Certificate (issue 27): what apply does for it across its edge nodes, and why."""

    name: str
    action: Literal["issue", "renew", "reissue", "deploy", "rollback", "none"] = Field(
        description="issue/renew/reissue: an ACME order before the rollout; deploy: copy the serial the "
        "other nodes serve to those serving another (or none); rollback: back to a kept version"
    )
    reason: str = Field(description="for people: 'renew (expires in 12 days)', 'reissue (names changed: …)'")
    domains: list[str]
    issuer: str = Field(description="the funops.yaml acme.issuers name")
    challenge: Literal["http-01", "dns-01"]
    serial: str | None = Field(description="the serial every node is to serve; '(new)' for an order")
    mismatch: bool = Field(description="the edge nodes serve different serials")
    nodes: dict[str, CertServedDoc | None] = Field(description="edge node → what it serves now (null: none)")


class ProgramDoc(_Doc):
    """What `apply FILE` runs (plan/saved.py): written by `plan --out` only. Tasks are in the agent's
    wire format (agent/wire.py); a unit holding a secret is `{"sealed": ref}` (its value in `sealed`)
    or `{"withheld": true}` (not sealed: apply then needs the repo)."""

    connection: dict[str, Any] = Field(
        description="how to reach the nodes: settings and inventory entries (no credentials, only "
        "their paths and environment variable names, resolved where apply runs)"
    )
    intent: str = Field(description="deploy, rollback, auto-rollback")
    strategy: dict[str, Any] = Field(description="the strategy in force (the schedule's source)")
    batches: list[list[str]]
    nodes: dict[str, dict[str, Any]] = Field(description="node → its program: tasks, records, checks")
    needs_repo: list[str] = Field(description="why apply needs the repo for this plan (empty: it does not)")
    rolled_back: list[list[str]] = Field(description="[app, release id]: this revision was rolled back")
    drains: dict[str, Any] | None = Field(
        None,
        description="the rollout's drain steps (plan/drains.py): for each set of drained (app, node) "
        "endpoints it can reach (`variants`), each ingress node's sites as DrainWrite tasks (`files`); "
        "`steps`: the healthy path, batch by batch; null: it drains nothing",
    )
    orders: dict[str, dict[str, Any]] = Field(
        {},
        description="certificate → its ACME order (or copy) as apply runs it (plan/certorders.py): "
        "names, challenge, keyType, issuer (url of its ACME directory, caBundle PEM, EAB and account key "
        "as references), "
        "dns (server, zone, TSIG key as a reference), edges, and the placeholder serial its nodes' tasks "
        "are bound from",
    )
    rollback: dict[str, dict[str, Any]] = Field(
        {},
        description="app → {from, to, strategy}: a halt's auto-rollback, from the release this plan "
        "makes to the last succeeded one before it (null: none), re-applied from the nodes' records",
    )
    sealed_to: str | None = Field(description="the certificate (PEM) the secret units are sealed to")
    sealed: str | None = Field(description="the secret units, CMS-encrypted to sealed_to (base64 DER)")


class PlanDoc(_Doc):
    format_version: Literal[1, 2] = FORMAT_VERSION
    kind: Literal["plan"] = "plan"
    project: str
    revision: RevisionDoc
    created_at: str = Field(description="UTC, ISO 8601")
    targets: list[str] = Field(description="node names this plan covers")
    summary: SummaryDoc
    placements: dict[str, list[str]] = Field(description="app → nodes it runs on")
    versions: dict[str, dict[str, str]] = Field(description="app → node → version")
    nodes: list[NodeDoc]
    schedule: ScheduleDoc | None = Field(None, description="the batch schedule apply follows")
    certificates: list[CertificateDoc] = Field([], description="ACME certificates of the edge nodes")
    program: ProgramDoc | None = Field(None, description="saved plans only: what `apply FILE` runs")

    def has_changes(self) -> bool:
        s = self.summary
        return bool(s.create or s.update or s.replace or s.delete or s.owed)

    def to_json(self) -> str:
        leave = None if self.program is not None else {"program"}  # only saved plans carry it
        return self.model_dump_json(by_alias=True, indent=2, exclude=leave) + "\n"


def plan_schema() -> dict[str, Any]:
    schema = PlanDoc.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://funops.dev/schemas/plan-v{FORMAT_VERSION}.json"
    return schema
