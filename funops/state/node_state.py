"""The node state file: what funops manages on the node, what it applied, what it still owes.

Written atomically by apply; read by gather. Unknown keys are kept (a newer funops may add some).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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

    @classmethod
    def from_facts(cls, data: dict[str, Any] | None) -> NodeState:
        return cls.model_validate(data) if data else cls()

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2) + "\n"


def state_path(state_dir: str) -> str:
    return f"{state_dir.rstrip('/')}/{STATE_FILE}"
