"""The plan for people: rich text in a terminal, Markdown for a pull request comment."""

from __future__ import annotations

from typing import Any

from ..kinds import kind_of
from ..markdown import md_code, md_text
from ..redact import fingerprint, is_sha256
from .document import ChangeDoc, FileDiffDoc, NodeDoc, PlanDoc, ProgramDoc, TemplateDoc
from .schedule import schedule_lines

SYMBOL = {"create": "+", "update": "~", "replace": "-/+", "delete": "-"}
STYLE = {"create": "green", "update": "yellow", "replace": "magenta", "delete": "red"}


def short(value: Any) -> str:
    if value is None:
        return "(none)"
    text = str(value)
    return fingerprint(text) if is_sha256(text) else text


def change_summary(change: ChangeDoc) -> str:
    if change.action == "delete":
        return "remove (created by funops)"
    if change.action == "create":
        wanted = kind_of(change.id).summary_fields
        shown = [
            short(f.new) if f.field == "sha256" else f"{f.field}={short(f.new)}"
            for f in change.fields
            if f.field in wanted
        ]
        return " ".join(shown)
    fields = ", ".join(_field_change(f.field, f.old, f.new) for f in change.fields)
    return f"replace: {fields}" if change.action == "replace" else fields


def _field_change(field: str, old: Any, new: Any) -> str:
    # A content hash already reads `sha256:…`: no `sha256: sha256:…` label before it.
    if field == "sha256" and all(v is None or short(v).startswith("sha256:") for v in (old, new)):
        return f"{short(old)} → {short(new)}"
    return f"{field}: {short(old)} → {short(new)}"


def template_summary(t: TemplateDoc) -> str:
    """`templates/nginx/site.conf.j2 (repo; uses bundled/nginx/site.conf.j2)`"""
    return f"{t.path} ({t.origin}" + (f"; uses {', '.join(t.uses)})" if t.uses else ")")


def summary_line(doc: PlanDoc) -> str:
    s = doc.summary
    line = (
        f"Plan: {s.create} to create, {s.update} to update, "
        + (f"{s.replace} to replace, " if s.replace else "")
        + f"{s.delete} to delete, "
        f"{s.unchanged} unchanged on {s.nodes} node(s)"
    )
    if s.owed:
        line += f"; {s.owed} owed handler(s) to run"
    if s.nodes_unreachable:
        line += f"; {s.nodes_unreachable} node(s) UNREACHABLE"
    return line + "."


def print_text(doc: PlanDoc, console: Any) -> None:
    from rich.markup import escape

    out = Lines(console)
    out.add(f"[bold]Plan[/] for project [bold]{doc.project}[/] · {_revision(doc)}")
    for node in doc.nodes:
        out.add()
        out.add(_node_header(node))
        if not node.reachable:
            out.add(f"  [red]unreachable:[/] {escape(node.error or '')}")
            continue
        if not node.changes and not node.owed and not node.interrupted:
            out.add(f"  [dim]no changes ({node.unchanged} resources as desired)[/]")
            continue
        width = max((len(c.id) for c in node.changes), default=0)
        for c in node.changes:
            out.add(
                f"  [{STYLE[c.action]}]{SYMBOL[c.action]} {escape(c.id.ljust(width))}[/]  "
                f"[dim]{escape(c.owner)}[/]  {escape(change_summary(c))}"
                + (f"  [dim]from {escape(template_summary(c.template))}[/]" if c.template else "")
            )
            if c.diff is not None:
                print_diff(c.diff, out)
        if node.owed:
            out.add(f"  [magenta]! owed from an unfinished apply:[/] {escape(', '.join(node.owed))}")
        if node.interrupted:
            out.add(
                f"  [magenta]! interrupted release(s):[/] {escape(', '.join(node.interrupted))} "
                "(their apply stopped; the next apply records them as failed)"
            )
        if node.handlers:
            out.add(f"  [dim]then:[/] {escape(', '.join(node.handlers))}")
    out.add()
    if any(c.action != "none" or c.mismatch for c in doc.certificates):
        out.add("[bold]Certificates[/]")
        for line in certificate_lines(doc):
            out.add(f"  {escape(line)}")
        out.add()
    if doc.schedule:
        out.add("[bold]Schedule[/]")
        for line in schedule_lines(doc.schedule):
            out.add(f"  {escape(line)}")
        out.add()
    out.add(f"[bold]{summary_line(doc)}[/]")
    out.flush()


def certificate_lines(doc: PlanDoc) -> list[str]:
    """`www (www.example.com): renew (expires in 12 days) · issuer letsencrypt, http-01 · edge1, edge2`
    for each certificate apply does something for (or whose nodes disagree)."""
    lines = []
    for c in doc.certificates:
        if c.action == "none" and not c.mismatch:
            continue
        nodes = ", ".join(c.nodes)
        lines.append(
            f"{c.name} ({', '.join(c.domains)}): {c.reason} · issuer {c.issuer}, {c.challenge} · {nodes}"
        )
    return lines


