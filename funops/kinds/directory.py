"""Directories an app needs (`spec.directories`): path, owner, group, mode.

Made before the app's files (they may go inside) and after the users that own them. A directory
funops made and no longer wants goes only when empty: what an app left in it is data.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..tasks import model as m
from . import native
from .base import DELETE, DIRECTORIES, NodeWork, PathMap, ResourceKind, Sections, Step

if TYPE_CHECKING:
    from .facts import LiveFacts

_PROBE = "echo '@@funops dirs'; stat -c '%a|%U|%G|%u|%g|%F|%n' -- {paths} 2>/dev/null\n"


class DirectoryKind(ResourceKind):
    name = "directory"
    article = "a directory"
    facts_alias = "directories"
    delete_rank = 3  # after the files that were in it
    summary_fields = ("mode", "owner", "group")

    def probe(self, names: list[str], path: PathMap) -> str:
        return _PROBE.format(paths=" ".join(shlex.quote(path(d)) for d in names))

    def read(self, names: list[str], path: PathMap) -> str | None:
        paths = [path(d) for d in names]
        if not native.plain(paths):
            return None
        return native.stat_sections([("dirs", native.stat_lines(paths, numeric_ids=True))])

    def parse(self, sections: Sections, unmap: PathMap, facts: LiveFacts) -> dict[str, dict[str, Any]]:
        found = {}
        for line in sections.get("dirs", []):
            mode, owner, group, uid, gid, ftype, name = line.split("|", 6)
            found[unmap(name)] = {
                "mode": mode.rjust(4, "0"),
                **{"owner": owner, "group": group, "uid": uid, "gid": gid, "type": ftype},
            }
        return found

    def live(self, name: str, facts: LiveFacts) -> dict[str, Any] | None:
        info = facts.live[self.name].get(name)
        if info is None:
            return None
        if info["type"] != "directory":
            return {"type": info["type"]}
        return {k: info[k] for k in ("owner", "group", "mode")}

    def in_terms_of(
        self, desired: Mapping[str, Any], live: dict[str, Any], name: str, facts: LiveFacts
    ) -> dict[str, Any]:
        # An app's user may be a uid (`user: "1000"`): compare its directories' owner by number.
        info = facts.live[self.name][name]
        if "type" in live:
            return live
        ids = {"owner": info["uid"], "group": info["gid"]}
        return {**live, **{k: v for k, v in ids.items() if str(desired.get(k, "")).isdigit()}}

    def tasks(self, work: NodeWork) -> list[Step]:
        steps = [
            Step(
                DIRECTORIES,
                m.EnsureDirectory(res.name, res.desired["mode"], res.desired["owner"], res.desired["group"]),
            )
            for _, res in work.writes
        ]
        steps += [Step(DELETE + self.delete_rank, m.RemoveDirectory(c.id.name)) for c in work.deletes]
        return steps


KIND = DirectoryKind()
