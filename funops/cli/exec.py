"""`funops exec APP|--node N -- CMD…`: a command on an app's nodes, in parallel, output prefixed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .options import InventoryOpt, NodeOpt, RepoOpt, TextJsonOpt, load
from .output import EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE, Output, console, fail, reported, worst

FORMAT_VERSION = 1


def exec_(
    words: Annotated[
        list[str],
        typer.Argument(
            metavar="[APP] -- CMD", help="The app whose nodes run CMD (not needed with --node), then CMD."
        ),
    ],
    repo: RepoOpt = Path("."),
    inventory: InventoryOpt = None,
    node: NodeOpt = None,
    output: TextJsonOpt = Output.text,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, max=86400, help="Seconds CMD may take on each node.")
    ] = 300,
) -> None:
    """Run CMD as root on APP's nodes (or the --node ones: names, globs, label selectors), in
    parallel: each output line prefixed with its node, then each node's exit code. CMD is run as
    given (no shell: for one, `-- sh -c '…'`). Refused on pull-mode nodes. Recorded in the journal.
    Exit 0: it succeeded everywhere; 3: it failed on some node; 4: some node unreachable."""
    from rich.markup import escape

    from ..apply import journal
    from ..apply.rollout import who
    from ..nodes.run import exec_targets, run_everywhere
    from ..tasks.values import ValueProblem
    from ..transports import Connections

    project = load(repo, None, inventory)
    # The app is the first word, unless --node names the nodes and the first word is no app.
    app = None
    if not node or (len(words) > 1 and words[0] in project.apps):
        app, words = words[0], words[1:]
    if not words:
        fail("no command: funops exec APP -- CMD [ARG...]")
    connections = Connections(project.nodes, project.settings, project.root)
    try:
        with reported():
            names = exec_targets(project, app, node, connections)
            try:
                runs = run_everywhere(project, names, words, connections, timeout)
            except ValueProblem as exc:
                fail(f"the command: {exc}")
    finally:
        connections.close()
    code = EXIT_OK
    for r in runs:
        code = worst(
            code, EXIT_UNREACHABLE if r.exit_code is None else EXIT_OK if r.exit_code == 0 else EXIT_PARTIAL
        )
    entry = {
        "event": "exec",
        "who": who(),
        "when": journal.now(),
        "project": project.settings.project,
        "app": app,
        "command": words,
        "nodes": {r.node: {"status": _status(r.exit_code), "exitCode": r.exit_code} for r in runs},
        "exitCode": code,
    }
    journal.append(journal.journal_path(project.root, project.settings.journal), entry)
    if output is Output.json:
        doc = {"formatVersion": FORMAT_VERSION, "app": app, "command": words, "exitCode": code,
               "nodes": [r.to_json() for r in runs]}  # fmt: skip
        typer.echo(json.dumps(doc, indent=2))
    else:
        out, err = console(), console(stderr=True)
        for r in runs:
            for line in r.stdout.splitlines():
                out.print(f"{escape(r.node)}: {escape(line)}")
            for line in r.stderr.splitlines():
                err.print(f"{escape(r.node)}: {escape(line)}")
        for r in runs:
            if r.exit_code is None:
                err.print(f"[red]{escape(r.node)}: unreachable[/] ({escape(r.error or '')})")
            else:
                color = "green" if r.exit_code == 0 else "red"
                err.print(f"[{color}]{escape(r.node)}: exit {r.exit_code}[/]")
    raise typer.Exit(code)


def _status(exit_code: int | None) -> str:
    return "unreachable" if exit_code is None else "ok" if exit_code == 0 else "failed"
