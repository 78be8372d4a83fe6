"""`type: job`: the app's command as a oneshot service started by a systemd timer (`<app>.timer`) on
its `schedule`. It shares the systemd type's fields and unit; it serves no port."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from .. import resources as r
from ..ids import Handler, ResourceId
from ..model.calendar import calendar_problem
from ..model.common import FieldError, Strict
from ..resources import app_unit, timer_unit
from .base import AppBuild
from .systemd import Systemd

if TYPE_CHECKING:
    from .base import AppSpec

TIMER_TEMPLATE = "systemd/job.timer.j2"


class JobFields(Strict):
    schedule: str | None = None
    """When the job runs, in systemd calendar syntax (OnCalendar=), e.g. daily, *:0/15 or Mon..Fri 09:00."""
    persistent: bool = True
    """Catch up at boot on a run missed while the node was off (default true)."""
    randomized_delay: Annotated[int, Field(ge=0, le=86400)] = 0
    """Seconds each node waits at random before a run (RandomizedDelaySec=, default 0)."""


class Job(Systemd):
    name = "job"
    fields = JobFields
    refused = ("image", "volumes", "backends", "pids_limit", "read_only_rootfs", "port", "health_check",
               "strategy")  # fmt: skip
    unroutable = "is a job (run on a timer): it serves no port to route to"

    def check(self, spec: AppSpec) -> None:
        if not spec.command:
            raise FieldError(("command",), f"a {self.name} app needs a command")
        problem = calendar_problem(spec.schedule or "")
        if spec.schedule is None:
            raise FieldError(("schedule",), "a job needs a schedule (systemd calendar syntax, e.g. daily)")
        if problem:
            raise FieldError(
                ("schedule",), f"{spec.schedule!r} is not a systemd calendar expression: {problem}"
            )
        if spec.user and ":" in spec.user:
            raise FieldError(("user",), f"a {self.name} app's user is a name or a uid (no :group)")

    def restart(self, name: str) -> Handler:
        return Handler.restart("job", name)

    def resources(self, build: AppBuild) -> list[r.Resource]:
        """The service unit, the timer unit and the job resource (its timer enabled and active)."""
        name = build.app.metadata.name
        unit_file = self.unit_file(build, job=True)
        text = build.unit_text(TIMER_TEMPLATE, ("spec", "schedule"))
        if not text:
            return unit_file
        timer_file = build.file(
            f"{r.UNIT_DIR}/{timer_unit(name)}", text.encode(), (r.DAEMON_RELOAD, build.restart),
            r.ORDER_UNIT_FILE, build.origin(TIMER_TEMPLATE),
        )  # fmt: skip
        job = r.Resource(
            id=ResourceId.of("job", name), kind="job", owner=build.owner, order=r.ORDER_UNIT,
            desired={"enabled": "enabled", "active": "active"},
        )  # fmt: skip
        return [*unit_file, timer_file, job]

    def placement(self, name: str) -> tuple[str | None, str | None]:
        return timer_unit(name), None

    def logs(self, name: str) -> tuple[tuple[str, ...], str | None]:
        """The service's runs and the timer's firings."""
        return (app_unit(name), timer_unit(name)), None

    def node_files(self, name: str) -> dict[str, str]:
        return {f"{r.UNIT_DIR}/{timer_unit(name)}": "a job's systemd timer"}


TYPE = Job()
