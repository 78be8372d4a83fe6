"""Placement (disk-aware: settings.placement) and the canary split are pure functions of their inputs."""

from __future__ import annotations

from funops.apptypes.application import Application
from funops.model.canary import assign_versions
from funops.model.inventory import Node
from funops.model.manifests import CanaryVersion
from funops.model.placement import NodeCapacity, PlacementSettings, place
from funops.model.versions import image_repository, image_tag


def app(replicas: int | None = None, placement: str = "disk-aware") -> Application:
    spec = {
        "type": "container",
        "image": "r/x:1",
        "selector": {"matchLabels": {"role": "app"}},
        "placement": placement,
    }
    if replicas:
        spec["replicas"] = replicas
    return Application.model_validate(
        {"apiVersion": "funops/v1", "kind": "Application", "metadata": {"name": "x"}, "spec": spec}
    )


NODES = {
    f"n{i}": Node(name=f"n{i}", address=f"127.0.1.{i}", labels={"role": "app"}, cordoned=(i == 4))
    for i in range(1, 6)
}
SETTINGS = PlacementSettings()


def test_without_replicas_every_matching_active_node() -> None:
    assert place(app(), NODES, SETTINGS) == ["n1", "n2", "n3", "n5"]


def test_cordoned_node_keeps_what_it_runs() -> None:
    assert "n4" in place(app(), NODES, SETTINGS, recorded=frozenset({"n4"}))


def test_disk_aware_skips_full_nodes_and_prefers_most_free() -> None:
    cap = {"n1": NodeCapacity(10), "n2": NodeCapacity(20), "n3": NodeCapacity(60), "n5": NodeCapacity(40)}
    assert place(app(2), NODES, SETTINGS, cap) == ["n3", "n5"]
    # Under the avoid threshold (25%) only when nothing better is left; under 15% never.
    assert place(app(3), NODES, SETTINGS, cap) == ["n2", "n3", "n5"]
    assert len(place(app(4), NODES, SETTINGS, cap)) == 3


def test_placements_are_sticky() -> None:
    cap = {"n1": NodeCapacity(90), "n2": NodeCapacity(20), "n3": NodeCapacity(60), "n5": NodeCapacity(40)}
    assert place(app(2), NODES, SETTINGS, cap, recorded=frozenset({"n2", "n5"})) == ["n2", "n5"]


def test_spread_prefers_fewest_containers() -> None:
    cap = {
        "n1": NodeCapacity(50, 9),
        "n2": NodeCapacity(50, 0),
        "n3": NodeCapacity(50, 5),
        "n5": NodeCapacity(50, 1),
    }
    assert place(app(2, "spread"), NODES, SETTINGS, cap) == ["n2", "n5"]


def test_canary_split_follows_percents_with_at_least_one_node() -> None:
    split = [CanaryVersion(version="v1", percent=90), CanaryVersion(version="v2", percent=10)]
    assert assign_versions(["b", "a"], split) == {"a": "v1", "b": "v2"}
    ten = assign_versions([f"n{i:02d}" for i in range(10)], split)
    assert sorted(ten.values()).count("v2") == 1
    assert assign_versions(["a"], split) == {"a": "v1"}


def test_image_tag_is_not_confused_with_a_registry_port() -> None:
    assert image_tag("127.0.0.1:5000/funops/testapp") is None
    assert image_tag("127.0.0.1:5000/funops/testapp:v1") == "v1"
    assert image_repository("127.0.0.1:5000/funops/testapp:v1") == "127.0.0.1:5000/funops/testapp"
