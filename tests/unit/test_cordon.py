"""`funops cordon` / `uncordon` edit the inventory in the repo with comments and order kept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from funops.errors import FunopsError
from funops.load.loader import load_project
from funops.nodes.cordon import set_cordoned


def test_cordon_then_uncordon_round_trips_the_file_byte_for_byte(example: Path) -> None:
    file = example / "inventory" / "demo.yaml"
    original = file.read_text()
    edit = set_cordoned(example, "node2", True)
    assert (edit.file, edit.changed) == (file, True)
    text = file.read_text()
    assert text.startswith(original.splitlines()[0])  # the leading comment stays
    assert "    address: 127.0.1.2\n    cordoned: true\n" in text  # after the address, same indent
    assert text.replace("    cordoned: true\n", "") == original
    assert load_project(example, manifests=False).nodes["node2"].cordoned
    assert not set_cordoned(example, "node2", True).changed  # already cordoned: no write
    assert set_cordoned(example, "node2", False).changed
    assert file.read_text() == original


def test_an_unknown_node_is_an_error_and_nothing_is_written(example: Path) -> None:
    before = (example / "inventory" / "demo.yaml").read_text()
    with pytest.raises(FunopsError, match="node nodeX is not declared in inventory"):
        set_cordoned(example, "nodeX", True)
    assert (example / "inventory" / "demo.yaml").read_text() == before


def test_the_cli_says_to_commit(example: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "funops", "cordon", "node3", "-C", str(example)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    assert "node3 cordoned in inventory/demo.yaml. Commit this" in done.stdout
