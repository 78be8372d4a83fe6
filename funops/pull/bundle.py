"""One node's bundle: its desired state as the compiler made it (resources with their contents, app
placements with their health checks), the strategies of its apps and the revision — everything the
node needs to converge itself, and nothing of another node's (its secrets are only its own).

Plain JSON (file contents base64): the node reads it back into the engine's own types (from_json)."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import TYPE_CHECKING, Any

from ..resources import AppPlacement, NodeDesired, Resource

if TYPE_CHECKING:
    from ..load.project import Project
    from ..model.strategy import UpdateStrategy

FORMAT = 1


@dataclasses.dataclass
class Bundle:
    desired: NodeDesired
    project: str
    revision: dict[str, Any]  # {"commit", "dirty", "ref"}: what was published
    state_dir: str
    keep_releases: int
    strategies: dict[str, UpdateStrategy]  # app → its strategy (health: min healthy seconds)
    cleanup_images: set[str]


def of_node(project: Project, desired: NodeDesired) -> Bundle:
    """The bundle of one node of a compiled project (strategies as push's apply takes them)."""
    apps = set(desired.apps)
    rev = project.revision
    return Bundle(
        desired=desired,
        project=project.settings.project,
        revision={"commit": rev.commit, "dirty": rev.dirty, "ref": rev.ref},
        state_dir=project.settings.state_dir,
        keep_releases=project.settings.keep_releases,
        strategies={app: project.strategy_of(app) for app in sorted(apps)},
        cleanup_images={a for a in apps if a in project.apps and project.apps[a].spec.cleanup_images},
    )


def to_json(bundle: Bundle) -> bytes:
    d = bundle.desired
    doc = {
        "format": FORMAT,
        "project": bundle.project,
        "revision": bundle.revision,
        "stateDir": bundle.state_dir,
        "keepReleases": bundle.keep_releases,
        "node": d.node.model_dump(mode="json", by_alias=True, exclude_defaults=True),
        "resources": [_resource(r) for r in d.resources],
        "apps": {name: _placement(p) for name, p in sorted(d.apps.items())},
        "strategies": {a: s.model_dump(mode="json", by_alias=True) for a, s in bundle.strategies.items()},
        "cleanupImages": sorted(bundle.cleanup_images),
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def from_json(data: bytes) -> Bundle:
    """The bundle back in the engine's types; ValueError when it is not a bundle this funops reads."""
    from ..model.inventory import Node
    from ..model.strategy import UpdateStrategy

    try:
        doc = json.loads(data)
        if doc.get("format") != FORMAT:
            raise ValueError(f"bundle format {doc.get('format')!r}, this funops reads {FORMAT}")
        desired = NodeDesired(
            node=Node.model_validate(doc["node"]),
            resources=[_resource_of(r) for r in doc["resources"]],
            apps={name: _placement_of(p) for name, p in doc["apps"].items()},
        )
        strategies = {a: UpdateStrategy.model_validate(s) for a, s in doc["strategies"].items()}
        return Bundle(
            desired=desired,
            project=doc["project"],
            revision=doc["revision"],
            state_dir=doc["stateDir"],
            keep_releases=doc["keepReleases"],
            strategies=strategies,
            cleanup_images=set(doc["cleanupImages"]),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a funops bundle: {type(exc).__name__}: {exc}") from exc


def _resource(r: Resource) -> dict[str, Any]:
    return {
        "id": r.id,
        "kind": r.kind,
        "owner": r.owner,
        "desired": dict(r.desired),
        "order": r.order,
        "handlers": list(r.handlers),
        "secret": r.secret,
        "content": base64.b64encode(r.content).decode() if r.content is not None else None,
        "run_spec": dict(r.run_spec) if r.run_spec is not None else None,
        "routes": list(r.routes),
        "secret_keys": list(r.secret_keys) if r.secret_keys is not None else None,
        "diff": r.diff,
    }  # the template it came from stays with the repo: the node never shows a plan


def _placement(p: AppPlacement) -> dict[str, Any]:
    doc = dataclasses.asdict(p)
    doc["health"] = p.health.model_dump(mode="json", by_alias=True) if p.health else None
    return doc


def _resource_of(doc: dict[str, Any]) -> Resource:
    content, keys = doc["content"], doc["secret_keys"]
    return Resource(**{
        **doc,
        "content": base64.b64decode(content) if content is not None else None,
        "handlers": tuple(doc["handlers"]),
        "routes": tuple(doc["routes"]),
        "secret_keys": tuple(keys) if keys is not None else None,
    })  # fmt: skip


def _placement_of(doc: dict[str, Any]) -> AppPlacement:
    from ..model.strategy import HealthCheck

    health = HealthCheck.model_validate(doc["health"]) if doc["health"] else None
    return AppPlacement(**{**doc, "health": health})
