"""The ingress files of a rollout's drains as a saved plan holds them (plan/drains.py makes them,
apply/drain.py writes them): typed `DrainWrite` tasks for each set of drained endpoints."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..node import wire
from ..tasks import model as m

Pair = tuple[str, str]  # (app, node)


@dataclass(frozen=True)
class Site:
    """An nginx site as a drain step writes it."""

    id: str  # its resource id (for what the plan saw of it)
    sha256: str
    write: m.DrainWrite

    @property
    def name(self) -> str:
        return self.write.path


class SiteSource(Protocol):
    """What a drainer needs that only the repo — or the saved plan — knows."""

    def ingress_nodes(self) -> list[str]: ...
    def sites(self, down: frozenset[Pair]) -> dict[str, list[Site]] | None: ...
    def apps(self) -> set[str]: ...
    def wait(self, app: str) -> tuple[int | None, float]: ...
    def planned(self, node: str) -> dict[str, str]: ...
    def wrote(self, node: str) -> set[str]: ...


@dataclass
class DrainTable:
    """Every set of drained endpoints the rollout can reach, with each ingress node's sites for it."""

    ingress: list[str]
    variants: dict[frozenset[Pair], dict[str, list[Site]]]
    app_waits: dict[str, tuple[int | None, float]]
    planned_sites: dict[str, dict[str, str]]
    written: dict[str, list[str]]
    steps: list[dict[str, Any]] = field(default_factory=list)  # the healthy path, for `funops show`

    # SiteSource
    def ingress_nodes(self) -> list[str]:
        return list(self.ingress)

    def sites(self, down: frozenset[Pair]) -> dict[str, list[Site]] | None:
        if down in self.variants:
            return self.variants[down]
        covering = [held for held in self.variants if held >= down]
        if not covering:
            return None
        return self.variants[min(covering, key=lambda held: (len(held), sorted(held)))]

    def apps(self) -> set[str]:
        return set(self.app_waits)

    def wait(self, app: str) -> tuple[int | None, float]:
        return self.app_waits[app]

    def planned(self, node: str) -> dict[str, str]:
        return dict(self.planned_sites.get(node, {}))

    def wrote(self, node: str) -> set[str]:
        return set(self.written.get(node, []))

    # the file
    def doc(self) -> dict[str, Any]:
        files: list[dict[str, Any]] = []
        index: dict[tuple[str, str], int] = {}

        def ref(site: Site) -> int:
            key = (site.id, site.sha256)
            if key not in index:
                index[key] = len(files)
                files.append({"id": site.id, "sha256": site.sha256, "task": wire.encode(site.write)})
            return index[key]

        variants = [
            {"down": [list(p) for p in sorted(down)],
             "sites": {node: [ref(s) for s in sites] for node, sites in sorted(by_node.items())}}
            for down, by_node in sorted(self.variants.items(), key=lambda kv: (len(kv[0]), sorted(kv[0])))
        ]  # fmt: skip
        return {
            "ingress": list(self.ingress),
            "apps": {a: {"port": p, "drainTimeout": t} for a, (p, t) in sorted(self.app_waits.items())},
            "files": files,
            "variants": variants,
            "planned": self.planned_sites,
            "wrote": self.written,
            "steps": self.steps,
        }

    @classmethod
    def of_doc(cls, d: Mapping[str, Any]) -> DrainTable:
        files = []
        for f in d["files"]:
            write = wire.decode(f["task"])
            if not isinstance(write, m.DrainWrite):
                raise ValueError(f"drains.files: {write.name} is not a drain write")
            if hashlib.sha256(write.content).hexdigest() != f["sha256"]:
                raise ValueError(f"drains.files: {write.path}: content does not match its sha256")
            files.append(Site(str(f["id"]), str(f["sha256"]), write))
        variants = {
            frozenset((str(a), str(n)) for a, n in v["down"]): {
                node: [files[i] for i in refs] for node, refs in v["sites"].items()
            }
            for v in d["variants"]
        }
        return cls(
            ingress=[str(n) for n in d["ingress"]],
            variants=variants,
            app_waits={a: (w["port"], float(w["drainTimeout"])) for a, w in d["apps"].items()},
            planned_sites={n: dict(s) for n, s in d["planned"].items()},
            written={n: list(s) for n, s in d["wrote"].items()},
            steps=list(d["steps"]),
        )
