"""Which version(s) of an app should be live, and which node runs which (canary split)."""

from __future__ import annotations

import math
from typing import Protocol

from .manifests import CanaryVersion, Release
from .versions import image_tag


class _VersionedSpec(Protocol):
    @property
    def version(self) -> str | None: ...
    @property
    def image(self) -> str | None: ...


class Versioned(Protocol):
    """What the split reads of an Application (its kind sits above the app types, this module below)."""

    @property
    def spec(self) -> _VersionedSpec: ...


def wanted_versions(app: Versioned, release: Release | None) -> list[CanaryVersion]:
    """The split of versions to run: the Release's, else the app's version, else its image tag."""
    if release is not None:
        return release.spec.split()
    version = app.spec.version or (image_tag(app.spec.image) if app.spec.image else None)
    return [CanaryVersion(version=version, percent=100)] if version else []


def assign_versions(nodes: list[str], split: list[CanaryVersion]) -> dict[str, str]:
    """Give each node a version so node counts follow the percents; every version with a non-zero
    percent gets at least one node when there are enough nodes. Stable: sorted nodes, split order."""
    ordered = sorted(nodes)
    live = [v for v in split if v.percent > 0]
    if not ordered or not live:
        return {}
    counts = [max(1, math.floor(len(ordered) * v.percent / 100)) for v in live]
    # The first version (the stable one) absorbs what rounding left over, or gives back the excess.
    counts[0] = max(1, len(ordered) - sum(counts[1:]))
    result: dict[str, str] = {}
    i = 0
    for version, count in zip(live, counts, strict=True):
        for node in ordered[i : i + count]:
            result[node] = version.version
        i += count
    for node in ordered[i:]:  # fewer nodes than versions: the rest run the stable version
        result[node] = live[0].version
    return result
