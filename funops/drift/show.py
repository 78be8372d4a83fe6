"""The drift report for people: rich text in a terminal, one Markdown table for a PR or an issue."""

from __future__ import annotations

from typing import Any

from ..markdown import md_code, md_text
from ..plan.show import Lines, diff_markdown, print_diff
from .document import DRIFT_CLASSES, DriftDoc, DriftItemDoc, NodeDriftDoc, PendingDoc

CLASS_STYLE = {"modified": "yellow", "missing": "red", "extra": "magenta", "stopped": "red", "owed": "cyan",
               "expiring": "yellow", "mismatched": "magenta"}  # fmt: skip
ACTION_SYMBOL = {"create": "+", "update": "~", "delete": "-"}


def summary_line(doc: DriftDoc) -> str:
    s = doc.summary
    if s.drift:
        classes = ", ".join(f"{s.by_class[c]} {c}" for c in DRIFT_CLASSES if s.by_class.get(c))
        line = f"Drift: {s.drift} item(s) on {s.nodes_drifted} of {s.nodes} node(s) ({classes})"
    else:
        line = f"No drift on {s.nodes - s.nodes_unreachable} reachable node(s)"
    if s.acknowledged:
        line += f"; {s.acknowledged} acknowledged"
    if s.pending:
        line += f"; {s.pending} repo change(s) not applied yet (pending, not drift)"
    if s.nodes_unreachable:
        line += f"; {s.nodes_unreachable} node(s) UNREACHABLE"
    return line + "."


def ack_text(item: DriftItemDoc) -> str:
    ack = item.ack
    if ack is None:
        return ""
    if ack.expired:
        return f"acknowledgement expired {ack.until} ({ack.by}: {ack.reason})"
    if not ack.matches:
        return f"acknowledged drift changed since ({ack.by}: {ack.reason})"
    return f"acknowledged until {ack.until} by {ack.by}: {ack.reason}"


def pending_text(p: PendingDoc) -> str:
    if p.action == "create":
        shown = [f"{f.field}={_v(f.new)}" for f in p.fields if f.field in ("sha256", "image", "active")]
        return "create " + " ".join(shown)
    return ", ".join(f"{f.field}: {_v(f.old)} → {_v(f.new)}" for f in p.fields) or p.action


def print_text(doc: DriftDoc, console: Any) -> None:
    from rich.markup import escape

    out = Lines(console)
    out.add(f"[bold]Drift[/] of project [bold]{escape(doc.project)}[/] · {escape(_revision(doc))}")
    for node in doc.nodes:
        out.add()
        out.add(f"[bold cyan]{node.name}[/] [dim]({node.address}, {node.transport})[/]")
        if not node.reachable:
            out.add(f"  [red]unreachable:[/] {escape(node.error or '')}")
            continue
        if not node.drift and not node.pending and not node.notices:
            out.add("  [dim]no drift[/]")
        width = max((len(i.id) for i in node.drift), default=0)
        for item in node.drift:
            if item.acknowledged:
                mark, style = "✓", "dim"
            else:
                mark, style = "✗", CLASS_STYLE[item.drift_class]
            note = f"  [dim]({escape(ack_text(item))})[/]" if item.ack else ""
            fix = "" if item.fixable else "  [dim](--fix cannot remove it)[/]"
            out.add(
                f"  [{style}]{mark} {item.drift_class:8} {escape(item.id.ljust(width))}[/]  "
                f"[dim]{escape(item.owner or '-')}[/]  {escape(item.summary)}{note}{fix}"
            )
            if item.diff is not None:
                print_diff(item.diff, out)
        for p in node.pending:
            out.add(
                f"  [blue]{ACTION_SYMBOL[p.action]} pending  {escape(p.id)}[/]  [dim]{escape(p.owner)}[/]  "
                f"{escape(pending_text(p))}"
            )
        if node.nginx_test and not node.nginx_test.ok:
            out.add(f"  [red]nginx -t:[/] {escape(node.nginx_test.output)}")
        for note in node.notices:
            out.add(f"  [dim]note: {escape(note)}[/]")
    out.add()
    out.add(f"[bold]{escape(summary_line(doc))}[/]")
    if doc.summary.unused_acks:
        out.add(
            "[dim]Acknowledgements matching no drift (remove them?): "
            f"{escape(', '.join(doc.summary.unused_acks))}[/]"
        )
    out.flush()


def to_markdown(doc: DriftDoc) -> str:
    """One table for all nodes: a reviewer reads down the list, whatever node it is on."""
    icon = {"clean": ":white_check_mark:", "drift": ":warning:", "unreachable": ":x:"}[doc.status]
    lines = [
        f"### {icon} funops drift — {_md(doc.project)} · {_revision(doc, markdown=True)}",
        "",
        f"**{_md(summary_line(doc))}**",
        "",
    ]
    rows = [_row(n, i) for n in doc.nodes for i in n.drift] + [
        f"| {n.name} | | :x: unreachable | | {md_code(n.error or '')} | |"
        for n in doc.nodes
        if not n.reachable
    ]
    if rows:
        lines += [
            "| node | resource | drift | owner | what | --fix |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    pending = [(n, p) for n in doc.nodes for p in n.pending]
    if pending:
        lines += [
            "<details><summary>Repo changes not applied yet (pending; not drift)</summary>",
            "",
            "| node | resource | change |",
            "|---|---|---|",
            *(
                f"| {n.name} | {md_code(p.id)} | {ACTION_SYMBOL[p.action]} {_md(pending_text(p))} |"
                for n, p in pending
            ),
            "",
            "</details>",
            "",
        ]
    for n in doc.nodes:
        for item in n.drift:
            lines += diff_markdown(item.id, item.diff, prefix=f"{n.name}: ")
    notes = [f"- {n.name}: {_md(note)}" for n in doc.nodes for note in n.notices]
    notes += [
        f"- {n.name}: `nginx -t` fails: {md_code(n.nginx_test.output)}" for n in doc.nodes if _nginx_bad(n)
    ]
    if notes:
        lines += ["Notes:", "", *notes, ""]
    if doc.fix is not None:
        outcomes = ", ".join(f"{n}: {o.status}" for n, o in sorted(doc.fix.nodes.items())) or "nothing to do"
        lines += [f"Fix (`--fix`, rollout {doc.fix.rollout or '-'}): {_md(outcomes)}", ""]
    return "\n".join(lines).rstrip() + "\n"


def _row(node: NodeDriftDoc, item: DriftItemDoc) -> str:
    if item.acknowledged:
        what = f":white_check_mark: acknowledged ({item.drift_class})"
    else:
        what = f"**{item.drift_class}**"
    detail = item.summary + (f" — _{ack_text(item)}_" if item.ack else "")
    return (
        f"| {node.name} | {md_code(item.id)} | {what} | {_md(item.owner or '')} | {_md(detail)} | "
        f"{'yes' if item.fixable else 'no'} |"
    )


def _nginx_bad(node: NodeDriftDoc) -> bool:
    return node.nginx_test is not None and not node.nginx_test.ok


def _revision(doc: DriftDoc, markdown: bool = False) -> str:
    r = doc.revision
    ref = md_text(r.ref) if markdown else r.ref
    if r.commit is None:
        return f"{ref} (not a git repo)"
    commit = md_code(r.commit[:12]) if markdown else r.commit[:12]
    return f"{ref} at {commit}" + (" (dirty)" if r.dirty else "")


def _v(value: Any) -> str:
    return "(none)" if value is None else str(value)


_md = md_text
