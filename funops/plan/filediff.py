"""What changes inside a file, for people: a unified diff (difflib), bounded and redacted.

Pure: both sides' bytes in, a `FileDiffDoc` out. Secrets never appear on either side. A file that
holds secrets as a whole (a TLS key) shows nothing of its content; an env file shows every key, with
the value of a secret key (now or when it was applied) replaced by a marker saying whether it
changed; and any line that still holds a known secret value is hidden as a whole.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from .document import FileDiffDoc

MAX_BYTES = 128 * 1024  # a side larger than this is "large": sizes only (also the fetch limit)
MAX_LINES = 400  # diff lines shown before the rest is cut
DELETE_HEAD = 10  # lines of a deleted file shown
MIN_SCRUB = 4  # secret values shorter than this are only ever replaced by key, not searched for
MIN_SCRUB_ACROSS = 8  # … and searched for in the node's other files only from this length (less noise)

SECRET_CHANGED = "<secret changed>"
SECRET_UNCHANGED = "<secret unchanged>"
SECRET = "<secret>"
HIDDEN_VALUE = "<value hidden>"
HIDDEN_LINE = "<line hidden: may hold a secret>"
NO_NEWLINE = "\\ No newline at end of file"

_ENV_LINE = re.compile(r"^(\s*(?:export\s+)?)([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0, DEL and C1 (\x9b is a CSI too)


@dataclass(frozen=True)
class Redaction:
    """How much of a file's content may be shown."""

    hidden: bool = False  # a secret as a whole (TLS key, fromFile secret): no content at all
    env: bool = False  # KEY=VALUE lines: only plain keys' values are shown
    secret_keys: frozenset[str] = frozenset()  # env: keys that are secrets now or were when applied
    plain_keys: frozenset[str] = frozenset()  # env: keys the repo declares with a plain value
    scrub: frozenset[str] = frozenset()  # secret values known on this node: a line holding one is hidden

    @classmethod
    def for_env(cls, secret_keys: frozenset[str], declared: bytes | None) -> Redaction:
        """An env file whose repo rendering is `declared`: its keys other than `secret_keys` are plain.
        A key found only on a node (added by hand, or removed from the repo) is never plain."""
        keys = set(_env_values(_lines(_text(declared) or ""))) if declared is not None else set()
        return cls(env=True, secret_keys=secret_keys, plain_keys=frozenset(keys - secret_keys))


PLAIN = Redaction()


def render(
    path: str,
    old: bytes | None,
    new: bytes | None,
    redaction: Redaction = PLAIN,
    *,
    context: int = 3,
    old_size: int | None = None,
    new_size: int | None = None,
    max_bytes: int = MAX_BYTES,
    max_lines: int = MAX_LINES,
    labels: tuple[str, str] = ("live", "desired"),
) -> FileDiffDoc:
    """The diff from `old` to `new` (None: the file does not exist on that side). `*_size` is the
    full size when the bytes given were cut at the fetch limit."""
    old_n = None if old is None else (len(old) if old_size is None else old_size)
    new_n = None if new is None else (len(new) if new_size is None else new_size)
    sizes = {"old_size": old_n, "new_size": new_n}
    if redaction.hidden:
        return FileDiffDoc(format="hidden", note="content hidden (a secret)", **sizes)
    if any(n is not None and n > max_bytes for n in (old_n, new_n)):
        return FileDiffDoc(format="large", note=f"large: {_sizes(old_n, new_n)}", **sizes)
    old_text, new_text = _text(old), _text(new)
    if (old is not None and old_text is None) or (new is not None and new_text is None):
        return FileDiffDoc(format="binary", note=f"binary: {_sizes(old_n, new_n)}", **sizes)
    a, b = _lines(old_text), _lines(new_text)
    if redaction.env:
        a, b = _redact_env(a, b, redaction.plain_keys - redaction.secret_keys, redaction.secret_keys)
    if redaction.scrub:  # whatever the file: a known secret value never prints
        a, b = _scrub(a, redaction.scrub), _scrub(b, redaction.scrub)
    head = 0
    if new is None and len(a) > DELETE_HEAD:  # a delete says what goes, not all of it
        head, a = len(a), a[:DELETE_HEAD]
    body = _unified(path, a, b, context, old is None, new is None, labels)
    truncated = head > 0 or len(body) > max_lines + 2
    if len(body) > max_lines + 2:
        more = len(body) - max_lines - 2
        body = [*body[: max_lines + 2], f"… {more} more diff line(s) not shown"]
    note = None
    if new is None:
        note = f"removes {old_n} bytes, {head or len(a)} line(s)" + (
            f"; the first {DELETE_HEAD} shown" if head else ""
        )
    return FileDiffDoc(
        format="unified",
        unified="\n".join(body) + "\n" if body else "",
        note=note,
        truncated=truncated,
        **sizes,
    )


