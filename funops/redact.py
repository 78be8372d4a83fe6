"""How hashes and secrets are shown: a short sha256 prefix, never a value (DESIGN §5)."""

from __future__ import annotations

import hashlib


def is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def fingerprint(value: object) -> str:
    """`sha256:1a2b3c4d…` of a value, or of the hash itself when given one."""
    text = str(value)
    digest = text if is_sha256(text) else hashlib.sha256(text.encode()).hexdigest()
    return f"sha256:{digest[:8]}…"
