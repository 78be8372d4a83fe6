"""`funops prometheus targets|ca`: the inventory as Prometheus file-based service discovery, and the
certificates Prometheus verifies the agents with.

Only a node with an `agent:` section has something to scrape (its agent's /metrics); ssh and local
nodes without one are left out and named, so a reader knows why a node is missing. The agents'
certificates are self-signed, each pinned by `agent install`; the bundle is those certificates, each
checked against its pin (read from certs/agents/ when recorded there, else fetched from the agent
and checked before it is written), so Prometheus trusts exactly what funops trusts."""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography import x509

if TYPE_CHECKING:
    from ..load.project import Project
    from ..model.inventory import Node

_LABEL = re.compile(r"[^A-Za-z0-9_]")


@dataclass
class Targets:
    groups: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # node → why it has no target


def target(node: Node) -> str:
    from ..transports.agent import endpoint
    from ..transports.exchange import authority

    return authority(*endpoint(node))


def file_sd(project: Project) -> Targets:
    """One group per node (its labels differ): [{"targets": ["host:port"], "labels": {...}}]."""
    out = Targets()
    for name, node in sorted(project.nodes.items()):
        if node.agent is None:
            out.skipped[name] = f"transport {node.transport} without an agent: nothing to scrape"
            continue
        labels = {_label_name(k): str(v) for k, v in sorted(node.labels.items())}
        labels |= {"node": name, "transport": node.transport, "address": node.address}
        labels["mode"] = "pull" if node.pull is not None else "push"
        if node.pull is not None:
            labels["cohort"] = node.pull.cohort
        out.groups.append({"targets": [target(node)], "labels": labels})
    return out


def _label_name(key: str) -> str:
    """An inventory label as a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)."""
    name = _LABEL.sub("_", key)
    return f"_{name}" if name[:1].isdigit() else name


@dataclass
class Pinned:
    node: str
    target: str
    fingerprint: str
    pem: str
    names: list[str]  # the certificate's subjectAltName entries

    @property
    def verifiable(self) -> bool:
        """Prometheus (Go) checks the dialled host against the subjectAltName, never the CN."""
        host = self.target.rsplit(":", 1)[0].strip("[]")
        return host in self.names


def pinned_certificates(project: Project, timeout: float = 5) -> tuple[list[Pinned], dict[str, str]]:
    """Each agent node's certificate as pinned, and node → why none could be given."""
    from ..pull.publish import certificate_file
    from ..transports.agent import endpoint, read_pin

    found: list[Pinned] = []
    problems: dict[str, str] = {}
    for name, node in sorted(project.nodes.items()):
        if node.agent is None:
            continue
        pin = read_pin(project.root, node)
        if pin is None:
            problems[name] = "no pinned agent certificate (run `funops agent install` first)"
            continue
        recorded = certificate_file(project, name)
        der = _der(recorded.read_text(encoding="ascii")) if recorded.is_file() else None
        if der is None or hashlib.sha256(der).hexdigest() != pin:
            try:
                der = _fetch(*endpoint(node), timeout)
            except OSError as exc:
                problems[name] = f"cannot read its agent's certificate at {target(node)}: {exc}"
                continue
        if hashlib.sha256(der).hexdigest() != pin:
            problems[name] = (
                f"the agent at {target(node)} presents a certificate other than the one pinned "
                f"(sha256:{pin}): not trusted"
            )
            continue
        found.append(Pinned(name, target(node), pin, ssl.DER_cert_to_PEM_cert(der), _alt_names(der)))
    return found, problems


def bundle(pinned: list[Pinned]) -> str:
    """PEM blocks with a comment line each (PEM readers skip text between blocks)."""
    return "".join(f"# {p.node} {p.target} sha256:{p.fingerprint}\n{p.pem}" for p in pinned)


def _der(pem: str) -> bytes | None:
    try:
        return ssl.PEM_cert_to_DER_cert(pem)
    except ValueError:
        return None


def _fetch(host: str, port: int, timeout: float) -> bytes:
    """The certificate the agent presents; trusted only once its sha256 matches the pin (the caller)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the pin, checked by the caller, is the verification
    with socket.create_connection((host, port), timeout=timeout) as raw, context.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise OSError("no certificate presented")
    return der


def _alt_names(der: bytes) -> list[str]:
    try:
        ext = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        )
    except (ValueError, x509.ExtensionNotFound):
        return []
    names = [str(ip) for ip in ext.value.get_values_for_type(x509.IPAddress)]
    return names + list(ext.value.get_values_for_type(x509.DNSName))
