"""How a change rolls out: batches, failure budget, pauses, health gates."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field, field_validator

from .common import Strict, pattern
from .text import MAX_CHECK_SECONDS, MAX_RETRIES, MAX_WAIT_SECONDS

Percent = Annotated[
    str, Field(pattern=pattern(r"^(100|[1-9][0-9]?)%$", "a count, or a percentage from 1% to 100%"))
]


class UpdateStrategy(Strict):
    batch_size: Annotated[int, Field(ge=1)] | Percent = 1
    max_failures: Annotated[int, Field(ge=0)] = 0
    pause_seconds: Annotated[float, Field(ge=0)] = 0
    min_healthy_seconds: Annotated[float, Field(ge=0, le=MAX_WAIT_SECONDS)] = 0
    auto_rollback: bool = False
    # After the last batch, keep health-checking the updated instances this long; a failure in the
    # window halts the rollout like a failed batch (and triggers autoRollback).
    bake_seconds: Annotated[float, Field(ge=0, le=86400)] = 0

    def batch_count(self, nodes: int) -> int:
        """How many nodes go in one batch out of `nodes`."""
        if isinstance(self.batch_size, int):
            return self.batch_size
        return max(1, math.floor(nodes * int(self.batch_size[:-1]) / 100))


class HealthCheck(Strict):
    type: str = "process"
    path: Annotated[str, Field(pattern=pattern(r"^/[^\s]*$", "a URL path starting with /"))] = "/health"
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    expect_status: Annotated[int, Field(ge=100, le=599)] = 200
    # The bounds of the task that runs it (tasks/values.py): a repo cannot plan what a node refuses.
    interval: Annotated[float, Field(gt=0, le=MAX_CHECK_SECONDS)] = 2
    timeout: Annotated[float, Field(gt=0, le=MAX_CHECK_SECONDS)] = 2
    retries: Annotated[int, Field(ge=1, le=MAX_RETRIES)] = 15

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if value not in ("http", "tcp", "process"):
            raise ValueError(f"{value!r} is not a health check type (http, tcp, process)")
        return value
