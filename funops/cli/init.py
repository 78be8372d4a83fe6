"""`funops init [DIR] [--host NAME=ADDR ...]`: scaffold a new funops repo (funops/scaffold.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .output import EXIT_ERROR, console, reported


def init(
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="Where (default: current directory).")
    ] = Path("."),
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            metavar="NAME=[USER@]HOST[:PORT]",
            help="A server to manage over ssh (repeatable); its host keys are scanned for you to confirm.",
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Trust the scanned host keys without asking (CI).")
    ] = False,
) -> None:
    """Create a funops repo: funops.yaml, an inventory, a sample app and .gitignore. Without --host the
    inventory has one local node, so `funops validate` and `plan` work with no servers."""
    from rich.markup import escape

    from .. import scaffold
    from ..hostkeys import keyscan, parse_host

    out = console()
    root = directory.resolve()
    with reported():
        scaffold.check_target(root)
        specs = [parse_host(h) for h in host or []]
        if len({s.name for s in specs}) < len(specs):
            raise scaffold.ScaffoldError("--host: each node needs its own NAME")
        hosts = []
        for spec in specs:
            out.print(f"Scanning {escape(spec.address)}:{spec.port} for {escape(spec.name)}'s host keys…")
            hosts.append(scaffold.Host(spec, keyscan(spec)))
    for h in hosts:
        for key in h.keys:
            out.print(f"  {escape(h.spec.name)}  {escape(key.key_type)}  {escape(key.fingerprint)}")
    if hosts and not yes:
        question = "Are these the servers' host keys (compare with `ssh-keygen -lf` on each server)?"
        if not typer.confirm(question, default=False):
            console(stderr=True).print("[red]error:[/] host keys not confirmed; nothing written")
            raise typer.Exit(EXIT_ERROR)
    with reported():
        written = scaffold.write(root, scaffold.project_name(root), hosts)
    for path in written:
        out.print(f"wrote {escape(str(path.relative_to(root)))}")
    where = "" if root == Path.cwd() else f" -C {escape(str(directory))}"
    out.print(f"Next: funops validate{where}, then funops plan{where}; commit the repo with git.")
