"""Files: config files, env files, unit files, nginx sites — content by sha256, mode, owner, group.

Writes are atomic and keep the previous version (restore on a failed `nginx -t`, rollback); a file a
release needs again is kept in the node's artifact store by sha256 (see `housekeeping`).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..ids import ResourceId
from ..resources import Resource
from ..tasks import model as m
from . import native, nginx_site
from .base import DELETE, WRITE, DriftClass, GatedGroup, NodeWork, PathMap, ResourceKind, Sections, Step

if TYPE_CHECKING:
    from ..state.node_state import NodeState
    from .facts import LiveFacts

# `stat` and `sha256sum` once for all files; a missing file just prints nothing.
_PROBE = """\
echo '@@funops stat'; stat -c '%a|%U|%G|%F|%n' -- {paths} 2>/dev/null
echo '@@funops sha256'; sha256sum -- {paths} 2>/dev/null
"""
ATTRIBUTES = ("sha256", "mode", "owner", "group")
ARTIFACTS_DIR = "artifacts"  # in the state dir: file contents kept for the kept releases, by sha256


def artifacts_dir(state_dir: str) -> str:
    return f"{state_dir.rstrip('/')}/{ARTIFACTS_DIR}"


def artifact_path(state_dir: str, sha256: str) -> str:
    return f"{artifacts_dir(state_dir)}/{sha256}"


def backup_path(state_dir: str, node_path: str) -> str:
    """Where the previous version of a managed file is kept (restore on a failed nginx -t, rollback)."""
    return f"{state_dir.rstrip('/')}/backup{node_path}"


class FileKind(ResourceKind):
    name = "file"
    article = "a file"
    facts_alias = "files"
    delete_rank = 2
    summary_fields = ("sha256", "mode")
    node_handlers = nginx_site.NODE_HANDLERS
    file_content = True

    def probe(self, names: list[str], path: PathMap) -> str:
        return _PROBE.format(paths=" ".join(shlex.quote(path(f)) for f in names))

    def read(self, names: list[str], path: PathMap) -> str | None:
        paths = [path(f) for f in names]
        if not native.plain(paths):
            return None
        stats = native.stat_lines(paths, numeric_ids=False)
        return native.stat_sections([("stat", stats), ("sha256", [native.sha256_line(p) for p in paths])])

    def parse(self, sections: Sections, unmap: PathMap, facts: LiveFacts) -> dict[str, dict[str, Any]]:
        files: dict[str, dict[str, Any]] = {}
        for line in sections.get("stat", []):
            mode, owner, group, ftype, name = line.split("|", 4)
            files[unmap(name)] = {
                "mode": mode.rjust(4, "0"),
                "owner": owner,
                "group": group,
                "type": "file" if ftype.startswith("regular") else ftype,
            }
        for line in sections.get("sha256", []):
            digest, _, name = line.partition("  ")
            entry = files.get(unmap(name))
            if entry is not None:
                entry["sha256"] = digest
        return files

    def live(self, name: str, facts: LiveFacts) -> dict[str, Any] | None:
        info = facts.live[self.name].get(name)
        if info is None:
            return None
        if info.get("type") != "file":
            return {"type": info.get("type")}
        return {k: info.get(k) for k in ATTRIBUTES}

    # ---- tasks -------------------------------------------------------------------------------------

    def write(self, res: Resource, state_dir: str) -> m.WriteFile:
        """A resource restored from a release record has no content here: the artifact store has it."""
        sha = res.desired["sha256"]
        return m.WriteFile(
            path=res.name, sha256=sha, mode=res.desired["mode"], owner=res.desired["owner"],
            group=res.desired["group"], backup=backup_path(state_dir, res.name), content=res.content,
            store=None if res.content is not None else artifact_path(state_dir, sha),
            private_dirs=res.secret, label=res.id,
        )  # fmt: skip

    def restore(self, node_path: str, state_dir: str) -> m.RestoreFile:
        return m.RestoreFile(node_path, backup_path(state_dir, node_path))

    def tasks(self, work: NodeWork) -> list[Step]:
        steps = [
            Step(DELETE + self.delete_rank, m.RemoveFile(c.id.name, backup_path(work.state_dir, c.id.name)))
            for c in work.deletes
        ]
        steps += [
            Step(WRITE, self.write(res, work.state_dir))
            for _, res in work.writes
            if not nginx_site.is_site(res)
        ]
        return steps

    def gated(self, work: NodeWork) -> GatedGroup | None:
        sites = [res for _, res in work.writes if nginx_site.is_site(res)]
        return nginx_site.gated(
            work,
            sites,
            lambda r: self.write(r, work.state_dir),
            lambda r: self.restore(r.name, work.state_dir),
        )

    def housekeeping(self, work: NodeWork) -> list[m.Task]:
        """The artifact store holds the content of every file the kept releases name (copied from the
        live file while it has that hash); what no kept release names goes."""
        files = tuple(
            (sha, ResourceId(spec.id).name)
            for rec in work.records
            for spec in rec.resources
            if spec.kind == self.name and (sha := self.stored(spec.desired))
        )
        return [m.KeepArtifacts(artifacts_dir(work.state_dir), files, _kept(work.state))]

    def stored(self, desired: Mapping[str, Any]) -> str | None:
        return desired.get("sha256")

    # ---- drift -------------------------------------------------------------------------------------

    def drift_summary(self, drift_class: DriftClass, summary: str) -> str:
        return "edited by hand: " + summary if drift_class == "modified" else summary


KIND = FileKind()


def _kept(state: NodeState) -> frozenset[str]:
    """The content hashes the node's artifact store keeps: those of every kept release's resources
    (each kind's `stored`)."""
    from . import kind_of  # the registry, which loads this module

    releases = state.releases.values()
    return frozenset(
        sha
        for recs in releases
        for rec in recs
        for r in rec.resources
        if (sha := kind_of(r.id).stored(r.desired))
    )
