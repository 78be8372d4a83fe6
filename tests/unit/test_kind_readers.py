"""The kinds' in-process readers (the agent's probe) print exactly what their sh fragments print,
here, for every file type and owner the fragments can meet: one parser reads both."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from funops import kinds


def _fragment(kind_name: str, names: list[str]) -> str:
    script = "export LC_ALL=C\n" + kinds.REGISTRY[kind_name].probe(names, str)
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False).stdout


@pytest.fixture
def tree(tmp_path: Path) -> list[str]:
    """A regular file, an empty one, a setuid one, a symlink to a file and a dangling one, a
    directory, a fifo, a socket, a file owned by a uid and gid with no name, a missing path."""
    (tmp_path / "plain.conf").write_text("x = 1\n")
    (tmp_path / "empty").write_text("")
    (tmp_path / "setuid").write_text("#!/bin/sh\n")
    (tmp_path / "setuid").chmod(0o4755)
    (tmp_path / "link").symlink_to(tmp_path / "plain.conf")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "dir").mkdir(mode=0o750)
    os.mkfifo(tmp_path / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    (tmp_path / "orphan").write_text("o")
    if os.geteuid() == 0:
        os.chown(tmp_path / "orphan", 54321, 54321)
    (tmp_path / "big").write_bytes(os.urandom(200_000))
    names = ["plain.conf", "empty", "setuid", "link", "dangling", "dir", "sock", "orphan", "big", "gone"]
    return [*sorted(str(tmp_path / n) for n in names), str(tmp_path / "fifo")]


@pytest.mark.parametrize("kind_name", ["file", "directory"])
def test_stat_and_sha256_readers_print_what_the_fragment_prints(kind_name: str, tree: list[str]) -> None:
    # The fifo only in stat's part: sha256sum would block reading it (the reader does not try).
    names = [n for n in tree if not n.endswith("fifo")] if kind_name == "file" else tree
    assert kinds.REGISTRY[kind_name].read(names, str) == _fragment(kind_name, names)


def test_the_file_reader_does_not_block_on_a_fifo(tree: list[str]) -> None:
    text = kinds.REGISTRY["file"].read(tree, str) or ""
    sums = text.split("@@funops sha256")[1].splitlines()
    assert "|fifo|" in text and not any(line.endswith("/fifo") for line in sums)


@pytest.mark.parametrize("kind_name", ["unit", "job"])
def test_the_systemctl_readers_print_what_the_fragment_prints(kind_name: str) -> None:
    """Here systemd may not run (then both say `nosystemd`); the lab's agent tests read real units."""
    names = ["funops-no-such-unit.service"] if kind_name == "unit" else ["funops-no-such-job"]
    assert kinds.REGISTRY[kind_name].read(names, str) == _fragment(kind_name, names)


def test_names_sha256sum_would_escape_and_root_prefixed_units_are_left_to_the_fragment() -> None:
    assert kinds.REGISTRY["file"].read(["/etc/a\\b"], str) is None
    assert kinds.REGISTRY["unit"].read(["web.service"], lambda p: f"/srv/root{p}") is None


def test_kinds_without_a_reader_go_to_the_fragment(tmp_path: Path) -> None:
    from funops.node.probe import read_kinds

    (tmp_path / "a").write_text("a")
    read, rest = read_kinds([f"file:{tmp_path}/a", "container:web"], str)
    assert read.startswith("@@funops stat\n") and [str(r) for r in rest] == ["container:web"]