class Lines:
    """A report's lines (markup strings and rich Texts) given to the console a thousand at a time,
    one line each, as printing them one by one would: rich spends ~0.3 ms on each call, whatever it
    prints (0.4 s for the 1,500 lines of a 500-node plan, 0.11 s as one print). A bounded batch, as
    rich renders all it is given before it writes: the diffs of a 500-node first apply at once took
    60 MB."""

    BATCH = 1000

    def __init__(self, console: Any) -> None:
        self.console, self.lines = console, list[Any]()

    def add(self, line: Any = "") -> None:
        self.lines.append(line)
        if len(self.lines) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.lines:
            return
        plain = _plain_lines(self.lines) if _prints_plain(self.console) else None
        if plain is not None:
            self.console.file.write(plain)
            self.console.file.flush()
        else:
            self.console.print(*self.lines, sep="\n")
        self.lines.clear()


def _prints_plain(console: Any) -> bool:
    """Off a terminal without colours (CI logs, pipes: cli/output.console) rich prints each line's
    text as it is, unwrapped: a line's `plain` text, written directly, is the same bytes for a
    quarter of the CPU (rich's layout of 6,000 lines of a 2,000-node plan, ~0.1 s)."""
    return (
        console.color_system is None and console.soft_wrap and not console.record and not console.is_terminal
    )


def _plain_lines(lines: list[Any]) -> str | None:
    """The lines as rich would print them plain (markup parsed, control codes left out by its Text),
    or None when rich's layout could change one: a tab (expanded), a line break inside, trailing
    whitespace (trimmed past the console's width)."""
    from rich.markup import render
    from rich.text import Text

    out = []
    for line in lines:
        text = (line if isinstance(line, Text) else render(line, emoji=False)).plain
        if "\t" in text or "\n" in text or text[-1:].isspace():
            return None
        out.append(text)
    return "\n".join(out) + "\n"


DIFF_STYLE = {"+": "green", "-": "red", "@": "cyan", "\\": "dim"}


def print_diff(diff: FileDiffDoc, out: Lines, indent: str = "      ") -> None:
    """A file's diff under its change line: colored unified diff lines, or a note why there is none."""
    from rich.text import Text

    if diff.note:
        out.add(Text(f"{indent}{diff.note}", style="dim"))
    for line in (diff.unified or "").splitlines()[2:]:  # the ---/+++ header repeats the change line
        style = DIFF_STYLE.get(line[:1], "")
        if line.startswith("… "):
            style = "dim"
        out.add(Text(indent + line, style=style))


def diff_markdown(rid: str, diff: FileDiffDoc | None, prefix: str = "", fold_after: int = 30) -> list[str]:
    """A file's diff for a pull-request comment: a ```diff block, inside <details> when long."""
    if diff is None:
        return []
    title = f"{_md(prefix)}{md_code(rid)}" + (f" — {_md(diff.note)}" if diff.note else "")
    if not diff.unified:
        return [f"- {title}", ""] if diff.note else []
    body = diff.unified.rstrip("\n")
    fence = "`" * max(3, _longest_backtick_run(body) + 1)  # file content never closes the block
    block = [f"{fence}diff", body, fence]
    if body.count("\n") + 1 <= fold_after:
        return [f"{title}:", "", *block, ""]
    return [f"<details><summary>{title}</summary>", "", *block, "", "</details>", ""]


def _longest_backtick_run(text: str) -> int:
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return longest


def _revision(doc: PlanDoc) -> str:
    from rich.markup import escape

    r = doc.revision
    if r.commit is None:
        return f"{escape(r.ref)} (not a git repo)"
    return f"{escape(r.ref)} at {r.commit[:12]}" + (" [yellow](dirty)[/]" if r.dirty else "")


def _node_header(node: NodeDoc) -> str:
    return f"[bold cyan]{node.name}[/] [dim]({node.address}, {node.transport})[/]"


def to_markdown(doc: PlanDoc) -> str:
    r = doc.revision
    rev = f"{md_code(r.commit[:12])}{' (dirty)' if r.dirty else ''}" if r.commit else md_text(r.ref)
    lines = [f"### funops plan — {doc.project} at {rev}", "", f"**{summary_line(doc)}**", ""]
    for node in doc.nodes:
        if not node.reachable:
            lines += [f"#### {node.name} — :x: unreachable", "", md_code(node.error or ""), ""]
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
                f"| {SYMBOL[c.action]} | {md_code(c.id)} | {_md(c.owner)} | {_md(change_summary(c))}"
                + (f" (from {md_code(template_summary(c.template))})" if c.template else "")
                + " |"
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
        for c in node.changes:
            lines += diff_markdown(c.id, c.diff)
    if certs := certificate_lines(doc):
        lines += ["#### Certificates", "", *(f"- {_md(line)}" for line in certs), ""]
    if doc.schedule:
        lines += ["#### Schedule", "", *(f"- {_md(line)}" for line in schedule_lines(doc.schedule)), ""]
    return "\n".join(lines).rstrip() + "\n"


