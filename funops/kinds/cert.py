"""Certificates from an ACME CA on the edge nodes that serve them (issue 27).

On a node, a Certificate NAME lives in `/etc/funops/certs/NAME/`: one directory per version, named by
the certificate's serial (`fullchain.pem` 0644, `privkey.pem` 0600 root), and a `current` link the
nginx site reads through. A new version is written beside the others in the first round trip
(nothing serves it yet); after the health gate `current` is switched (a new link renamed over it),
`nginx -t`, reload — a failed test switches it back, so nginx keeps serving the old one. The newest
`keep` versions stay, for a rollback that switches the link back without the CA.

The gather reads each node's `current` certificate (never the key): the controller parses it
(funops/acme/inspect.py) into serial, names and validity. Which serial a node should serve is the
fleet's decision (funops/certificates.py sets the desired serial after the gather); a key and
certificate only reach a resource when apply has them (funops/certs/phase.py).
"""

from __future__ import annotations

import base64
import binascii
import re
import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..resources import NGINX_RELOAD, Resource
from ..tasks import model as m
from .base import WRITE, GatedGroup, NodeWork, PathMap, ResourceKind, Sections, Step

if TYPE_CHECKING:
    from .facts import LiveFacts

CERTS_DIR = "/etc/funops/certs"
NEW = "(new)"  # the desired serial of a certificate apply is to obtain from the CA
SERIAL = re.compile(r"[0-9a-f]{1,64}")

# Per certificate: its dir, where `current` points, the version dirs (newest first), the fullchain.
_PROBE = """\
echo '@@funops certs'
funops_cert() {{ [ -L "$1/current" ] || return 0
  printf '%s|%s|%s|' "$1" "$(readlink -- "$1/current")" "$(find "$1" -mindepth 1 -maxdepth 1 -type d \\
    ! -name '.*' -printf '%T@ %f\\n' | sort -rn | cut -d' ' -f2 | tr '\\n' ' ')"
  base64 < "$1/current/fullchain.pem" 2>/dev/null | tr -d '\\n'; echo; }}
{calls}
"""


def cert_dir(name: str) -> str:
    return f"{CERTS_DIR}/{name}"


def current(name: str) -> str:
    return f"{cert_dir(name)}/current"


def split_bundle(content: bytes) -> tuple[bytes, bytes]:
    """A resource's content is the key's PEM then the fullchain's (one value, never printed)."""
    end = re.search(rb"-----END [A-Z ]*PRIVATE KEY-----\r?\n?", content)
    if end is None:
        raise ValueError("certificate bundle holds no private key")
    key = content[: end.end()]
    return key if key.endswith(b"\n") else key + b"\n", content[end.end() :].lstrip()


