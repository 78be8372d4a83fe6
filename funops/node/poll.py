"""`funops-agent pull` on the node (run by funops-pull.timer): one poll of the store. Standard library
only: the engine that converges (pull/converge.py, on the agent's runtime) is handed in by the entry
point (agent/__main__.py), which imports it only when a poll has something to converge.

A poll: fetch the index with If-None-Match (unchanged: a 304, nothing else happens); check its
signature (openssl, the project's public key), that it is this node's, not older than the newest
generation this node accepted (its replay floor, kept in FLOOR_FILE as well as the status file: losing
one does not reopen replays), not expired, and due; fetch the sealed bundle, check its sha256, open it
with the agent's key; converge; record the outcome in the status file (the agent's `status` serves
it). The same content signed again (a newer generation, the same digest) is taken without converging.
A failed converge keeps no ETag, so the next poll tries again; a refused index is recorded and kept
refused until the store holds another.

Reads from the store are capped (MAX_INDEX_BYTES, MAX_BUNDLE_BYTES) and follow redirects only within
the store's own scheme and host: never from https to http, never to another server."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

from . import (
    FLOOR_FILE,
    MAX_BUNDLE_BYTES,
    MAX_INDEX_BYTES,
    PUBLIC_KEY_FILE,
    STATUS_FILE,
    bundle_key,
    index_key,
    openssl,
)
from . import index as idx

AGENT_TLS = "/etc/funops-agent/tls"
KEEP = ("current", "previous")  # the sealed bundles kept on the node: this generation and the one before


@dataclass
class PullConfig:
    """/etc/funops-agent/pull.json, as `funops agent install` writes it."""

    node: str
    store: str  # base URL: https://…, http://… or file://…
    public_key: str = PUBLIC_KEY_FILE
    state_dir: str = "/var/lib/funops"
    ca_file: str | None = None
    timeout: float = 30
    interval: float = 60
    splay: float = 30
    cert: str = f"{AGENT_TLS}/agent.crt"  # the agent's own: bundles are sealed to it
    key: str = f"{AGENT_TLS}/agent.key"
    root: str | None = None  # tests only: the node's files are under this directory

    @classmethod
    def load(cls, path: str) -> PullConfig:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        return cls(
            node=raw["node"],
            store=raw["store"],
            public_key=raw.get("publicKey", PUBLIC_KEY_FILE),
            state_dir=raw.get("stateDir", "/var/lib/funops"),
            ca_file=raw.get("caFile"),
            timeout=float(raw.get("timeoutSeconds", 30)),
            interval=float(raw.get("intervalSeconds", 60)),
            splay=float(raw.get("splaySeconds", 30)),
            cert=raw.get("cert", f"{AGENT_TLS}/agent.crt"),
            key=raw.get("key", f"{AGENT_TLS}/agent.key"),
            root=raw.get("root"),
        )

    def local(self, path: str) -> str:
        return f"{self.root}{path}" if self.root else path


class FetchError(Exception):
    pass


class StoreRefused(FetchError):
    """The store answered with what a node must not read: too large, or a redirect off the store."""


# The engine, given by the caller (pull/converge.py's `converge_index`, wired by agent/__main__.py):
# (the signed index, the opened bundle, the node's transport or None) → the outcome for the status file.
Converge = Callable[[idx.Index, bytes, Any], "dict[str, Any]"]


def main(config_path: str, converge: Converge) -> int:
    """One poll; its outcome as a JSON line on stdout (the journal keeps it). Exit 1 when the node
    failed to converge or refused what it found (funops-pull.service fails: the node's monitoring
    sees it); a store out of reach is not the node's failure (`funops status` shows it stale)."""
    report = poll(PullConfig.load(config_path), converge=converge)
    print(json.dumps(report, sort_keys=True))
    return 1 if report.get("result") in ("failed", "refused") else 0


