"""Where a command's metrics go: a Pushgateway (`--metrics-push URL`) or a node_exporter textfile
(`--metrics-textfile PATH`). Either failing is a warning: monitoring never changes a command's exit
code. The URL may carry credentials, so only its scheme and host are ever printed."""

from __future__ import annotations

import base64
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .. import __version__

JOB = "funops"
_PLAIN = re.compile(r"^[A-Za-z0-9._-]+$")


def describe(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")


def check_url(url: str) -> str | None:
    """Why `url` cannot be a Pushgateway, or None."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "--metrics-push needs the Pushgateway's http:// or https:// URL"
    return None


def push_url(base: str, grouping: dict[str, str]) -> str:
    """PUT target: /metrics/job/funops/<label>/<value>... A value that is not plain (a slash, empty)
    is sent base64url-encoded (`<label>@base64/<value>`), as the Pushgateway documents."""
    path = f"/metrics/job/{JOB}"
    for key, value in grouping.items():
        if _PLAIN.match(value):
            path += f"/{key}/{value}"
        else:
            encoded = base64.urlsafe_b64encode(value.encode()).decode() or "="
            path += f"/{key}@base64/{encoded}"
    return base.rstrip("/") + path


def push(base: str, grouping: dict[str, str], text: str, timeout: float = 10) -> str | None:
    """PUT replaces the whole group: the last run of a command is what the Pushgateway holds."""
    url, auth = _credentials(push_url(base, grouping))
    headers = {"Content-Type": "text/plain; version=0.0.4", "User-Agent": f"funops/{__version__}"}
    request = urllib.request.Request(url, data=text.encode(), method="PUT", headers=headers | auth)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return None if 200 <= response.status < 300 else f"{describe(base)} answered {response.status}"
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode(errors="replace").strip()
        return f"{describe(base)} answered {exc.code}" + (f": {detail}" if detail else "")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{describe(base)} did not take the metrics: {getattr(exc, 'reason', exc)}"


def _credentials(url: str) -> tuple[str, dict[str, str]]:
    """A Pushgateway behind basic auth: `https://user:password@host/` (best given in
    FUNOPS_METRICS_PUSH, not on a command line) becomes the URL without them and the header."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url, {}
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    token = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
    header = {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), header


def write_replacing(path: Path, text: str) -> str | None:
    """node_exporter's textfile convention (and what file_sd wants): write a temporary file in the
    same directory, then rename it over the target, so a reader never sees half a file."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)  # node_exporter usually runs as another user
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        return f"{path}: {exc.strerror or exc}"
    return None
