"""Host keys for `funops init --host`: what a host spec means, ssh-keyscan, and the fingerprints people
compare before trusting a key (the ssh transport is strict: it only talks to keys in known_hosts)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import subprocess
from dataclasses import dataclass

from .errors import FunopsError


class HostKeyError(FunopsError):
    """A --host value is malformed, or its host gave no key."""


@dataclass(frozen=True)
class HostSpec:
    name: str
    address: str
    port: int = 22
    user: str = "root"


@dataclass(frozen=True)
class HostKey:
    line: str  # the known_hosts line, as ssh-keyscan printed it
    key_type: str
    fingerprint: str  # SHA256:…, as `ssh-keygen -lf` shows it


_SPEC = re.compile(
    r"(?P<name>[^=]+)=(?:(?P<user>[^@]+)@)?(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:@\[\]]+))(?::(?P<port>\d+))?"
)


def parse_host(spec: str) -> HostSpec:
    """`NAME=[USER@]HOST[:PORT]` (an IPv6 address in brackets), checked as the inventory checks a node."""
    from pydantic import ValidationError

    from .model.inventory import Node

    match = _SPEC.fullmatch(spec)
    if match is None:
        raise HostKeyError(f"--host {spec!r}: expected NAME=[USER@]HOST[:PORT], e.g. web1=root@10.0.0.5:22")
    host = HostSpec(
        name=match["name"],
        address=match["v6"] or match["host"],
        port=int(match["port"] or 22),
        user=match["user"] or "root",
    )
    try:
        Node.model_validate(
            {"name": host.name, "address": host.address, "port": host.port, "user": host.user}
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise HostKeyError(f"--host {spec!r}: {field}: {first['msg']}") from None
    return host


def fingerprint(key_base64: str) -> str:
    """SHA256 of the key blob, base64 without padding: what `ssh-keygen -lf` prints."""
    try:
        blob = base64.b64decode(key_base64, validate=True)
    except binascii.Error as exc:
        raise HostKeyError(f"not a base64 key blob: {exc}") from None
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def keyscan(host: HostSpec, timeout: int = 5) -> list[HostKey]:
    """The host's public keys, from the openssh client's ssh-keyscan (not yet trusted: show their
    fingerprints and let a person confirm)."""
    args = ["ssh-keyscan", "-T", str(timeout)]
    if host.port != 22:
        args += ["-p", str(host.port)]
    try:
        done = subprocess.run(
            [*args, "--", host.address], capture_output=True, text=True, timeout=timeout * 4, check=False
        )
    except FileNotFoundError:
        raise HostKeyError("ssh-keyscan not found: install the openssh client") from None
    except subprocess.TimeoutExpired:
        raise HostKeyError(f"host {host.name} ({host.address}): ssh-keyscan timed out") from None
    keys = []
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and not line.startswith("#"):
            keys.append(HostKey(" ".join(parts[:3]), parts[1], fingerprint(parts[2])))
    if not keys:
        raise HostKeyError(
            f"host {host.name} ({host.address}:{host.port}): ssh-keyscan returned no host key "
            "(is sshd listening there?)"
        )
    return sorted(keys, key=lambda k: k.line)  # ssh-keyscan answers in any order