class CertKind(ResourceKind):
    name = "cert"
    article = "a certificate"
    facts_alias = "certs"
    delete_rank = 3
    summary_fields = ("serial", "domains")

    def probe(self, names: list[str], path: PathMap) -> str:
        calls = "\n".join(f"funops_cert {shlex.quote(path(cert_dir(n)))}" for n in names)
        return _PROBE.format(calls=calls)

    def parse(self, sections: Sections, unmap: PathMap, facts: LiveFacts) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for line in sections.get("certs", []):
            directory, link, versions, encoded = [*line.split("|", 3), "", "", ""][:4]
            name = unmap(directory).rstrip("/").rsplit("/", 1)[-1]
            info: dict[str, Any] = {"link": link, "versions": versions.split()}
            info |= _describe(encoded)
            if not info.keys() & {"serial", "error"} and SERIAL.fullmatch(link):
                info["serial"] = link  # read on the node (pull mode): the version dir funops named
            found[name] = info
        return found

    def live(self, name: str, facts: LiveFacts) -> dict[str, Any] | None:
        info = facts.live[self.name].get(name)
        if info is None:
            return None
        domains = info.get("domains")
        return {
            "serial": info.get("serial") or "(unreadable)",
            "domains": None if domains is None else list(domains),
        }

    def in_terms_of(
        self, desired: Mapping[str, Any], live: dict[str, Any], name: str, facts: LiveFacts
    ) -> dict[str, Any]:
        """Read on the node (pull mode: no certificate parser there), the names are not known: the
        version funops deployed under that serial has the names it was ordered for."""
        if live.get("domains") is None and live.get("serial") == desired.get("serial"):
            return {**live, "domains": desired.get("domains")}
        return live

    # ---- tasks -------------------------------------------------------------------------------------

    def tasks(self, work: NodeWork) -> list[Step]:
        """A new version's files, beside the served one (nothing reads them until `current` moves)."""
        steps = []
        for _, res in work.writes:
            if res.content is None or not SERIAL.fullmatch(str(res.desired.get("serial", ""))):
                continue  # a version the node keeps already (a rollback: only switched), or none yet
            key, chain = split_bundle(res.content)
            version = f"{cert_dir(res.name)}/{_serial(res)}"
            steps += [
                Step(WRITE, m.WriteFile(f"{version}/fullchain.pem", "", "0644", "root", "root", None,
                                        chain, label=f"{res.id} {_serial(res)} fullchain.pem")),
                Step(WRITE, m.WriteFile(f"{version}/privkey.pem", "", "0600", "root", "root", None,
                                        key, label=f"{res.id} {_serial(res)} privkey.pem")),
            ]  # fmt: skip
        return steps

    def gated(self, work: NodeWork) -> GatedGroup | None:
        """Switch `current`, `nginx -t`, reload; undone by pointing it back where it was. A resource
        apply has no certificate for (pull mode: `publish` orders none yet) is left as it is."""
        writes = [(c, r) for c, r in work.writes if SERIAL.fullmatch(str(r.desired.get("serial", "")))]
        if not writes:
            return None
        links, undo = [], []
        for change, res in writes:
            links.append(m.PointLink(current(res.name), _serial(res)))
            old = next((f.old for f in change.fields if f.field == "serial"), None)
            was = old if isinstance(old, str) and SERIAL.fullmatch(old) else None
            undo.append(m.PointLink(current(res.name), was) if was else m.DeletePaths((current(res.name),)))
        return GatedGroup(
            tasks=[*links, m.NginxTest(), m.NginxReload()],
            undo=undo,
            resources=[res for _, res in writes],
            handler=NGINX_RELOAD,
        )

    def housekeeping(self, work: NodeWork) -> list[m.Task]:
        """The newest versions stay (a rollback's); a certificate no ingress here serves goes whole
        (after the sites that named it were replaced)."""
        tasks: list[m.Task] = [
            m.PruneVersions(cert_dir(res.name), int((res.run_spec or {}).get("keep", 5)))
            for res in work.desired.values()
            if res.kind == self.name
        ]
        tasks += [m.RemoveArtifact(current(c.id.name)) for c in work.deletes]
        return tasks


def _serial(res: Resource) -> str:
    serial = str(res.desired.get("serial", ""))
    if not SERIAL.fullmatch(serial):  # a resource not given its certificate: apply never gets here
        raise ValueError(f"{res.id}: no certificate to deploy (serial {serial!r})")
    return serial


def _describe(encoded: str) -> dict[str, Any]:
    """The served certificate's serial, names and validity; an error instead when it cannot be read."""
    try:
        from ..acme.inspect import describe  # cryptography: the controller's side only
    except ImportError:  # the node's side (pull mode): the standard library only
        return {}
    try:
        info = describe(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError) as exc:
        return {"error": f"current certificate cannot be read: {str(exc)[:200] or type(exc).__name__}"}
    return {
        "serial": info.serial,
        "domains": sorted(info.domains),
        "notBefore": info.not_before.isoformat(),
        "notAfter": info.not_after.isoformat(),
        "issuer": info.issuer,
        "keyType": _key_type(base64.b64decode(encoded)),
    }


def _key_type(pem: bytes) -> str:
    """ecdsa-p256, rsa2048, rsa3072 (as a Certificate's keyType says), or what else it is."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key = x509.load_pem_x509_certificate(pem).public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ecdsa-p256" if key.curve.name == "secp256r1" else f"ecdsa-{key.curve.name}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"rsa{key.key_size}"
    return type(key).__name__


KIND = CertKind()
