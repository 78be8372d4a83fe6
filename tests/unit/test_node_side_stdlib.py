"""The code the agent runs on a node imports the standard library only (issue 13): nodes get no
third-party packages. Checked in a fresh interpreter that refuses every dependency funops has."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# Every runtime and dev dependency (and what they pull in) that a node must not need.
BLOCKED = ("pydantic", "jinja2", "markupsafe", "yaml", "paramiko", "cryptography", "deepdiff", "git",
           "typer", "click", "rich", "docker")  # fmt: skip
# Every module of funops/node/ (what runs on a node), the zipapp's entry point that starts them, and
# the layers beneath that it imports (the task values, the kinds' fragments and readers).
NODE_PACKAGE = Path(__file__).parents[2] / "funops" / "node"
NODE_SIDE = (
    *sorted(f"funops.node.{p.stem}".removesuffix(".__init__") for p in NODE_PACKAGE.glob("*.py")),
    *("funops.agent.__main__", "funops.tasks.model", "funops.kinds", "funops.gather.probe"),
)

CHECK = f"""
import importlib, importlib.abc, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError("the node side imports " + name)
sys.meta_path.insert(0, Refuse())
for module in {NODE_SIDE!r}:
    importlib.import_module(module)
from funops.node.probe import build_script
ids = ["file:/etc/x", "directory:/d", "unit:web.service", "job:r", "container:api", "artifact:/srv/a"]
assert "@@funops" in build_script(ids, "/var/lib/funops/state.json", str)
"""


def test_the_node_side_imports_the_standard_library_only() -> None:
    assert "funops.node.server" in NODE_SIDE and "funops.node.poll" in NODE_SIDE
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_node_interaction_is_a_typed_task() -> None:
    """Outside the transports and the shell renderer nothing sends a script: gather, diffs, the drift
    check, locks and apply all send task values (`call`, `run_tasks`), which an agent runs itself."""
    import re
    from pathlib import Path

    package = Path(__file__).parents[2] / "funops"
    sends = re.compile(r"(transport|conn\w*|connect\([^)]*\))\.run\(")
    offenders = [
        f"{path.relative_to(package)}:{n}"
        for path in package.rglob("*.py")
        if path.parent.name != "transports" and path.name != "shell.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if sends.search(line)
    ]
    assert offenders == []


def test_the_node_side_keeps_to_older_pythons_grammar() -> None:
    """A node runs its distribution's python3 (Debian 11: 3.9): what the agent imports parses with
    3.9's grammar (no `match`, no parenthesized context managers)."""
    import ast

    listing = (
        CHECK
        + "\nprint('\\n'.join(m.__file__ for n, m in sorted(sys.modules.items()) if n.startswith('funops')))"
    )
    done = subprocess.run([sys.executable, "-c", listing], capture_output=True, text=True, check=True)
    files = done.stdout.split()
    assert any(f.endswith("node/server.py") for f in files)
    for path in files:
        with open(path, encoding="utf-8") as f:
            ast.parse(f.read(), path, feature_version=(3, 9))


def test_the_node_side_calls_no_newer_library_api() -> None:
    """What parses on 3.9 may still fail there at run time: `zip(strict=)` is 3.10's, `datetime.UTC`
    3.11's. Neither may appear in what the agent imports."""
    import ast

    listing = (
        CHECK
        + "\nprint('\\n'.join(m.__file__ for n, m in sorted(sys.modules.items()) if n.startswith('funops')))"
    )
    done = subprocess.run([sys.executable, "-c", listing], capture_output=True, text=True, check=True)
    offenders = []
    for path in done.stdout.split():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "zip":
                strict = any(k.arg == "strict" for k in node.keywords)
                offenders += [f"{path}:{node.lineno}: zip(strict=)"] if strict else []
            if isinstance(node, ast.Attribute) and node.attr == "UTC":
                offenders.append(f"{path}:{node.lineno}: datetime.UTC")
    assert offenders == []


def _python39() -> str | None:
    """A Python 3.9 interpreter here (on PATH, or pyenv's), or None."""
    import glob
    import shutil

    for candidate in (
        shutil.which("python3.9"),
        *sorted(glob.glob("/root/.pyenv/versions/3.9*/bin/python3")),
    ):
        if candidate is None:
            continue
        done = subprocess.run([candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 9)"],
                              capture_output=True)  # fmt: skip
        if done.returncode == 0:
            return candidate
    return None


def test_the_node_side_runs_on_python_3_9() -> None:
    """Parsing is not running: on 3.9, singledispatch reads a form's class from its annotations with
    get_type_hints, which cannot evaluate `X | None` (node/native.py registers by class). The agent's
    modules import under 3.9 and run a batch, its results crossing the wire typed."""
    python = _python39()
    if python is None:
        import pytest

        pytest.skip("no Python 3.9 interpreter on this machine")
    run = """
import json
from funops.node import host, wire
from funops.tasks import model as m
batch = [m.RunCommand(("true",)), m.RunCommand(("sh", "-c", "echo x; exit 3"))]
doc = json.loads(json.dumps(host.run(batch, True, 30)))
assert [(s.exit_code, s.output) for s in wire.decode_steps(doc, 2)] == [(0, ""), (3, "x")], doc
"""
    here = f"import sys\nsys.path.insert(0, {str(Path(__file__).parents[2])!r})\n"  # -I: as the agent runs
    done = subprocess.run([python, "-I", "-c", here + CHECK + run], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
