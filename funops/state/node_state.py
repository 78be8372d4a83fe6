"""The node state file: what funops manages on the node, what it applied, what it still owes.

Written atomically by apply; read by gather. Unknown keys are kept (a newer funops may add some).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .records import UNFINISHED, ReleaseRecord, interrupted

STATE_FILE = "state.json"
FORMAT_VERSION = 1


class ManagedResource(BaseModel):
    model_config = ConfigDict(extra="allow")
    owner: str
    kind: str
    # The attributes funops last applied (file sha256/mode/owner/group, unit enabled/active, container
    # image/specHash/status): live ≠ applied is drift; desired ≠ applied is a change not yet applied.
    applied: dict[str, Any] | None = None


class AppRecord(BaseModel):
    model_config = ConfigDict(extra="allow")
    version: str
    release: str | None = None
    revision: str | None = None


class NodeState(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    format_version: int = Field(FORMAT_VERSION, alias="formatVersion")
    managed: dict[str, ManagedResource] = {}
    apps: dict[str, AppRecord] = {}
    owed: list[str] = []  # handlers a change made but that did not run yet (a failure, a lost link)
    releases: dict[str, list[ReleaseRecord]] = {}  # app → its last releases on this node, oldest first

    @classmethod
    def from_facts(cls, data: dict[str, Any] | None) -> NodeState:
        return cls.model_validate(data) if data else cls()

    def record(self, rec: ReleaseRecord, keep: int) -> None:
        """Add or update a release record; only the last `keep` releases of an app stay."""
        kept = [r for r in self.releases.get(rec.app, []) if r.id != rec.id] + [rec]
        self.releases[rec.app] = sorted(kept, key=lambda r: r.number)[-keep:]

    def set_status(self, release_id: str, status: str, **update: object) -> None:
        for app, recs in self.releases.items():
            self.releases[app] = [
                r.model_copy(update={"status": status, **update}) if r.id == release_id else r for r in recs
            ]

    def settle_interrupted(self) -> None:
        """Called by the holder of the node's lock: any unfinished record belongs to a dead apply."""
        for app, recs in self.releases.items():
            self.releases[app] = [interrupted(r) if r.status in UNFINISHED else r for r in recs]

    def images(self) -> set[str]:
        return {img for recs in self.releases.values() for r in recs for img in r.images()}

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2) + "\n"


def secrecy_record(res: Any) -> dict[str, Any]:
    """Extra keys of a managed resource that holds secrets (none for the others, so their records stay
    as they were): later diffs keep hiding a value that was a secret when applied, even if the repo
    no longer says so. Names of keys only, never values or digests."""
    if not res.secret and not res.secret_keys:
        return {}
    return {"secret": True, **({"secretKeys": sorted(res.secret_keys)} if res.secret_keys else {})}


def applied_secrecy(state: NodeState, rid: str) -> tuple[bool, frozenset[str]]:
    """Whether the resource held secrets when funops applied it (its record, or any kept release's),
    and which env keys were secrets then."""
    extra = (state.managed[rid].model_extra or {}) if rid in state.managed else {}
    secret = bool(extra.get("secret")) or any(
        spec.id == rid and spec.secret
        for recs in state.releases.values()
        for rec in recs
        for spec in rec.resources
    )
    return secret, frozenset(extra.get("secretKeys") or ())


def state_path(state_dir: str) -> str:
    return f"{state_dir.rstrip('/')}/{STATE_FILE}"
