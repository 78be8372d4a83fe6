"""Markdown for PR comments: text from the repo and from nodes (paths, errors) must not change the
comment's structure — a backtick in a path must not close its code span, a pipe must not add a cell."""

from __future__ import annotations

import re


def md_text(text: str) -> str:
    """Plain text in a table cell or a line: no new cells, no code spans, no HTML, one line."""
    text = " ".join(text.splitlines())
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`").replace("<", "&lt;")


def md_code(text: str) -> str:
    """A code span holding `text` verbatim (CommonMark: the fence is one backtick longer than the longest
    run inside, padded with spaces when the text starts or ends with a backtick). A pipe is escaped even
    here: GitHub splits table cells before it parses code spans."""
    text = " ".join(text.splitlines()).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"
