"""The plan for people: rich text in a terminal, Markdown for a pull request comment."""

from __future__ import annotations

from typing import Any

from ..redact import fingerprint, is_sha256
from .document import ChangeDoc, NodeDoc, PlanDoc

SYMBOL = {"create": "+", "update": "~", "delete": "-"}
STYLE = {"create": "green", "update": "yellow", "delete": "red"}


def short(value: Any) -> str:
    if value is None:
        return "(none)"
    text = str(value)
    return fingerprint(text) if is_sha256(text) else text


def change_summary(change: ChangeDoc) -> str:
    if change.action == "delete":
        return "remove (created by funops)"
    if change.action == "create":
        shown = [
            short(f.new) if f.field == "sha256" else f"{f.field}={short(f.new)}"
            for f in change.fields
            if f.field in ("sha256", "image", "mode", "enabled", "active")
        ]
        return " ".join(shown)
    return ", ".join(f"{f.field}: {short(f.old)} → {short(f.new)}" for f in change.fields)


def summary_line(doc: PlanDoc) -> str:
    s = doc.summary
    line = (
        f"Plan: {s.create} to create, {s.update} to update, {s.delete} to delete, "
        f"{s.unchanged} unchanged on {s.nodes} node(s)"
    )
    if s.owed:
        line += f"; {s.owed} owed handler(s) to run"
    if s.nodes_unreachable:
        line += f"; {s.nodes_unreachable} node(s) UNREACHABLE"
    return line + "."


def print_text(doc: PlanDoc, console: Any) -> None:
    from rich.markup import escape

    console.print(f"[bold]Plan[/] for project [bold]{doc.project}[/] · {_revision(doc)}")
    for node in doc.nodes:
        console.print()
        console.print(_node_header(node))
        if not node.reachable:
            console.print(f"  [red]unreachable:[/] {escape(node.error or '')}")
            continue
        if not node.changes and not node.owed and not node.interrupted:
            console.print(f"  [dim]no changes ({node.unchanged} resources as desired)[/]")
            continue
        width = max((len(c.id) for c in node.changes), default=0)
        for c in node.changes:
            console.print(
                f"  [{STYLE[c.action]}]{SYMBOL[c.action]} {escape(c.id.ljust(width))}[/]  "
                f"[dim]{escape(c.owner)}[/]  {escape(change_summary(c))}"
            )
        if node.owed:
            console.print(f"  [magenta]! owed from an unfinished apply:[/] {', '.join(node.owed)}")
        if node.interrupted:
            console.print(
                f"  [magenta]! interrupted release(s):[/] {', '.join(node.interrupted)} "
                "(their apply stopped; the next apply records them as failed)"
            )
        if node.handlers:
            console.print(f"  [dim]then:[/] {', '.join(node.handlers)}")
    console.print()
    if doc.schedule:
        from ..apply.schedule import schedule_lines

        console.print("[bold]Schedule[/]")
        for line in schedule_lines(doc.schedule):
            console.print(f"  {escape(line)}")
        console.print()
    console.print(f"[bold]{summary_line(doc)}[/]")


def _revision(doc: PlanDoc) -> str:
    r = doc.revision
    if r.commit is None:
        return f"{r.ref} (not a git repo)"
    return f"{r.ref} at {r.commit[:12]}" + (" [yellow](dirty)[/]" if r.dirty else "")


def _node_header(node: NodeDoc) -> str:
    return f"[bold cyan]{node.name}[/] [dim]({node.address}, {node.transport})[/]"


def to_markdown(doc: PlanDoc) -> str:
    r = doc.revision
    rev = f"`{r.commit[:12]}`{' (dirty)' if r.dirty else ''}" if r.commit else r.ref
    lines = [f"### funops plan — {doc.project} at {rev}", "", f"**{summary_line(doc)}**", ""]
    for node in doc.nodes:
        if not node.reachable:
            lines += [f"#### {node.name} — :x: unreachable", "", f"`{_md(node.error or '')}`", ""]
            continue
        if not node.changes and not node.owed and not node.interrupted:
            lines += [f"#### {node.name} — no changes", ""]
            continue
        lines += [
            f"#### {node.name} ({node.address})",
            "",
            "| | resource | owner | change |",
            "|---|---|---|---|",
        ]
        for c in node.changes:
            lines.append(
                f"| {SYMBOL[c.action]} | `{_md(c.id)}` | {_md(c.owner)} | {_md(change_summary(c))} |"
            )
        if node.owed:
            lines.append(f"| ! | owed handlers | | {_md(', '.join(node.owed))} |")
        if node.interrupted:
            lines.append(
                f"| ! | interrupted releases | | {_md(', '.join(node.interrupted))} (to be recorded failed) |"
            )
        lines.append("")
        if node.handlers:
            lines += [f"Then: {_md(', '.join(node.handlers))}", ""]
    if doc.schedule:
        from ..apply.schedule import schedule_lines

        lines += ["#### Schedule", "", *(f"- {_md(line)}" for line in schedule_lines(doc.schedule)), ""]
    return "\n".join(lines).rstrip() + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
