"""How hashes and secrets are shown: a short sha256 prefix, never a value, so a plan, a report or a log
can go to a pull request or a chat without leaking a secret."""

from __future__ import annotations

import hashlib
import hmac


def is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def fingerprint(value: object) -> str:
    """`sha256:1a2b3c4d…` of a value, or of the hash itself when given one."""
    text = str(value)
    digest = text if is_sha256(text) else hashlib.sha256(text.encode()).hexdigest()
    return f"sha256:{digest[:8]}…"


def keyed_fingerprint(value: object, key: bytes | None) -> str:
    """A digest of secret material as it may be shown: `hmac:1a2b3c4d…`, keyed with the node's
    fingerprint key (a random file only root on the node can read, created by the first apply; the
    controller holds it in memory only). Without the key nobody can confirm a guessed secret against
    it; a node not applied yet has no key, and its secret digests show as `hmac:(no key yet)`. A
    per-node key works for CI runners without local state and for saved plans (the same key when
    planning and applying), which a controller-side key would not."""
    if value is None:
        return "hmac:(none)"
    if key is None:
        return "hmac:(no key yet)"
    return "hmac:" + hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()[:8] + "…"
