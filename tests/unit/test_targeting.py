"""`--node` names, globs and label selectors; `--app` scoping plan, apply and drift."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from funops.errors import FunopsError
from funops.load.targets import select_apps, select_nodes

from .test_plan import funops


@dataclass
class N:
    labels: dict[str, str] = field(default_factory=dict)


NODES = {
    "web1": N({"role": "app", "zone": "a"}),
    "web2": N({"role": "app", "zone": "b"}),
    "edge1": N({"role": "edge", "zone": "a"}),
}


@pytest.mark.parametrize(
    ("wanted", "chosen"),
    [
        (None, ["edge1", "web1", "web2"]),
        ([], ["edge1", "web1", "web2"]),
        (["web1"], ["web1"]),
        (["web*"], ["web1", "web2"]),
        (["*1"], ["edge1", "web1"]),
        (["web[2]"], ["web2"]),
        (["role=app"], ["web1", "web2"]),
        (["role=app,zone=a"], ["web1"]),
        (["zone=a"], ["edge1", "web1"]),
        (["edge1", "zone=b"], ["edge1", "web2"]),  # values are OR-ed
        (["web1", "web*"], ["web1", "web2"]),
    ],
)
def test_node_values_select_by_name_glob_and_labels(wanted: list[str] | None, chosen: list[str]) -> None:
    assert select_nodes(NODES, wanted) == chosen


@pytest.mark.parametrize(
    ("wanted", "says"),
    [
        (["web3"], "unknown node(s): web3 (no node name, glob or label selector matches it); did you mean"),
        (["db*"], "unknown node(s): db*"),
        (["role=db"], "unknown node(s): role=db"),
        (["web1", "nope"], "unknown node(s): nope"),
    ],
)
def test_a_value_matching_nothing_lists_the_known_nodes(wanted: list[str], says: str) -> None:
    with pytest.raises(FunopsError) as err:
        select_nodes(NODES, wanted)
    assert says in str(err.value) and "Known: edge1, web1, web2." in str(err.value)


def test_a_typo_gets_the_closest_name() -> None:
    with pytest.raises(FunopsError, match="did you mean 'edge1'"):
        select_nodes(NODES, ["egde1"])
    with pytest.raises(FunopsError, match="did you mean 'web'"):
        select_apps(["web", "api"], ["wbe"])


def test_a_malformed_selector_says_the_form() -> None:
    with pytest.raises(FunopsError, match="KEY=VALUE"):
        select_nodes(NODES, ["role=app,zone"])


def test_apps_are_exact_names() -> None:
    assert select_apps(["web", "api"], ["api"]) == {"api"}
    with pytest.raises(FunopsError, match="unknown app"):
        select_apps(["web", "api"], ["we*"])


def _changes(stdout: str) -> dict[str, list[tuple[str, str]]]:
    return {n["name"]: [(c["id"], c["owner"]) for c in n["changes"]] for n in json.loads(stdout)["nodes"]}


def test_plan_by_label_selector_and_glob(example: Path) -> None:
    done = funops("plan", "-C", str(example), "--node", "role=app", "-o", "json")
    assert done.returncode == 2, done.stderr
    assert json.loads(done.stdout)["targets"] == ["node2", "node3"]
    done = funops("plan", "-C", str(example), "--node", "node[13]", "-o", "json")
    assert json.loads(done.stdout)["targets"] == ["node1", "node3"]


def test_plan_of_one_app_has_its_resources_and_the_ingress_routing_to_it(example: Path) -> None:
    done = funops("plan", "-C", str(example), "--app", "web", "-o", "json")
    assert done.returncode == 2, done.stderr
    assert "warning: --app" in done.stderr and "exceptions" in done.stderr
    changes = _changes(done.stdout)
    owners = {owner for node in changes.values() for _, owner in node}
    assert owners == {"app/web", "ingress/site"}
    # the edge node's site routes to web: it comes along; api's unit does not
    assert ("file:/etc/nginx/conf.d/funops-site.conf", "ingress/site") in changes["node1"]
    assert not any("api" in rid for node in changes.values() for rid, _ in node)
    whole = _changes(funops("plan", "-C", str(example), "-o", "json").stdout)
    assert sum(map(len, whole.values())) > sum(map(len, changes.values()))


def test_an_unknown_app_is_an_error_with_a_suggestion(example: Path) -> None:
    for command in (["plan"], ["apply", "--auto-approve"], ["drift"]):
        done = funops(*command, "-C", str(example), "--app", "wbe")
        assert done.returncode == 1, (command, done.stderr)
        assert "unknown app(s): wbe; did you mean 'web'?" in done.stderr
    assert not (example / ".funops").exists()


def test_apply_of_one_app_converges_only_it(example: Path) -> None:
    done = funops("apply", "-C", str(example), "--app", "web", "--auto-approve", "--allow-dirty")
    assert done.returncode == 0, done.stdout + done.stderr
    after = _changes(funops("plan", "-C", str(example), "-o", "json").stdout)
    left = {owner for node in after.values() for _, owner in node}
    assert "app/web" not in left and "app/api" in left
    drift = funops("drift", "-C", str(example), "--app", "web", "-o", "json")
    assert drift.returncode == 0, drift.stdout + drift.stderr
