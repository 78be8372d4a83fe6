"""App types are a registry like resource kinds (issue 29): each lives in one module under
funops/apptypes/, and nothing outside it decides by an app type's name — adding a type touches no
stage module.

The rule, precisely (an app type's name is one of `apptypes.NAMES`):
1. Anywhere in funops outside funops/apptypes/, no expression ending in `.type` (`app.spec.type`,
   `self.type`) is compared with (`==`, `!=`, `in`, `not in`) a string naming an app type, or a
   tuple/list/set of such strings; no dict keyed by app type names is indexed by one; and no
   `Literal[...]` lists app type names (the registry's `TypeName`/`RunningTypeName` do).
2. In the packages that decided by type before the registry (model, load, compile, settings.py
   (out of model since) and nodes/logs.py), no string constant but a docstring equals an app type
   name at all. There "container" and "job" as *resource kind* names are caught too, on purpose: the
   resources of those kinds are made by the app type modules. Elsewhere such a string may be a
   resource kind (funops/kinds, its own registry test) or a node fact ("systemd": the node runs
   systemd) — not an app type, unless rule 1 says so.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from funops import apptypes
from funops.apptypes.application import ApplicationSpec
from funops.apptypes.base import AppType
from funops.model.common import Strict

PACKAGE = Path(apptypes.__file__).resolve().parents[1]
NO_NAMES = ("model", "load", "compile", "settings.py", "nodes/logs.py")  # rule 2


def _is_type_attr(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "type"


def _type_names(node: ast.AST) -> list[str]:
    """The app type names a constant, or a tuple/list/set of constants, holds."""
    items = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
    return [i.value for i in items if isinstance(i, ast.Constant) and i.value in apptypes.NAMES]


def _decisions(source: str) -> list[str]:
    """Rule 1: where a module decides by an app type's name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_is_type_attr(o) for o in operands) and any(_type_names(o) for o in operands):
                found.append(f"line {node.lineno}: compares .type with an app type")
        elif isinstance(node, ast.Subscript):
            keyed = isinstance(node.value, ast.Dict) and _is_type_attr(node.slice)
            if keyed and any(k is not None and _type_names(k) for k in node.value.keys):
                found.append(f"line {node.lineno}: a dict of app types indexed by .type")
            literal = getattr(node.value, "id", getattr(node.value, "attr", None)) == "Literal"
            if literal and _type_names(node.slice):
                found.append(f"line {node.lineno}: a Literal of app types")
    return found


def _named(source: str) -> list[str]:
    """Rule 2: string constants (not docstrings) equal to an app type name."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        f"line {node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in apptypes.NAMES and id(node) not in docstrings
    ]


def _modules(where: str) -> list[Path]:
    path = PACKAGE / where
    return [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))


def test_nothing_outside_apptypes_decides_by_an_app_type_name() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): hits
        for path in sorted(PACKAGE.rglob("*.py"))
        if PACKAGE / "apptypes" not in path.parents and (hits := _decisions(path.read_text()))
    }
    assert offenders == {}, "loop over funops.apptypes.REGISTRY (an AppType's attributes) instead"


@pytest.mark.parametrize("where", NO_NAMES)
def test_model_load_compile_and_logs_name_no_app_type(where: str) -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): hits for path in _modules(where) if (hits := _named(path.read_text()))
    }
    assert offenders == {}, "what a type means belongs in its module under funops/apptypes/"


def test_the_checks_catch_a_module_that_branches_on_a_type() -> None:
    compares = ["line 1: compares .type with an app type"]
    assert _decisions('if app.spec.type == "proxy":\n    pass\n') == compares
    assert _decisions('x = spec.type in ("systemd", "job")\n') == compares
    assert _decisions('x = {"job": 1}[self.type]\n') == ["line 1: a dict of app types indexed by .type"]
    assert _decisions('T = Literal["systemd", "container"]\n') == ["line 1: a Literal of app types"]
    assert _decisions('if check.type == "http":\n    pass\n') == []  # a health check's type
    assert _named('kind = "container"\n') == ["line 1: 'container'"]
    assert _named('"""A docstring may say systemd or job."""\n') == []
    assert _named('template = "systemd/app.service.j2"\n') == []


def test_every_type_lives_in_its_own_module_and_provides_its_parts() -> None:
    modules = {type(t).__module__ for t in apptypes.REGISTRY.values()}
    assert len(modules) == len(apptypes.REGISTRY)
    spec_fields = set(ApplicationSpec.model_fields)
    for name, app_type in apptypes.REGISTRY.items():
        assert app_type.name == name and app_type.__module__ == f"funops.apptypes.{name}"
        assert issubclass(app_type.fields, Strict)
        assert set(app_type.fields.model_fields) <= spec_fields  # mixed into the one spec
        assert set(app_type.refused) <= spec_fields, f"{name} refuses a field the spec does not have"
        if app_type.runs:  # what funops runs, it restarts, compiles to resources, health-checks, logs
            for part in ("restart", "resources", "placement", "logs"):
                assert getattr(type(app_type), part) is not getattr(AppType, part), f"{name}: {part}"


def test_the_schema_lists_the_registry() -> None:
    schema = ApplicationSpec.model_json_schema(by_alias=True)
    assert tuple(schema["properties"]["type"]["enum"]) == apptypes.NAMES
    assert tuple(n for n in apptypes.NAMES if apptypes.REGISTRY[n].runs) == apptypes.RUNNING