def poll(
    config: PullConfig, now: dt.datetime | None = None, transport: Any = None, *, converge: Converge
) -> dict[str, Any]:
    """One poll (`transport`: the node converged, for tests; default this machine). `converge` runs
    the engine, which the node side does not import (pydantic, jinja2: the agent's runtime)."""
    now = now or dt.datetime.now(dt.timezone.utc)  # noqa: UP017 (dt.UTC: 3.11; nodes run 3.9)
    status = read_status(config)
    status.update(
        node=config.node, mode="pull", store=config.store, intervalSeconds=config.interval,
        splaySeconds=config.splay, lastPoll=now.isoformat(timespec="seconds"),
    )  # fmt: skip
    floor = max(int(status.get("generation") or 0), int(status.get("floor") or 0), read_floor(config))
    _keep_floor(config, status, floor)  # in both places again, if one was lost
    try:
        fetched = fetch(config, index_key(config.node), status.get("indexEtag"), MAX_INDEX_BYTES)
    except StoreRefused as exc:  # the store answered, wrongly: the node's failure to report, not a stale link
        status["lastContact"], status["storeError"] = status["lastPoll"], None
        _result(status, "refused", str(exc))
        return _save(config, status)
    except FetchError as exc:  # the node keeps running what it has; `funops status` shows it stale
        status["storeError"] = f"cannot reach the store: {exc}"
        return _save(config, status)
    status["lastContact"], status["storeError"] = status["lastPoll"], None
    if fetched is None:  # 304: the index did not change; what the last poll concluded stands
        return _save(config, status, polled="not-modified")
    data, etag = fetched
    applied = int(status.get("generation") or 0)
    try:
        index = idx.read(data, lambda d, s: openssl.verify(config.local(config.public_key), d, s))
        idx.check(index, config.node, floor, now)
        if index.generation == applied and status.get("digest") not in (None, index.digest):
            raise idx.IndexRefused(
                f"generation {applied} was applied here with other content: a generation signed twice "
                "(the signer's clock went back?): publish again"
            )
    except (idx.IndexRefused, openssl.OpensslError) as exc:
        status["indexEtag"] = etag  # refused until the store holds another index
        _result(status, "refused", str(exc))
        return _save(config, status)
    _keep_floor(config, status, index.generation)
    status["published"] = {"generation": index.generation, "revision": index.revision,
                           "cohort": index.cohort, "digest": index.digest}  # fmt: skip
    if index.digest == status.get("digest") and status.get("result") == "converged":
        # The content applied, signed again (a new generation and notAfter): nothing to converge.
        status.update(generation=index.generation, revision=index.revision, indexEtag=etag)
        return _save(config, status)
    if not idx.due(index, now):
        _result(status, "waiting", f"generation {index.generation} applies from {index.earliest_apply_at}")
        return _save(config, status)
    try:
        content = _open_bundle(config, index)
    except (FetchError, openssl.OpensslError, ValueError) as exc:
        _result(status, "failed", f"generation {index.generation}: {exc}")
        return _save(config, status)
    status.update(converge(index, content, transport))
    if status["result"] == "converged":
        status["indexEtag"] = etag
    return _save(config, status)


def _open_bundle(config: PullConfig, index: idx.Index) -> bytes:
    if index.bundle != bundle_key(config.node, index.bundle_sha256):
        raise ValueError(f"the index names {index.bundle}, not this node's bundle of that digest")
    fetched = fetch(config, index.bundle, None, MAX_BUNDLE_BYTES)
    assert fetched is not None
    sealed = fetched[0]
    got = hashlib.sha256(sealed).hexdigest()
    if got != index.bundle_sha256:
        raise ValueError(f"the bundle's sha256 is {got}, the signed index says {index.bundle_sha256}")
    _keep(config, sealed)
    return openssl.open_sealed(config.local(config.cert), config.local(config.key), sealed)


