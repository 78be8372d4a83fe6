"""Resource kinds are the unit of extension (issue 12): each lives in one module under funops/kinds/,
and no stage module names one — adding a kind touches no stage."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from funops import kinds
from funops.kinds.base import ResourceKind

PACKAGE = Path(kinds.__file__).resolve().parents[1]
STAGES = ("gather", "diff", "plan", "apply", "drift", "release", "cli", "tasks", "transports")
PER_KIND = ("probe", "parse", "live", "tasks")  # what every kind must provide itself


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants that are not docstrings, with their line."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def _named_kinds(source: str) -> list[str]:
    found = []
    for line, text in _strings(ast.parse(source)):
        for name in kinds.NAMES:
            if text == name or text.startswith(f"{name}:"):
                found.append(f"line {line}: {text!r}")
    return found


@pytest.mark.parametrize("stage", STAGES)
def test_no_stage_module_names_a_kind(stage: str) -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): hits
        for path in sorted((PACKAGE / stage).rglob("*.py"))
        if (hits := _named_kinds(path.read_text()))
    }
    assert offenders == {}, "stages loop over funops.kinds.REGISTRY instead of naming a kind"


def test_the_check_catches_a_stage_that_branches_on_a_kind() -> None:
    assert _named_kinds('if change.kind == "unit":\n    pass\n') == ["line 1: 'unit'"]
    assert _named_kinds('rid = f"container:{name}"\n') == ["line 1: 'container:'"]
    assert _named_kinds('"""A docstring may say file or unit."""\n') == []


def test_every_kind_lives_in_its_own_module_and_provides_its_parts() -> None:
    modules = {type(kind).__module__ for kind in kinds.REGISTRY.values()}
    assert len(modules) == len(kinds.REGISTRY)
    assert len({k.facts_alias for k in kinds.REGISTRY.values()}) == len(kinds.REGISTRY)
    for name, kind in kinds.REGISTRY.items():
        assert kind.name == name and kind.article
        missing = [part for part in PER_KIND if getattr(type(kind), part) is getattr(ResourceKind, part)]
        assert missing == [], f"{name} does not provide {missing}"


def test_an_unknown_kind_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown resource kind 'socket'"):
        kinds.kind_of("socket:x")
