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
    """Nodes changed at once: a count, or a percentage of the nodes such as "25%" (default 1)."""
    max_failures: Annotated[int, Field(ge=0)] = 0
    """Failed nodes tolerated, counted across batches, before the rollout halts (default 0)."""
    pause_seconds: Annotated[float, Field(ge=0)] = 0
    """Seconds to wait between two batches (default 0)."""
    min_healthy_seconds: Annotated[float, Field(ge=0, le=MAX_WAIT_SECONDS)] = 0
    """Seconds an instance must stay healthy after its check first passed, checked again then (default 0)."""
    auto_rollback: bool = False
    """Take the release back to the previous one when the rollout halts (default false)."""
    # After the last batch, keep health-checking the updated instances this long; a failure in the
    # window halts the rollout like a failed batch (and triggers autoRollback).
    bake_seconds: Annotated[float, Field(ge=0, le=86400)] = 0
    """Seconds to keep health-checking after the last batch; a failure halts the rollout (default 0)."""

    def batch_count(self, nodes: int) -> int:
        """How many nodes go in one batch out of `nodes`."""
        if isinstance(self.batch_size, int):
            return self.batch_size
        return max(1, math.floor(nodes * int(self.batch_size[:-1]) / 100))


class HealthCheck(Strict):
    type: str = "process"
    """process (default: the unit or container runs), http (path answers expectStatus) or tcp (port open)."""
    path: Annotated[str, Field(pattern=pattern(r"^/[^\s]*$", "a URL path starting with /"))] = "/health"
    """The URL path an http check requests (default "/health")."""
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    """The port checked (default: the app's port)."""
    expect_status: Annotated[int, Field(ge=100, le=599)] = 200
    """The HTTP status an http check expects (default 200)."""
    # The bounds of the task that runs it (tasks/values.py): a repo cannot plan what a node refuses.
    interval: Annotated[float, Field(gt=0, le=MAX_CHECK_SECONDS)] = 2
    """Seconds between two tries (default 2)."""
    timeout: Annotated[float, Field(gt=0, le=MAX_CHECK_SECONDS)] = 2
    """Seconds one try may take (default 2)."""
    retries: Annotated[int, Field(ge=1, le=MAX_RETRIES)] = 15
    """Tries before the instance counts as unhealthy (default 15)."""

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if value not in ("http", "tcp", "process"):
            raise ValueError(f"{value!r} is not a health check type (http, tcp, process)")
        return value