def fetch(config: PullConfig, key: str, etag: str | None, limit: int) -> tuple[bytes, str] | None:
    """(body, its ETag), or None when it is unchanged since `etag` (an HTTP 304). A body over `limit`
    bytes is refused before it is held (StoreRefused), as is a redirect off the store's scheme and host."""
    url = f"{config.store.rstrip('/')}/{key}"
    if urlsplit(url).scheme == "file":
        try:
            with open(urlsplit(url).path, "rb") as f:
                body = _capped(url, f, limit)
        except OSError as exc:
            raise FetchError(f"{url}: {exc.strerror or exc}") from exc
        tag = f'"{hashlib.sha256(body).hexdigest()}"'
        return None if tag == etag else (body, tag)
    request = urllib.request.Request(url, headers={"If-None-Match": etag} if etag else {})
    context = ssl.create_default_context(cafile=config.ca_file) if url.startswith("https:") else None
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _SameOrigin(url))
    try:
        with opener.open(request, timeout=config.timeout) as response:
            size = response.headers.get("Content-Length")
            if size and size.isdigit() and int(size) > limit:
                raise StoreRefused(_oversize(url, int(size), limit))
            body = _capped(url, response, limit)
            return body, response.headers.get("ETag") or f'"{hashlib.sha256(body).hexdigest()}"'
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return None
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise FetchError(f"{url}: {getattr(exc, 'reason', None) or exc}") from exc


class _SameOrigin(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to the store's own scheme and host: https never turns into http, and
    the node never reads what it converges from a server it was not configured with."""

    def __init__(self, url: str) -> None:
        self.origin = _origin(url)

    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Message, newurl: str
    ) -> urllib.request.Request | None:
        target = urljoin(req.full_url, newurl)
        if _origin(target) != self.origin:
            fp.close()
            raise StoreRefused(
                f"{req.full_url}: HTTP {code} redirects to {target}, off the store's "
                f"{self.origin[0]}://{self.origin[1]}: refused (a redirect must stay on the store's "
                "scheme and host)"
            )
        return super().redirect_request(req, fp, code, msg, headers, target)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.netloc.rpartition("@")[2]).lower()


def _capped(url: str, stream: Any, limit: int) -> bytes:
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise StoreRefused(_oversize(url, None, limit))
    return body


def _oversize(url: str, size: int | None, limit: int) -> str:
    said = f"{size} bytes" if size is not None else f"more than {limit} bytes"
    return f"{url}: {said}, and a node reads at most {limit} bytes of it from the store: refused"


def status_path(config: PullConfig) -> str:
    return config.local(f"{config.state_dir.rstrip('/')}/{STATUS_FILE}")


def read_status(config: PullConfig) -> dict[str, Any]:
    try:
        with open(status_path(config), encoding="utf-8") as f:
            doc = json.load(f)
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def floor_path(config: PullConfig) -> str:
    return config.local(f"{config.state_dir.rstrip('/')}/{FLOOR_FILE}")


def read_floor(config: PullConfig) -> int:
    """The replay floor kept apart from the status file (0 when there is none)."""
    try:
        with open(floor_path(config), encoding="utf-8") as f:
            found = json.load(f).get("generation")
        return found if isinstance(found, int) else 0
    except (OSError, ValueError, AttributeError):
        return 0


def _keep_floor(config: PullConfig, status: dict[str, Any], generation: int) -> None:
    """`generation` as the newest accepted, when it is newer than the floor file's: there first, then in
    the status (saved at the poll's end)."""
    status["floor"] = max(int(status.get("floor") or 0), generation)
    if generation <= read_floor(config):
        return
    path = floor_path(config)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    aside = f"{path}.new"
    with open(aside, "w", encoding="utf-8") as f:
        json.dump({"generation": generation}, f)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(aside, path)


def _result(status: dict[str, Any], result: str, error: str | None) -> None:
    status["result"], status["error"] = result, error


def _save(config: PullConfig, status: dict[str, Any], polled: str = "fetched") -> dict[str, Any]:
    status["lastPollFetch"] = polled
    path = status_path(config)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    aside = f"{path}.new"
    with open(aside, "w", encoding="utf-8") as f:
        json.dump(status, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(aside, path)
    return status


def _keep(config: PullConfig, sealed: bytes) -> None:
    """The sealed bundle beside the state (only this node's key opens it); the one before stays too."""
    where = config.local(f"{config.state_dir.rstrip('/')}/pull")
    os.makedirs(where, mode=0o700, exist_ok=True)
    current, previous = (f"{where}/{name}.cms" for name in KEEP)
    if os.path.exists(current):
        with open(current, "rb") as f:
            if f.read() == sealed:
                return
        os.replace(current, previous)
    with open(current, "wb") as f:
        f.write(sealed)
