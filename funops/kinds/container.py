"""Docker containers: image, spec hash (a label) and running. A new image or spec replaces the
container (it can only be recreated: the new one needs the same name and host port); a container
that only stopped is started again."""

from __future__ import annotations

import json
import shlex
from typing import TYPE_CHECKING, Any

from ..resources import Resource
from ..tasks import model as m
from .base import DELETE, RUN, DriftClass, NodeWork, PathMap, ResourceKind, Sections, Step

if TYPE_CHECKING:
    from .facts import LiveFacts

SPEC_LABEL = "funops.spec-hash"
_FORMAT = (
    '{"name":{{json .Name}},"image":{{json .Config.Image}},"status":{{json .State.Status}},'
    '"startedAt":{{json .State.StartedAt}},"restarts":{{json .RestartCount}},'
    '"labels":{{json .Config.Labels}}}'
)
# The engine is asked whether it runs only when the inspect failed (a container missing, or no
# engine): each docker CLI run costs the node ≈ 40 ms of CPU, and a converged node has them all.
_PROBE = """\
echo '@@funops containers'
if command -v docker >/dev/null 2>&1; then
  docker inspect --type container --format {fmt} -- {names} 2>/dev/null \\
    || docker version -f '{{{{.Server.Version}}}}' >/dev/null 2>&1 || echo 'nodocker'
else echo 'nodocker'; fi
"""


class ContainerKind(ResourceKind):
    name = "container"
    host_wide = True
    article = "a container"
    facts_alias = "containers"
    delete_rank = 0
    replace_fields = frozenset({"image", "specHash"})
    summary_fields = ("image",)

    def probe(self, names: list[str], path: PathMap) -> str:
        return _PROBE.format(fmt=shlex.quote(_FORMAT), names=" ".join(shlex.quote(c) for c in names))

    def parse(self, sections: Sections, unmap: PathMap, facts: LiveFacts) -> dict[str, dict[str, Any]]:
        lines = sections.get("containers", [])
        if lines[:1] == ["nodocker"]:
            facts.docker = False
            return {}
        found = {}
        for line in lines:
            data = json.loads(line)
            found[data["name"].lstrip("/")] = data
        return found

    def live(self, name: str, facts: LiveFacts) -> dict[str, Any] | None:
        info = facts.live[self.name].get(name)
        if info is None:
            return None
        return {
            "image": info.get("image"),
            "specHash": (info.get("labels") or {}).get(SPEC_LABEL),
            "status": info.get("status"),
        }

    def tasks(self, work: NodeWork) -> list[Step]:
        kept_images = frozenset(work.state.images())  # a kept release may still need a removed one's image
        steps = [
            Step(
                DELETE + self.delete_rank,
                m.RemoveContainer(c.id.name, c.owner.app in work.cleanup_images, kept_images),
            )
            for c in work.deletes
        ]
        recreated = set()
        for change, res in work.writes:
            if change.action == "update" and {f.field for f in change.fields} == {"status"}:
                steps.append(Step(RUN, m.StartContainer(res.name)))
            else:
                steps.append(Step(RUN, self.run(res)))
                recreated.add(res.name)
        for name in work.restarts(self.name):  # its env file changed: a new container reads it
            res = work.desired.get(self.resource_id(name))
            if res is not None and name not in recreated:
                steps.append(Step(RUN, self.run(res)))
                recreated.add(name)
        return steps

    @staticmethod
    def run(res: Resource) -> m.RunContainer:
        return m.RunContainer(dict(res.run_spec or {}))

    def housekeeping(self, work: NodeWork) -> list[m.Task]:
        """Images of apps that clean theirs up: only those the kept releases need stay."""
        images = {
            image
            for recs in work.state.releases.values()
            for rec in recs
            if rec.app in work.cleanup_images
            for image in rec.images()
        } | {
            r.run_spec["image"]
            for r in work.desired.values()
            if r.kind == self.name and r.run_spec and r.owner.app in work.cleanup_images
        }
        from ..model.versions import image_repository  # controller side only (pydantic)

        repositories = frozenset(image_repository(image) for image in images if "@" not in image)
        if not repositories:
            return []
        return [m.PruneImages(repositories, frozenset(work.state.images() | images))]

    def app_of(self, name: str) -> str | None:
        return name  # containers are named after their app

    def drift_class(self, changed: set[str]) -> DriftClass:
        return "stopped" if changed == {"status"} else "modified"

    def notices(self, res: Resource, facts: LiveFacts) -> list[str]:
        """A container that restarted is a health matter, not drift: `--fix` could not undo a restart
        count, and a check that cannot be cleared gets ignored. Shown, never a failure."""
        info = facts.live[self.name].get(res.name)
        if info and int(info.get("restarts") or 0) > 0:
            started = info.get("startedAt", "?")
            return [f"{res.id} restarted {info['restarts']} time(s); running since {started}"]
        return []


KIND = ContainerKind()