def _sizes(old: int | None, new: int | None) -> str:
    if old is None:
        return f"{new} bytes (new)"
    if new is None:
        return f"{old} bytes (removed)"
    return f"{old} → {new} bytes"


def _text(data: bytes | None) -> str | None:
    """Text, or None when the bytes are not UTF-8 text (binary)."""
    if data is None:
        return ""
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _lines(text: str | None) -> list[str]:
    """Lines with their endings kept; only "\\n" ends a line (not the other characters that
    str.splitlines treats as breaks: form feed, U+2028 …)."""
    if not text:
        return []
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _unified(
    path: str,
    a: list[str],
    b: list[str],
    context: int,
    created: bool,
    deleted: bool,
    labels: tuple[str, str],
) -> list[str]:
    old_name = "/dev/null" if created else f"{path} ({labels[0]})"
    new_name = "/dev/null" if deleted else f"{path} ({labels[1]})"
    out = []
    for line in difflib.unified_diff(a, b, old_name, new_name, n=max(0, context)):
        if line.startswith(("---", "+++", "@@")) and line.endswith("\n"):
            out.append(line.rstrip("\n"))
            continue
        ends = line.endswith("\n")
        out.append(_visible(line[:-1] if ends else line))
        if not ends:
            out.append(NO_NEWLINE)
    return out


def _visible(line: str) -> str:
    """No control characters reach a terminal or a comment: CR as ␍ (CRLF files), others as \\xNN."""
    if line.endswith("\r"):
        line = line[:-1] + "␍"
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", line)


def _redact_env(
    a: list[str], b: list[str], plain: frozenset[str], secret: frozenset[str]
) -> tuple[list[str], list[str]]:
    """Both sides of an env file with every value replaced but those of `plain` keys (declared plain
    in the repo, and no secret when applied): a secret key's by a marker saying whether it changed,
    any other key's (found only on a node) by `<value hidden>`."""
    old_values, new_values = _env_values(a), _env_values(b)
    scrub = {
        v.strip('"')
        for values in (old_values, new_values)
        for k, v in values.items()
        if k not in plain and len(v.strip('"')) >= MIN_SCRUB
    }

    def marker(key: str, side: str) -> str:
        if key not in secret:
            return HIDDEN_VALUE
        old, new = old_values.get(key), new_values.get(key)
        if old is not None and old == new:
            return SECRET_UNCHANGED
        return SECRET_CHANGED if side == "new" and old is not None else SECRET

    def redact(lines: list[str], side: str) -> list[str]:
        out = []
        for line in lines:
            ending = line[len(line.rstrip("\r\n")) :]
            body = line[: len(line) - len(ending)]
            m = _ENV_LINE.match(body)
            if m and m.group(2) not in plain:
                body = f"{m.group(1)}{m.group(2)}={marker(m.group(2), side)}"
            elif not m and body.strip() and not body.lstrip().startswith("#"):
                body = HIDDEN_LINE
            if any(s in body for s in scrub):
                body = HIDDEN_LINE
            out.append(body + ending)
        return out

    return redact(a, "old"), redact(b, "new")


def _scrub(lines: list[str], secrets: frozenset[str]) -> list[str]:
    out = []
    for line in lines:
        body = line.rstrip("\r\n")
        out.append(HIDDEN_LINE + line[len(body) :] if any(s in body for s in secrets) else line)
    return out


def secret_values(content: bytes | None, secret_keys: frozenset[str] | None) -> frozenset[str]:
    """The secret values in a rendered file, to hide wherever else they turn up: an env file's secret
    keys' values; every line of a file that is a secret as a whole (None: TLS keys)."""
    text = _text(content)
    if not text:
        return frozenset()
    if secret_keys is None:
        found = {line.strip() for line in text.split("\n")}
    else:
        values = _env_values(_lines(text))
        found = {values[k].strip('"') for k in secret_keys if k in values}
    return frozenset(v for v in found if len(v) >= MIN_SCRUB_ACROSS and not v.startswith("-----"))


def _env_values(lines: list[str]) -> dict[str, str]:
    values = {}
    for line in lines:
        m = _ENV_LINE.match(line.rstrip("\r\n"))
        if m:
            values[m.group(2)] = m.group(3)
    return values
