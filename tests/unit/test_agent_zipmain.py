"""The agent zip's entry (agent/zipmain.py). Under funops-agent.service (CACHE_DIRECTORY set, python
run with the unit's flags) the agent runs from a copy of its zip compiled by the node's python, made
at the first start; elsewhere from the zip itself. Real interpreters, real zips."""

from __future__ import annotations

import importlib.util
import marshal
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from funops.agent import install

FLAGS = ("-I", "-S", "-OO")  # as the unit runs it (install.PYTHON), with the bytecode under tmp


@pytest.fixture
def agent_zip(tmp_path: Path) -> Path:
    path = tmp_path / "funops-agent.pyz"
    path.write_bytes(install.bundle())
    return path


def serve(tmp_path: Path, agent_zip: Path, cache: bool = True) -> subprocess.CompletedProcess[str]:
    """`serve` with a config that is not there: it gets as far as importing the server, then stops."""
    env = dict(os.environ)
    env.pop("CACHE_DIRECTORY", None)
    if cache:
        (tmp_path / "cache").mkdir(exist_ok=True)
        env["CACHE_DIRECTORY"] = str(tmp_path / "cache")
    argv = [sys.executable, *FLAGS, "-v", "-X", f"pycache_prefix={tmp_path / 'bytecode'}", str(agent_zip)]
    missing = str(tmp_path / "missing.json")
    done = subprocess.run([*argv, "serve", "--config", missing], capture_output=True, text=True, env=env)
    assert done.returncode == 1 and f"No such file or directory: '{missing}'" in done.stderr
    return done


def loaded_from(done: subprocess.CompletedProcess[str], module: str) -> str:
    (line,) = [x for x in done.stderr.splitlines() if x.startswith(f"import '{module}' # <zipimporter")]
    return line.split('"')[1]


def copies(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache").iterdir())


def test_the_first_start_makes_a_compiled_copy_and_every_start_runs_from_it(
    tmp_path: Path, agent_zip: Path
) -> None:
    serve(tmp_path, agent_zip)
    (copy,) = copies(tmp_path)
    assert copy.name.endswith(f".{sys.implementation.cache_tag}.pyz")
    with zipfile.ZipFile(copy) as z, zipfile.ZipFile(agent_zip) as source:
        names = set(z.namelist())
        sources = [n for n in source.namelist() if n.endswith(".py") and n != "__main__.py"]
        assert all(z.read(n) == source.read(n) for n in source.namelist())  # the zip's own sources
        assert all(f"{n}c" in names for n in sources)
        header = z.read("funops/node/server.pyc")[:16]
    assert header[:4] == importlib.util.MAGIC_NUMBER and header[4] == 0b11  # checked against its source
    # the warm-up wrote the standard library's bytecode, as -OO needs it, under the cache
    assert list((tmp_path / "bytecode").rglob("client.*.opt-2.pyc"))

    again = serve(tmp_path, agent_zip)
    assert copies(tmp_path) == [copy]
    assert loaded_from(again, "funops.node.server").startswith(f"{copy}/")


def test_without_its_cache_directory_the_agent_runs_from_the_zip(tmp_path: Path, agent_zip: Path) -> None:
    done = serve(tmp_path, agent_zip, cache=False)
    assert loaded_from(done, "funops.node.server").startswith(f"{agent_zip}/")
    assert not (tmp_path / "cache").exists()


def test_a_new_zip_makes_a_new_copy_and_the_old_one_goes(tmp_path: Path, agent_zip: Path) -> None:
    serve(tmp_path, agent_zip)
    (old,) = copies(tmp_path)
    with zipfile.ZipFile(agent_zip, "a") as z:  # another version of the agent
        z.writestr("funops/agent/extra.py", "")
    serve(tmp_path, agent_zip)
    (new,) = copies(tmp_path)
    assert new != old


def test_bytecode_that_does_not_match_its_source_in_the_copy_is_not_run(
    tmp_path: Path, agent_zip: Path
) -> None:
    serve(tmp_path, agent_zip)
    (copy,) = copies(tmp_path)
    with zipfile.ZipFile(copy) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    pyc = entries["funops/node/server.pyc"]
    planted = compile("raise SystemExit(42)", "planted", "exec")
    entries["funops/node/server.pyc"] = pyc[:16] + marshal.dumps(planted)  # the real source's hash
    entries["funops/node/server.py"] += b"\n# changed\n"
    with zipfile.ZipFile(copy, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    serve(tmp_path, agent_zip)  # the source beside it no longer matches: compiled from the source


def test_the_start_afresh_keeps_the_units_interpreter_options(tmp_path: Path, agent_zip: Path) -> None:
    options = [*FLAGS, "-X", f"pycache_prefix={tmp_path / 'bytecode'}"]
    code = f"import sys; sys.path.insert(0, {str(agent_zip)!r}); from funops.agent import zipmain; "
    done = subprocess.run(
        [sys.executable, *options, "-c", code + "print(zipmain._flags())"], capture_output=True, text=True
    )
    assert done.stdout.strip() == str(options), done.stderr
