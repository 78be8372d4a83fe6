"""`--notify URL`: POST the JSON report to a webhook. A failure is a warning, never a crash, and the
URL (which often carries a token) is never printed: only its scheme and host."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

from .. import __version__


def describe(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"


def check_url(url: str) -> str | None:
    """Why `url` cannot be a webhook, or None."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "--notify needs an http:// or https:// URL"
    return None


def post_json(url: str, body: str, timeout: float = 10) -> str | None:
    """POST `body`; return None on a 2xx answer, else what went wrong (without the URL)."""
    request = urllib.request.Request(
        url,
        data=body.encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": f"funops/{__version__}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if 200 <= response.status < 300:
                return None
            return f"{describe(url)} answered {response.status}"
    except urllib.error.HTTPError as exc:
        return f"{describe(url)} answered {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{describe(url)} did not take the report: {reason}"
