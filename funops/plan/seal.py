"""Secrets in a saved plan (README, "Saved plans"): never in clear, not even as a digest.

A saved plan's program holds the tasks that write files, the records of what is applied and the
release records — and a secret (an env file's `fromFile`/`fromEnv` value, a TLS key) is part of a
file's content and its sha256. Each unit of the program that holds one (a task, a managed entry, a
release record, a gated group) is moved into one **sealed** section: CMS-encrypted (openssl, as pull
mode seals bundles, pull/openssl.py) to a certificate whose key only the apply job holds
(`plan --out FILE --seal-to CERT`, `apply FILE --key KEY`). The job that plans on a pull request
needs only the certificate, so a pull request cannot read the secrets it plans with.

Why sealed rather than a reference read again at apply time: the apply job then runs exactly what
was planned — the bytes the plan's diff showed, checked against nothing it would have to re-render
(the env file's template, its quoting) — and needs no secret source of its own. Without --seal-to,
those units are left out (`withheld`) and `apply FILE` needs the repo to make them again, checking
they are still as planned."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import FunopsError
from ..resources import Resource
from ..state.node_state import NodeState

KEY_ENV = "FUNOPS_PLAN_KEY"  # the apply job's private key (PEM), when not given as --key


@dataclasses.dataclass
class Needles:
    """What would give a secret away: its resources' contents and content digests."""

    contents: list[bytes]
    digests: list[str]

    @classmethod
    def of(cls, resources: Iterable[Resource], state: NodeState | None = None) -> Needles:
        """The node's secret resources as desired, and as its state file says they were applied and
        kept in releases (an older secret's digest is as guessable as the current one's)."""
        secret = [r for r in resources if r.secret or r.secret_keys]
        contents = [r.content for r in secret if r.content]
        digests = [str(r.desired["sha256"]) for r in secret if r.desired.get("sha256")]
        if state is not None:
            for managed in state.managed.values():
                if (managed.model_extra or {}).get("secret") and (managed.applied or {}).get("sha256"):
                    digests.append(str(managed.applied["sha256"]))  # type: ignore[index]
            for recs in state.releases.values():
                for rec in recs:
                    digests += [
                        str(s.desired["sha256"])
                        for s in rec.resources
                        if s.secret and s.desired.get("sha256")
                    ]
        return cls(contents, sorted(set(digests)))

    def found_in(self, value: Any) -> bool:
        if isinstance(value, bytes):
            return any(c in value for c in self.contents) or any(d.encode() in value for d in self.digests)
        if isinstance(value, str):
            return any(d in value for d in self.digests) or any(
                c.decode("utf-8", "replace") in value for c in self.contents
            )
        if isinstance(value, dict):
            return any(self.found_in(k) or self.found_in(v) for k, v in value.items())
        if isinstance(value, list | tuple | set | frozenset):
            return any(self.found_in(v) for v in value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return any(self.found_in(getattr(value, f.name)) for f in dataclasses.fields(value))
        if hasattr(value, "model_dump"):
            return self.found_in(value.model_dump(mode="json"))
        return False


class Sealer:
    """Collects the program's secret units while it is written: `put` returns what the file holds."""

    def __init__(self) -> None:
        self.units: dict[str, Any] = {}

    def put(self, node: str, plain: Any, encoded: Any, needles: Needles) -> Any:
        if not needles.found_in(plain):
            return encoded
        ref = f"{node}/{len(self.units)}"
        self.units[ref] = encoded
        return {"sealed": ref}

    def seal(self, certificate_pem: bytes | None) -> str | None:
        """The sealed section (base64 CMS), or None when there is nothing to seal or no certificate
        (the units are then withheld)."""
        if not self.units or certificate_pem is None:
            return None
        from ..node.openssl import OpensslError, seal

        try:
            return base64.b64encode(seal(certificate_pem, json.dumps(self.units).encode())).decode()
        except OpensslError as exc:
            raise FunopsError(f"--seal-to: {exc}") from None


def read_certificate(path: Path) -> bytes:
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise FunopsError(f"--seal-to {path}: cannot read it: {exc.strerror or exc}") from None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise FunopsError(
            f"--seal-to {path}: not a PEM certificate (the apply job's, e.g. from openssl req -x509)"
        )
    return pem


def open_units(sealed: str, certificate_pem: str, key: Path | None, where: str) -> dict[str, Any]:
    """The sealed units, with the apply job's key (--key FILE, else $FUNOPS_PLAN_KEY)."""
    import tempfile

    from ..node.openssl import OpensslError, open_sealed

    if key is None and not os.environ.get(KEY_ENV):
        raise FunopsError(
            f"{where}: the plan's secrets are sealed: pass --key KEY (the private key of the certificate "
            f"it was sealed to) or set {KEY_ENV}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        cert = Path(tmp) / "cert.pem"
        cert.write_text(certificate_pem, encoding="utf-8")
        key_file = key
        if key_file is None:
            key_file = Path(tmp) / "key.pem"
            key_file.touch(mode=0o600)
            key_file.write_text(os.environ[KEY_ENV], encoding="utf-8")
        try:
            data = open_sealed(str(cert), str(key_file), base64.b64decode(sealed))
        except (OpensslError, ValueError) as exc:
            raise FunopsError(f"{where}: cannot open its sealed secrets with this key: {exc}") from None
    units = json.loads(data)
    if not isinstance(units, dict):
        raise FunopsError(f"{where}: its sealed section is not what funops seals")
    return units
