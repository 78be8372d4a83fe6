"""`funops init`: the files of a new funops repo — settings, an inventory, one sample app — that
`funops validate` accepts as written. Nothing is written when the directory already holds a repo."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import FunopsError
from .hostkeys import HostKey, HostSpec

KNOWN_HOSTS = "known_hosts"


class ScaffoldError(FunopsError):
    """The directory cannot take a new repo."""


SETTINGS = """\
# funops project settings; every key is optional (see the README).
apiVersion: funops/v1
project: {project}
journal: .funops/journal.jsonl
strategy:                 # default rollout of every app: one node at a time, stop at the first failure
  batchSize: 1
  maxFailures: 0
"""

LOCAL_INVENTORY = """\
# One node on the local transport: its files go under .funops/nodes/node1/ of this repo, and this
# machine's services are never touched, so `funops validate` and `plan` work with no servers.
# Replace it with your servers (transport: ssh), or run `funops init --host NAME=ADDR` in a new dir.
defaults:
  transport: local
nodes:
  - name: node1
    address: 127.0.0.1
    root: .funops/nodes/node1
"""

SSH_INVENTORY_HEAD = """\
# The servers funops manages, over ssh. Their host keys are in known_hosts (from ssh-keyscan, confirmed
# at `funops init`): a changed key is refused. Your key comes from the ssh agent or ~/.ssh; set
# ssh.identityFile to use another.
defaults:
  transport: ssh
  ssh:
    knownHostsFile: known_hosts
nodes:
"""

SAMPLE_APP = """\
# A systemd app on every node: a static page served by python3's http.server. `funops plan` shows
# what it writes; edit it, or add more apps next to it.
apiVersion: funops/v1
kind: Application
metadata:
  name: hello
spec:
  type: systemd
  selector: {}            # every node
  version: "1"
  command: /usr/bin/python3 -m http.server --bind {{ node.bind }} --directory /srv/hello {{ app.port }}
  port: 8080
  configFiles:
    - path: /srv/hello/index.html
      content: |
        <h1>hello {{ release.version }} from {{ node.name }}</h1>
    - path: /srv/hello/health
      content: "ok\\n"
  healthCheck: {type: http, path: /health, interval: 1, retries: 20}
---
apiVersion: funops/v1
kind: Service
metadata:
  name: hello
spec:
  app: hello
"""

GITIGNORE = """\
# funops's local state: the apply journal and the local nodes' files
.funops/
"""


@dataclass(frozen=True)
class Host:
    spec: HostSpec
    keys: list[HostKey]


def project_name(root: Path) -> str:
    """The directory's name as a project name (lowercase letters, digits, '-'), or "funops"."""
    name = re.sub(r"[^a-z0-9]+", "-", root.resolve().name.lower()).strip("-")[:63].strip("-")
    return name or "funops"


SCHEMA_DIR = "schemas"  # the editor schemas, which the YAML files below name in their first line


def files(project: str, hosts: Sequence[Host]) -> dict[str, str]:
    """The new repo's files, by path relative to its root (and .gitignore, see write)."""
    yaml_files = {
        "funops.yaml": ("settings", SETTINGS.format(project=json.dumps(project))),
        "inventory/nodes.yaml": ("inventory", ssh_inventory(hosts) if hosts else LOCAL_INVENTORY),
        "manifests/hello.yaml": ("manifest", SAMPLE_APP),
    }
    out = {path: schema_header(path, what) + text for path, (what, text) in yaml_files.items()}
    out.update(schema_files())
    if hosts:
        out[KNOWN_HOSTS] = "".join(f"{key.line}\n" for host in hosts for key in host.keys)
    return out


def schema_header(path: str, what: str) -> str:
    """The line that lets an editor with the YAML language server check and complete the file."""
    up = "../" * path.count("/")
    return f"# yaml-language-server: $schema={up}{SCHEMA_DIR}/{what}.schema.json\n"


def schema_files() -> dict[str, str]:
    """The editor schemas as files (`funops schema --write` refreshes them after an upgrade)."""
    from .schemas import EDITOR_SCHEMAS, schema_for

    return {
        f"{SCHEMA_DIR}/{what}.schema.json": json.dumps(schema_for(what), indent=2, sort_keys=True) + "\n"
        for what in EDITOR_SCHEMAS
    }


def ssh_inventory(hosts: Sequence[Host]) -> str:
    lines = [SSH_INVENTORY_HEAD.rstrip("\n")]
    for host in hosts:
        spec = host.spec
        # JSON strings are YAML scalars: an IPv6 address or odd name stays one value.
        lines += [f"  - name: {json.dumps(spec.name)}", f"    address: {json.dumps(spec.address)}"]
        if spec.port != 22:
            lines.append(f"    port: {spec.port}")
        lines.append(f"    user: {spec.user}")
    return "\n".join(lines) + "\n"


def check_target(root: Path) -> None:
    """Refuse before any host is scanned or file written."""
    if (root / "funops.yaml").exists():
        raise ScaffoldError(
            f"{root / 'funops.yaml'} exists: {root} is already a funops repo; nothing written"
        )
    if root.exists() and not root.is_dir():
        raise ScaffoldError(f"{root} exists and is not a directory; nothing written")
    clashes = [p for p in files("x", [Host(HostSpec("x", "x"), [])]) if (root / p).exists()]
    if clashes:
        raise ScaffoldError(f"{root} already has {', '.join(sorted(clashes))}; nothing written")


def write(root: Path, project: str, hosts: Sequence[Host]) -> list[Path]:
    """Write the repo's files (after check_target); returns their paths."""
    check_target(root)
    written = []
    for rel, content in files(project, hosts).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    # An existing .gitignore (init in a git repo) keeps its lines and gains ours.
    ignore = root / ".gitignore"
    old = ignore.read_text(encoding="utf-8") if ignore.exists() else ""
    if ".funops/" not in old.splitlines():
        ignore.write_text(
            old + ("\n" if old and not old.endswith("\n") else "") + GITIGNORE, encoding="utf-8"
        )
        written.append(ignore)
    return written
