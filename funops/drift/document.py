"""The drift report as a document: the `funops drift --output json` contract.

Its JSON Schema ships in funops/schemas/drift.schema.json (regenerate with
`funops schema drift > funops/schemas/drift.schema.json`); bump FORMAT_VERSION on any incompatible change.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ..kinds import KindName
from ..plan.document import FieldChangeDoc, FileDiffDoc, RevisionDoc

FORMAT_VERSION = 1

# expiring / mismatched: a certificate inside its renew window, or served with another serial than
# the other edge nodes serve (`funops certs renew` fixes both).
DriftClass = Literal["modified", "missing", "extra", "stopped", "owed", "expiring", "mismatched"]
DRIFT_CLASSES: tuple[DriftClass, ...] = (
    "modified",
    "missing",
    "extra",
    "stopped",
    "owed",
    "expiring",
    "mismatched",
)
Baseline = Literal["applied", "desired", "none"]


class _Doc(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class FieldDriftDoc(_Doc):
    field: str
    expected: Any = Field(
        description="the baseline value (last applied, else desired); hashes as fingerprints"
    )
    live: Any = Field(description="the value on the node now; null when absent; hashes as fingerprints")


class AckDoc(_Doc):
    reason: str
    until: str = Field(description="ISO date; the acknowledgement covers the drift through this day (UTC)")
    by: str
    expired: bool = Field(description="the date has passed: the drift counts again")
    matches: bool = Field(description="the drift is still the one acknowledged (same fingerprint)")
    line: int | None = Field(description="line of the acknowledgement in drift-ack.yaml")


class DriftItemDoc(_Doc):
    id: str = Field(
        description="resource id (<kind>:<name>: file:<path>, unit:<name>, container:<name>, …), "
        "handler:<handler> for an "
        "owed handler, nginx:config for a failing `nginx -t`"
    )
    kind: KindName | Literal["handler", "nginx"]
    owner: str | None = Field(description="app/<name> or ingress/<name>; null when funops does not know it")
    drift_class: DriftClass = Field(alias="class")
    summary: str = Field(description="one line for people")
    baseline: Baseline = Field(
        description="what the live value was compared with: the attributes funops last applied, the repo's "
        "desired ones (nodes applied by an older funops), or nothing (extra)"
    )
    fields: list[FieldDriftDoc]
    fingerprint: str = Field(
        description="sha256 of the class and the drifted live value (for acknowledgements)"
    )
    fixable: bool = Field(description="`funops drift --fix` removes it")
    acknowledged: bool = Field(description="covered by a current acknowledgement: does not fail the check")
    ack: AckDoc | None = Field(description="the acknowledgement naming this resource, if any")
    diff: FileDiffDoc | None = Field(
        None, description="modified files: what changed, from the content funops applied to the live one"
    )


class PendingDoc(_Doc):
    id: str
    kind: KindName
    owner: str
    action: Literal["create", "update", "delete"]
    fields: list[FieldChangeDoc] = Field(description="old: live (= last applied), new: desired")


class NginxTestDoc(_Doc):
    ok: bool
    output: str = Field(description="the last lines of `nginx -t` when it failed")


class NodeDriftDoc(_Doc):
    name: str
    address: str
    transport: Literal["ssh", "agent", "local"]
    reachable: bool
    error: str | None
    drift: list[DriftItemDoc] = Field(description="drift found, acknowledged or not")
    pending: list[PendingDoc] = Field(
        description="repo changes not applied yet (live = last applied ≠ desired): shown, never a failure"
    )
    notices: list[str] = Field(description="observations that are not drift (e.g. a container restarted)")
    nginx_test: NginxTestDoc | None = Field(description="`nginx -t` where funops manages nginx files")


class SummaryDoc(_Doc):
    drift: int = Field(description="unacknowledged drift items: > 0 fails the check (exit 2)")
    acknowledged: int
    pending: int
    by_class: dict[str, int] = Field(description="unacknowledged drift per class")
    nodes: int
    nodes_drifted: int
    nodes_unreachable: int
    unused_acks: list[str] = Field(description="acknowledgements (node resource) that match no drift now")


class FixOutcomeDoc(_Doc):
    status: str = Field(description="the apply outcome: ok, unchanged, failed, unreachable, skipped")
    error: str | None


class FixDoc(_Doc):
    rollout: str | None = Field(description="the rollout id in the journal; null when nothing ran")
    halted: bool
    nodes: dict[str, FixOutcomeDoc]


class DriftDoc(_Doc):
    format_version: Literal[1] = FORMAT_VERSION
    kind: Literal["drift"] = "drift"
    project: str
    revision: RevisionDoc
    created_at: str = Field(description="UTC, ISO 8601")
    targets: list[str]
    status: Literal["clean", "drift", "unreachable"] = Field(
        description="clean: no unacknowledged drift anywhere reachable and every node reached"
    )
    exit_code: int = Field(
        description="the exit code of the command: 0 clean, 2 drift, 4 unreachable, 3 --fix failed, 1 error"
    )
    summary: SummaryDoc
    nodes: list[NodeDriftDoc]
    fix: FixDoc | None = Field(description="what `--fix` did; null without --fix")

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2) + "\n"


def drift_schema() -> dict[str, Any]:
    schema = DriftDoc.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://funops.dev/schemas/drift-v1.json"
    return schema
