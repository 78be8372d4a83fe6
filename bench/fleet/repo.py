"""The controller's side of the simulated fleet: the shared agent certificate and token, and a
funops repo whose inventory holds N `transport: agent` nodes with their pins and token files."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

INGRESS_EVERY = 50  # one node in 50 is an ingress node (its nginx site lists every endpoint)

# The desired state of every node: a systemd app (unit file, env file, a config file) whose process
# health check the simulated systemd passes once the unit is started; a Service, and an Ingress on
# the nodes labelled role=ingress (an nginx site: `nginx -t` and a reload).
MANIFESTS = """\
apiVersion: funops/v1
kind: Application
metadata: {name: fleet}
spec:
  type: systemd
  selector: {}
  version: "1"
  command: /usr/bin/python3 -m http.server --bind {{ node.bind }} --directory /srv/fleet 8090
  port: 8090
  env:
    GREETING: "hello from {{ node.name }}"
    LOG_LEVEL: info
  configFiles:
    - {path: /srv/fleet/health, content: "ok\\n"}
  healthCheck: {type: process, interval: 0.2, retries: 20}
---
apiVersion: funops/v1
kind: Service
metadata: {name: fleet}
spec: {app: fleet}
---
apiVersion: funops/v1
kind: Ingress
metadata: {name: fleet}
spec:
  selector: {matchLabels: {role: ingress}}
  domains: [fleet.funops.test]
  rules: [{path: /, service: fleet}]
"""


def credentials(directory: Path) -> tuple[str, str]:
    """A self-signed certificate and key shared by every simulated node, and a token: (fingerprint,
    token). The agents read agent.crt, agent.key and token.sha256 in `directory`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "funops simulated fleet")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7)).sign(key, hashes.SHA256())
    )  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (directory / "agent.key").write_bytes(pem_key)
    (directory / "agent.key").chmod(0o600)
    (directory / "agent.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    token = secrets.token_hex(24)
    (directory / "token.sha256").write_text(hashlib.sha256(token.encode()).hexdigest() + "\n")
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(), token


def write_repo(repo: Path, addresses: list[str], port: int, fingerprint: str, token: str) -> list[str]:
    """The fleet repo for these node addresses; the node names (n001, n002, …)."""
    width = max(3, len(str(len(addresses))))
    names = [f"n{i:0{width}d}" for i in range(1, len(addresses) + 1)]
    (repo / "manifests").mkdir(parents=True, exist_ok=True)
    (repo / "inventory").mkdir(exist_ok=True)
    tokens = repo / ".funops" / "agent"
    tokens.mkdir(parents=True, exist_ok=True)
    # 64 nodes at once (the default is 20): the setting an operator of a fleet this size raises.
    # Here, with the nodes on the controller's two CPUs, more probes in flight keep both busy: a
    # 2,000-node no-op plan's wall 0.84-0.87 of 20's (alternating pairs, bench/README.md).
    settings = {"apiVersion": "funops/v1", "project": "fleet", "parallel": 64,
                "strategy": {"batchSize": "100%", "maxFailures": 0}}  # fmt: skip
    (repo / "funops.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    (repo / "manifests" / "fleet.yaml").write_text(MANIFESTS)
    nodes = []
    for i, (name, address) in enumerate(zip(names, addresses, strict=True)):
        node = {"name": name, "address": address, "bindAddress": address,
                "agent": {"url": f"https://{address}:{port}"}}  # fmt: skip
        if i % INGRESS_EVERY == 0:
            node["labels"] = {"role": "ingress"}
        nodes.append(node)
        (tokens / f"{name}.token").write_text(token + "\n")
        (tokens / f"{name}.token").chmod(0o600)
    inventory = {"defaults": {"transport": "agent"}, "nodes": nodes}
    (repo / "inventory" / "fleet.yaml").write_text(yaml.safe_dump(inventory, sort_keys=False))
    pins = "".join(f"{a}:{port} sha256:{fingerprint}\n" for a in addresses)
    (repo / "agent_known_hosts").write_text(pins)
    return names
