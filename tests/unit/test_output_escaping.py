"""Text from the repo and from nodes keeps its shape in every output: a backtick cannot break out of a
Markdown code span, a pipe cannot add a table cell, and node-recorded text is never rich markup."""

from __future__ import annotations

import io

import pytest
from markdown_it import MarkdownIt
from rich.console import Console

from funops.markdown import md_code, md_text
from funops.release.document import HistoryDoc, ReleaseDoc, RevisionDoc
from funops.release.show import print_history

NASTY = [
    "/srv/a`b.conf",
    "/srv/``x``",
    "`lead",
    "trail`",
    "a|b",
    "<script>x</script>",
    "` | ` ",
    "[/x] [emerg]",
]


@pytest.mark.parametrize("text", NASTY)
def test_a_code_span_holds_its_text_verbatim(text: str) -> None:
    tokens = MarkdownIt("commonmark").parseInline(f"x {md_code(text)} y")[0].children
    (code,) = [t for t in tokens if t.type == "code_inline"]
    assert code.content.replace("\\|", "|").strip() == text.strip()


@pytest.mark.parametrize("text", NASTY)
def test_table_cells_stay_cells(text: str) -> None:
    row = f"| {md_code(text)} | {md_text(text)} | end |"
    html = MarkdownIt("commonmark").enable("table").render(f"| a | b | c |\n|---|---|---|\n{row}\n")
    assert html.count("<td>") == 3
    assert "<script>" not in html


def test_node_recorded_text_is_printed_not_interpreted() -> None:
    error = "nginx: [emerg] unknown directive [/x] in /etc/nginx/conf.d/funops-site.conf:3"
    doc = HistoryDoc(
        project="demo",
        app="web",
        unreachable=[],
        releases=[
            ReleaseDoc(
                id="web-3",
                app="web",
                number=3,
                kind="deploy",
                status="failed",
                revision=RevisionDoc(commit="a" * 40, dirty=False),
                versions=["[bold]v1"],
                nodes={"node1": "failed"},
                restores=None,
                who="[/who]",
                started=None,
                finished=None,
                seconds=None,
                errors={"node1": error},
            )
        ],
    )
    out = io.StringIO()
    print_history(doc, Console(file=out, width=300, color_system=None))
    printed = out.getvalue()
    assert error in printed
    assert "[bold]v1" in printed and "[/who]" in printed


def test_colons_in_printed_text_stay_colons(capsys: pytest.CaptureFixture[str]) -> None:
    from rich.markup import escape

    from funops.cli.output import console

    text = "node1: /srv/:thumbs_up:/a.conf: unit x:fire:.service failed"
    console().print(f"[red]error:[/] {escape(text)}")
    console(stderr=True).print(escape(text))
    out, err = capsys.readouterr()
    assert text in out and text in err
