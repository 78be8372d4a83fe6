"""Which characters a value may hold. Values land in line-oriented files (systemd units, env files,
nginx sites) and in shell scripts: a line break inside one adds lines, i.e. directives, to the file.

One rule for every field: no control characters (a tab is fine) and no unicode line breaks (U+0085,
U+2028, U+2029 end lines for some readers); multi-line text only where the schema says so (config
file content, annotations, vars). Checked at load time on the YAML data and again after rendering,
so a template cannot produce what the field may not hold."""

from __future__ import annotations

import re

SHOWN = 60  # characters of an offending value quoted in an error

# The bounds of a rollout's numbers, one limit for manifests (model/strategy.py) and tasks (tasks/values.py).
MAX_RETRIES = 10_000
MAX_CHECK_SECONDS = 3_600  # a health check's interval and timeout
MAX_WAIT_SECONDS = 86_400  # minHealthySeconds, a drain's wait


def shown(value: object) -> str:
    """A value for an error message: repr-quoted (control characters escaped), cut to a readable size."""
    text = repr(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 4] + "…" + text[-3:]


def _around(value: str, index: int) -> str:
    """The value, or when it is long the part around `index`, so the offending character shows."""
    if len(repr(value)) <= SHOWN:
        return repr(value)
    start = max(0, index - SHOWN // 2)
    return ("…" if start else "") + shown(value[start:])


# The characters of unicodedata categories Cc, Zl and Zp (fixed sets: Cc is U+0000-U+001F and
# U+007F-U+009F, Zl U+2028, Zp U+2029), as one regex: a per-character category lookup in Python cost
# ~0.2 s of a 500-node plan (every rendered line is checked). tests/unit/test_text_chars.py holds it
# to unicodedata over every code point.
_BAD = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")  # a tab is fine
_BAD_MULTI_LINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")  # and \n, \r


def bad_char(value: str, multi_line: bool = False) -> str | None:
    """The first character `value` may not hold, or None."""
    found = (_BAD_MULTI_LINE if multi_line else _BAD).search(value)
    return found.group() if found else None


def single_line_problem(value: str, what: str = "", secret: bool = False) -> str | None:
    """The error for a value that must be one line, or None. A secret's value is never shown."""
    char = bad_char(value)
    if char is None:
        return None
    subject = what or ("the secret's value" if secret else _around(value, value.index(char)))
    kind = "a line break" if char in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029" else "a control character"
    return f"{subject} holds {kind} ({repr(char)[1:-1]}): it must be a single line"
