"""`funops cordon NODE` / `uncordon NODE`: edit the inventory in the repo, then say to commit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .output import console, reported

NodeArg = Annotated[str, typer.Argument(metavar="NODE", help="The node, by its inventory name.")]
Repo = Annotated[Path, typer.Option("--repo", "-C", help="The funops repo (default: current directory).")]


def cordon(node: NodeArg, repo: Repo = Path(".")) -> None:
    """Mark NODE cordoned in the inventory: no new placements; what runs there keeps running."""
    _set(repo, node, True)


def uncordon(node: NodeArg, repo: Repo = Path(".")) -> None:
    """Clear NODE's cordon in the inventory: placement may use it again."""
    _set(repo, node, False)


def _set(repo: Path, node: str, cordoned: bool) -> None:
    from ..nodes.cordon import set_cordoned

    with reported():
        edit = set_cordoned(repo.resolve(), node, cordoned)
    word = "cordoned" if cordoned else "uncordoned"
    where = edit.file.relative_to(repo.resolve()) if edit.file.is_relative_to(repo.resolve()) else edit.file
    if not edit.changed:
        console().print(f"{node} is already {word} in {where}; nothing changed.")
        return
    console().print(
        f"{node} {word} in {where}. Commit this (git commit {where}), then plan and apply: "
        "the repo is what funops deploys."
    )
