"""The publisher's side: a funops repo whose inventory holds N pull-mode nodes, the publishing key
pair, and one agent key and certificate shared by every simulated node (recorded and pinned per node,
as `funops agent install` would); and each node's root with what `agent install` puts there."""

from __future__ import annotations

import hashlib
import shutil
import ssl
import subprocess
from pathlib import Path

import yaml

from bench.fleet import serve, shims
from funops.pull import keys

# The nodes' agent URLs: pinned, never contacted by the bench. A /16 of loopback of their own (no .0,
# .255): ≈ 64,000 nodes, clear of the lab's slots (127.0.S.k), the store and the agent fleet (127.0.200.x…).
AGENT_FIRST = "127.204.0.1"
AGENT_PORT = 7391

# Every node: a systemd app (unit, env file with a secret, a config file) whose process health
# check the simulated systemd passes once the unit is started. VERSION changes per generation.
MANIFEST = """\
apiVersion: funops/v1
kind: Application
metadata: {name: pulled}
spec:
  type: systemd
  selector: {}
  version: "VERSION"
  command: /usr/bin/python3 -m http.server --bind 127.0.0.1 --directory /srv/pulled 8090
  port: 8090
  env:
    GREETING: "hello from {{ node.name }}"
    API_TOKEN: {fromFile: secrets/api-token}
  configFiles:
    - {path: /srv/pulled/health, content: "ok\\n"}
  healthCheck: {type: process, interval: 0.2, retries: 150}
"""


def credentials(directory: Path) -> str:
    """The publishing key pair (publish.key, publish.pub) and the shared agent key and certificate
    (agent.key, agent.crt) in `directory`; the certificate's sha256 (its pin)."""
    directory.mkdir(parents=True, exist_ok=True)
    private, public = keys.generate()
    (directory / "publish.key").write_bytes(private)
    (directory / "publish.pub").write_bytes(public)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-days", "7", "-subj", "/CN=funops simulated puller",
         "-keyout", directory / "agent.key", "-out", directory / "agent.crt"],
        check=True, capture_output=True,
    )  # fmt: skip
    pem = (directory / "agent.crt").read_text()
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def names(count: int) -> list[str]:
    width = max(3, len(str(count)))
    return [f"n{i:0{width}d}" for i in range(1, count + 1)]


def write_repo(repo: Path, creds: Path, nodes: list[str], store_dir: Path, store_url: str,
               interval: float, splay: float) -> None:  # fmt: skip
    """The repo: settings (the store directory publish writes), N pull nodes reading `store_url`."""
    for sub in ("manifests", "inventory", "secrets", "certs/agents", ".funops"):
        (repo / sub).mkdir(parents=True, exist_ok=True)
    settings = {"apiVersion": "funops/v1", "project": "pullbench", "pull": {"store": str(store_dir)}}
    (repo / "funops.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    (repo / "secrets" / "api-token").write_text("pull-bench-token\n")
    shutil.copy(creds / "publish.key", repo / ".funops" / "pull-signing.key")
    shutil.copy(creds / "publish.pub", repo / "certs" / "pull-signing.pub")
    set_version(repo, 1)
    addresses = serve.addresses(AGENT_FIRST, len(nodes))
    pull = {"store": store_url, "intervalSeconds": interval, "splaySeconds": splay}
    inventory = {
        "defaults": {"transport": "agent"},
        "nodes": [
            {"name": n, "address": a, "agent": {"url": f"https://{a}:{AGENT_PORT}"},
             "pull": {**pull, "cohort": "canary" if i % 10 == 0 else "main"}}
            for i, (n, a) in enumerate(zip(nodes, addresses, strict=True))
        ],
    }  # fmt: skip
    (repo / "inventory" / "pull.yaml").write_text(yaml.safe_dump(inventory, sort_keys=False))
    pem = (creds / "agent.crt").read_bytes()
    pin = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.decode())).hexdigest()
    for n in nodes:  # what `agent install` records: the certificate the node's bundles are sealed to
        (repo / "certs" / "agents" / f"{n}.pem").write_bytes(pem)
    (repo / "agent_known_hosts").write_text("".join(f"{a}:{AGENT_PORT} sha256:{pin}\n" for a in addresses))


def set_version(repo: Path, version: int) -> None:
    (repo / "manifests" / "pulled.yaml").write_text(MANIFEST.replace("VERSION", str(version)))


def prepare_root(root: Path, creds: Path) -> None:
    """A node as never converged: only what `agent install` leaves (the agent's key and certificate,
    the publishing public key) and the simulated services' shims."""
    shutil.rmtree(root, ignore_errors=True)
    tls = root / "etc/funops-agent/tls"
    tls.mkdir(parents=True)
    shutil.copy(creds / "agent.crt", tls / "agent.crt")
    shutil.copy(creds / "agent.key", tls / "agent.key")
    shutil.copy(creds / "publish.pub", root / "etc/funops-agent/pull-signing.pub")
    shims.install(root)