_md = md_text


def program_lines(program: ProgramDoc) -> list[str]:
    """What `apply FILE` runs, node by node (`funops show FILE`): every task by name, in order."""
    from ..node import wire

    def name(unit: Any) -> str:
        if isinstance(unit, dict) and set(unit) == {"sealed"}:
            return "(sealed: holds a secret)"
        if isinstance(unit, dict) and set(unit) == {"withheld"}:
            return "(withheld: holds a secret, not sealed)"
        return wire.decode(unit).name

    lines = []
    for node, p in sorted(program.nodes.items()):
        if not p["converge"]:
            continue
        lines.append(f"{node}:")
        steps = [
            ("changes", [name(t) for t in p["changes"]]),
            ("health", [name(c["task"]) for c in p["checks"]]),
            (
                "gated",
                [
                    name(g)
                    if "sealed" in g or "withheld" in g
                    else ", ".join(wire.decode(t).name for t in g["tasks"])
                    for g in p["gated"]
                ],
            ),
            ("housekeeping", [name(t) for t in p["housekeeping"]]),
        ]
        for label, names in steps:
            lines += [f"  {label}: {n}" for n in names]
    lines += drain_lines(program.drains)
    lines += order_lines(program.orders)
    for app, back in sorted(program.rollback.items()):
        to = (
            f"{back['to']}, the last succeeded release before it"
            if back["to"]
            else "nothing (its first release)"
        )
        lines.append(
            f"on a halt: auto-rollback of {app} from {back['from']} to {to}, from its nodes' records"
        )
    if program.needs_repo:
        lines.append("apply needs the repo: " + "; ".join(program.needs_repo))
    if program.sealed:
        lines.append("secrets: sealed (apply FILE --key KEY)")
    return lines


def drain_lines(drains: dict[str, Any] | None) -> list[str]:
    """The drain steps the file holds (plan/drains.py): per batch, the endpoints marked down and the
    ingress files written for it, as the rollout goes when every batch comes out healthy."""
    if not drains:
        return []
    lines = [f"drains (ingress {', '.join(drains['ingress'])}; {len(drains['variants'])} sets of drained "
             "endpoints held, failures included):"]  # fmt: skip
    held = {_down_key(v["down"]): v["sites"] for v in drains["variants"]}
    files = drains["files"]
    live: dict[str, dict[str, str]] = {}  # node → path → sha256 as the steps leave it
    for step in drains["steps"]:
        sites = held.get(_down_key(step["down"]), {})
        written = []
        for node, refs in sorted(sites.items()):
            for ref in refs:
                f = files[ref]
                path = f["id"].split(":", 1)[-1]  # file:<path>
                if live.setdefault(node, {}).get(path) != f["sha256"]:
                    live[node][path] = f["sha256"]
                    written.append(f"{node}:{path}")
        down = ", ".join(f"{a}@{n}" for a, n in step["down"]) or "none"
        lines.append(
            f"  batch {step['batch']} {step['step']}: down {down}; writes {', '.join(written) or 'nothing'}"
        )
    return lines


def _down_key(down: list[list[str]]) -> tuple[tuple[str, ...], ...]:
    return tuple(sorted(tuple(p) for p in down))


def order_lines(orders: dict[str, dict[str, Any]]) -> list[str]:
    """The certificate orders the file holds (plan/certorders.py) and what their answer binds."""
    lines = []
    for name, o in sorted(orders.items()):
        if o["copyFrom"]:
            what = f"deploy serial {o['copyFrom']['serial']} copied from {o['copyFrom']['node']}"
        else:
            issuer, dns = o["issuer"], o["dns"]
            where = (
                f"dns {dns['server']}:{dns['port']} zone {dns['zone']}"
                if dns
                else "edges " + ", ".join(e["node"] for e in o["edges"])
            )
            what = (
                f"{o['action']} {', '.join(o['domains'])} ({o['challenge']}, {o['keyType']}) from "
                f"{issuer['url']}; {where}"
            )
        lines.append(f"certificate {name}: {what}; its nodes' tasks name version {o['placeholder'][:12]}… "
                     "until apply binds the CA's serial, key and chain")  # fmt: skip
    return lines
