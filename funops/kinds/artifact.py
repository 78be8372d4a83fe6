"""Artifacts of systemd apps: the `current` link on a release dir holding content of a given sha256.

Placed first on the node (a failed or corrupt download stops it before anything changed); its
run spec says where the content comes from (a URL the node fetches, or the bytes funops uploads as
the resource's content), so a rollback can fetch it again when its directory has been pruned.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from ..resources import Resource
from ..tasks import model as m
from .base import DELETE, PREPARE, NodeWork, PathMap, ResourceKind, Sections, Step

if TYPE_CHECKING:
    from .facts import LiveFacts

# Where each `current` link points, and the sha256 its release dir was made from.
_PROBE = """\
echo '@@funops artifacts'
funops_artifact() {{ if [ -L "$1" ]; then printf '%s|%s|%s\\n' "$1" "$(readlink -- "$1")" \\
  "$(head -c 64 -- "$1/{marker}" 2>/dev/null)"; fi; }}
{calls}
"""


class ArtifactKind(ResourceKind):
    name = "artifact"
    article = "an artifact"
    facts_alias = "artifacts"
    delete_rank = 3
    summary_fields = ("release", "sha256")

    def probe(self, names: list[str], path: PathMap) -> str:
        calls = "\n".join(f"funops_artifact {shlex.quote(path(a))}" for a in names)
        return _PROBE.format(marker=m.ARTIFACT_MARKER, calls=calls)

    def parse(self, sections: Sections, unmap: PathMap, facts: LiveFacts) -> dict[str, dict[str, Any]]:
        found = {}
        for line in sections.get("artifacts", []):
            link, target, sha = [*line.split("|"), "", ""][:3]
            found[unmap(link)] = {"release": target.rstrip("/").rsplit("/", 1)[-1], "sha256": sha}
        return found

    def live(self, name: str, facts: LiveFacts) -> dict[str, Any] | None:
        info = facts.live[self.name].get(name)
        return None if info is None else {"release": info["release"], "sha256": info["sha256"]}

    @staticmethod
    def place(res: Resource) -> m.PlaceArtifact:
        spec = res.run_spec or {}
        return m.PlaceArtifact(
            link=res.name, directory=spec["dir"], release=res.desired["release"],
            sha256=res.desired["sha256"],
            keep=int(spec.get("keep", 5)), url=spec.get("url"), upload=spec.get("upload"),
            file=spec.get("file") or "", content=res.content, label=res.id,
        )  # fmt: skip

    def tasks(self, work: NodeWork) -> list[Step]:
        steps = [Step(PREPARE, self.place(res)) for _, res in work.writes]
        steps += [Step(DELETE + self.delete_rank, m.RemoveArtifact(c.id.name)) for c in work.deletes]
        return steps


KIND = ArtifactKind()
