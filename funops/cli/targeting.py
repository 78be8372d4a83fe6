"""`--app NAME` on plan, apply and drift: plan only those apps (and the ingress files routing to
them), as `terraform -target` does — for exceptions, with Terraform's warning."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .output import console, reported

if TYPE_CHECKING:
    from ..load.project import Project
    from ..plan.planner import Intent

AppOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--app", "-a", metavar="NAME", help="Only this app's resources and the ingress files routing to it."
    ),
]

WARNING = (
    "[yellow]warning:[/] --app: only part of the repo is planned; the plan may be incomplete. "
    "Targeting is for exceptions (a hotfix, a stuck app), not routine use: run without it next."
)


def app_intent(project: Project, apps: list[str] | None, stderr: bool = True) -> Intent | None:
    """The plan's intent for `--app` values (each an app of the repo), after the warning; None without."""
    if not apps:
        return None
    from ..load.targets import select_apps
    from ..plan.planner import Intent

    with reported():
        chosen = select_apps(project.apps, apps)
    console(stderr=stderr).print(WARNING)
    return Intent(apps=chosen)
