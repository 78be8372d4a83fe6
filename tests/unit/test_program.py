"""Issue 29: the plan decides what apply runs, once. apply/ reads the plan's program and schedule and
never derives them again; the program is a pure function of the repo and the gathered nodes."""

from __future__ import annotations

import ast
from pathlib import Path

from funops.load.loader import load_project
from funops.plan.carry import program_doc, public_units
from funops.plan.planner import make_plan

APPLY = Path(__file__).resolve().parents[2] / "funops" / "apply"
DECIDERS = {
    "releasing_apps",
    "rollout_strategy",
    "removing_only",
    "touched_apps",
    "plan_node",
    "plan_releases",
}


def test_apply_does_not_derive_what_the_plan_decided() -> None:
    for module in sorted(APPLY.glob("*.py")):
        if module.name == "taskplan.py":  # the old import path of plan/taskplan.py, nothing else
            continue
        tree = ast.parse(module.read_text())
        called = {
            node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
        }
        assert not called & DECIDERS, f"{module.name} calls {sorted(called & DECIDERS)}"


def test_the_same_repo_and_nodes_make_the_same_program(example: Path) -> None:
    project = load_project(example)
    first, second = make_plan(project), make_plan(project)
    assert public_units(program_doc(first, None)) == public_units(program_doc(second, None))
    assert first.program.batches == first.doc.schedule.batches  # type: ignore[union-attr]
    node = first.program.nodes["node2"]
    assert node.converge and node.changes and node.checks  # a first apply: everything to do
    assert node.records and all(r.started == "" and r.rollout == "" for r in node.records)  # apply stamps
