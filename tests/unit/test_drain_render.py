"""A drain renders only the ingresses for each set of endpoints down (compile_ingresses), from the
project compiled once: the sites must be byte for byte what a whole compile with that set gives."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

from funops.compile.compiler import Facts, compile_ingresses, compile_project
from funops.load.loader import load_project
from funops.resources import NGINX_RELOAD

from ..conftest import copy_example


def sites(desired) -> dict[str, dict[str, bytes]]:
    return {
        node: {r.name: r.content or b"" for r in nd.resources if NGINX_RELOAD in r.handlers and r.routes}
        for node, nd in desired.nodes.items()
    }


def test_the_ingresses_alone_render_as_the_whole_compile(tmp_path: Path) -> None:
    project = load_project(copy_example(tmp_path / "repo"))
    base = compile_project(project)
    placements = {app: frozenset(nodes) for app, nodes in base.placements.items()}
    pairs = sorted((app, node) for app, nodes in base.placements.items() for node in nodes)
    downs = [frozenset(), *(frozenset(c) for k in (1, 2, len(pairs)) for c in combinations(pairs, k))]
    assert any(sites(base).values())  # the example has an ingress with routes
    for down in downs[:40]:
        facts = Facts(placements=placements, unhealthy=down)
        assert sites(compile_ingresses(project, facts, base)) == sites(compile_project(project, facts)), down


def test_a_drain_reuses_the_plans_compile_only_when_it_places_every_app(tmp_path: Path) -> None:
    """RepoSites' base (plan/drains.py): the plan's own desired state when the drain's facts place
    every app where it did (its ingress sites then are a whole compile's, and with nothing down the
    plan's own), never a plan scoped to some apps (a rollback's): that base lacks the others'
    placements, so the project is compiled."""
    from funops.compile.compiler import compile_with_facts
    from funops.plan.planner import _scoped

    project = load_project(copy_example(tmp_path / "repo"))
    planned = compile_project(project)
    facts = Facts(placements={app: frozenset(nodes) for app, nodes in planned.placements.items()})
    base = compile_with_facts(project, facts, planned)
    assert base is planned
    assert sites(compile_ingresses(project, facts, base)) == sites(compile_project(project, facts))
    assert sites(planned) == sites(compile_ingresses(project, facts, base))  # nothing down: the plan's
    one = sorted(planned.placements)[0]
    scoped = _scoped(compile_project(project), {one})
    assert compile_with_facts(project, facts, scoped) is not scoped
