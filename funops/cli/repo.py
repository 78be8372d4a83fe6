"""The commands about the repo alone (no node is contacted): `validate`, `render`, `schema`."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from .options import InventoryOpt, RepoOpt, RevisionOpt, load
from .output import console, fail, reported


class ValidateOutput(StrEnum):
    text = "text"
    json = "json"
    github = "github"


def validate(
    repo: RepoOpt = Path("."),
    revision: RevisionOpt = None,
    inventory: InventoryOpt = None,
    output: Annotated[
        ValidateOutput,
        typer.Option(
            "--output", "-o", help="text, json (diagnostics as data) or github (annotations for Actions)."
        ),
    ] = ValidateOutput.text,
) -> None:
    """Check the repo's files (schema and cross-references); touches no node."""
    from ..compile.compiler import compile_project

    if output is not ValidateOutput.text:
        _validate_for_machines(repo, revision, inventory, output)
        return
    project = load(repo, revision, inventory)
    with reported():
        compile_project(project)
    console().print(
        f"[green]valid:[/] {len(project.nodes)} node(s), {len(project.apps)} app(s), "
        f"{len(project.services)} service(s), {len(project.ingresses)} ingress(es), "
        f"{len(project.releases)} release(s)"
        + (f", {len(project.certificates)} certificate(s)" if project.certificates else "")
        + f" · {project.revision.describe()}"
    )


def _validate_for_machines(
    repo: Path, revision: str | None, inventory: list[Path] | None, output: ValidateOutput
) -> None:
    """`-o json`: the report on stdout (exit 1 when invalid); `-o github`: one `::error …::` line per
    problem on stdout, which GitHub Actions shows on the file's line, and the usual report on stderr."""
    from ..compile.compiler import compile_project
    from ..diagnostics import github_annotation
    from ..errors import InputError
    from ..load.loader import load_project
    from ..load.report import ValidateDoc, diagnostic

    inventory_files = [p.resolve() for p in inventory] if inventory else None
    problems, counts, described = [], {}, None
    with reported():  # a --revision git cannot read is no diagnostic of a file: the usual error
        try:
            project = load_project(repo.resolve(), revision, inventory_files)
            described = project.revision.describe()
            compile_project(project)
            counts = {
                "nodes": len(project.nodes),
                "apps": len(project.apps),
                "services": len(project.services),
                "ingresses": len(project.ingresses),
                "releases": len(project.releases),
                "certificates": len(project.certificates),
            }
        except InputError as exc:
            problems = exc.problems
    if output is ValidateOutput.json:
        doc = ValidateDoc(
            valid=not problems,
            revision=described,
            counts=counts,
            diagnostics=[diagnostic(p) for p in problems],
        )
        typer.echo(doc.to_json(), nl=False)
        if problems:
            raise typer.Exit(1)
        return
    for p in problems:
        typer.echo(github_annotation(p))
    if problems:
        fail(f"{len(problems)} problem(s) found; fix them and run again.", problems)
    console(stderr=True).print(f"[green]valid:[/] {counts['nodes']} node(s), {counts['apps']} app(s)")


def render(
    node: Annotated[str, typer.Option("--node", "-n", help="The node whose files to render.")],
    repo: RepoOpt = Path("."),
    revision: RevisionOpt = None,
    inventory: InventoryOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the files under this directory.")] = None,
) -> None:
    """Render the files funops would write on NODE (secrets included: --out files are mode 0600), and
    the template each came from (bundled, or the repo's templates/)."""
    from rich.markup import escape

    from ..compile.compiler import compile_project
    from ..kinds import is_file_kind

    project = load(repo, revision, inventory)
    if node not in project.nodes:
        fail(f"unknown node {node!r}; known: {', '.join(sorted(project.nodes))}")
    with reported():
        desired = compile_project(project).nodes[node]
    con = console()
    for res in desired.resources:
        origin = f"  [dim]from {escape(res.template.describe())}[/]" if res.template else ""
        if not is_file_kind(res.kind) or res.content is None:
            detail = res.run_spec if res.run_spec is not None else dict(res.desired)
            con.print(f"[dim]{escape(res.id)}[/] {escape(str(detail))}{origin}")
            continue
        if out is None:
            con.print(
                f"[bold]{escape(res.id)}[/] mode {res.desired['mode']}"
                + (" [yellow](secret)[/]" if res.secret else "")
                + origin
            )
            continue
        target = out / res.name.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_private(target, res.content, 0o600 if res.secret else int(res.desired["mode"], 8))
        con.print(f"wrote {escape(str(target))}{origin}")


def _write_private(target: Path, data: bytes, mode: int) -> None:
    """Created 0600 from the start (a secret is never readable by others, not even for a moment),
    and only then given its mode; a symlink planted at `target` is not followed."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an older file may have had a wider mode
        os.write(fd, data)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def schema(
    what: Annotated[
        str,
        typer.Argument(
            metavar="NAME",
            help="A repo file's (manifest, inventory, settings) or an -o json document's: plan, drift, "
            "history, validate, nodes, status, publish, details, lock, audit, exec, certs, "
            "events (apply's lines).",
        ),
    ] = "manifest",
    write: Annotated[
        Path | None,
        typer.Option(
            "--write", metavar="DIR", help="Write the editor schemas (manifest, inventory, settings) to DIR."
        ),
    ] = None,
) -> None:
    """Print a JSON Schema (for editors, CI checks of --output json). `funops init` writes the editor
    schemas into schemas/ of a new repo and names them in each file's first line, for editors with the
    YAML language server; `--write schemas` refreshes them after an upgrade."""
    import json

    from ..schemas import SCHEMAS, schema_for

    if write is not None:
        from ..scaffold import SCHEMA_DIR, schema_files

        for rel, text in schema_files().items():
            path = write / rel.removeprefix(f"{SCHEMA_DIR}/")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            except OSError as exc:
                fail(f"--write {write}: cannot write {path.name} there: {exc.strerror or exc}")
            typer.echo(f"wrote {path}")
        return
    try:
        typer.echo(json.dumps(schema_for(what), indent=2, sort_keys=True))
    except KeyError:
        from ..load.suggest import did_you_mean

        hint = did_you_mean(what, SCHEMAS)
        fail(f"unknown schema {what!r}{f'; {hint}' if hint else ''}; choose one of {', '.join(SCHEMAS)}")
