"""Rendering diagnostics (errors.Problem): for people like rustc and Terraform do — the location with
its column, the source line with the span underlined, a `help:` — and as GitHub Actions annotations.
(`validate -o json` is load/report.py: diagnostics as data.)"""

from __future__ import annotations

from .errors import Problem, visible

MAX_SOURCE = 160  # characters of a source line shown; a longer one is cut around the span
TAB = "    "


def render(problem: Problem, markup: bool = False) -> list[str]:
    """Text lines (with `markup`: rich markup, the text escaped). The first keeps the one-line form
    (`file:line: field: message`) that logs are grepped for; then ` --> file:line:col`, the source
    line and carets, and the help."""
    lines = [f"{problem.severity}: {problem}"]
    if problem.column is not None and problem.source is not None and problem.line:
        lines += _snippet(problem)
    if problem.suggestion:
        pad = " " * len(str(problem.line or ""))
        lines.append(f"{pad} = help: {visible(problem.suggestion)}")
    return [_styled(line, problem.severity) for line in lines] if markup else lines


def _styled(line: str, severity: str) -> str:
    """rustc's colours: the severity red (warning yellow), the gutter blue, the carets as the severity."""
    from rich.markup import escape

    colour = "red" if severity == "error" else "yellow"
    if line.startswith(f"{severity}: "):
        return f"[bold {colour}]{severity}:[/] {escape(line.removeprefix(f'{severity}: '))}"
    gutter, bar, rest = line.partition("|")
    if bar and (gutter.strip().isdigit() or not gutter.strip()):
        if rest.strip() and set(rest.strip()) == {"^"}:
            return f"[blue]{escape(gutter)}|[/][bold {colour}]{escape(rest)}[/]"
        return f"[blue]{escape(gutter)}|[/]{escape(rest)}"
    if line.lstrip().startswith("-->"):
        return f"[blue]{escape(line)}[/]"
    if line.lstrip().startswith("= help:"):
        head, _, text = line.partition("help:")
        return f"[blue]{escape(head)}[/][bold]help:[/]{escape(text)}"
    return escape(line)


def _snippet(problem: Problem) -> list[str]:
    assert problem.column is not None and problem.source is not None and problem.line
    number = str(problem.line)
    pad = " " * len(number)
    start = problem.column - 1
    end = max(problem.end_column - 1 if problem.end_column else start + 1, start + 1)
    source, start, end = _cut(problem.source, start, end)
    # The shown line escapes control characters and widens tabs: carets are placed by shown width.
    before = "".join(_shown(c) for c in source[:start])
    inside = "".join(_shown(c) for c in source[start:end]) or " "
    return [
        f"{pad}--> {problem.file}:{problem.line}:{problem.column}",
        f"{pad} |",
        f"{number} | {''.join(_shown(c) for c in source)}".rstrip(),
        f"{pad} | {' ' * len(before)}{'^' * len(inside)}",
    ]


def _cut(source: str, start: int, end: int) -> tuple[str, int, int]:
    """A long line cut to MAX_SOURCE characters around the span (a minified value, a long command)."""
    if len(source) <= MAX_SOURCE:
        return source, start, min(end, max(len(source), start + 1))
    first = max(0, min(start - 20, len(source) - MAX_SOURCE))
    cut = ("…" if first else "") + source[first : first + MAX_SOURCE]
    cut += "…" if first + MAX_SOURCE < len(source) else ""
    offset = first - (1 if first else 0)
    return cut, start - offset, min(end - offset, len(cut) - 1)


def _shown(char: str) -> str:
    return TAB if char == "\t" else visible(char)


def github_annotation(problem: Problem) -> str:
    """`::error file=…,line=…,col=…,title=…::message`, escaped as the Actions runner unescapes it
    (data: % CR LF; properties also : and ,). GitHub shows it on the line in the pull request."""
    props = {"file": problem.file}
    if problem.line:
        props["line"] = str(problem.line)
    if problem.column is not None:
        props["col"] = str(problem.column)
        if problem.end_column is not None:
            props["endColumn"] = str(problem.end_column)
    props["title"] = f"funops: {problem.field}" if problem.field else "funops"
    message = problem.message + (f" ({problem.suggestion})" if problem.suggestion else "")
    fields = ",".join(f"{k}={_escape_property(v)}" for k, v in props.items())
    return f"::{problem.severity} {fields}::{_escape_data(visible(message))}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
