"""The lab's SSH key pair and the OpenSSH client command line that trusts only the lab's host keys."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .config import LabError


def ensure_key(path: Path) -> str:
    """Create the ed25519 key pair at `path` once (no passphrase); return the public key line."""
    pub = path.with_name(path.name + ".pub")
    if not (path.exists() and pub.exists()):
        path.unlink(missing_ok=True)
        pub.unlink(missing_ok=True)
        try:
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "funops-lab", "-f", str(path)],
                check=True,
                capture_output=True,
            )
        except FileNotFoundError as e:
            raise LabError("ssh-keygen is missing: run `make lab-host` (openssh-client)") from e
    path.chmod(0o600)
    return pub.read_text()


def ssh_argv(address: str, user: str, key: Path, known_hosts: Path) -> list[str]:
    """ssh with strict host key checking against `known_hosts` and only the lab's identity."""
    return [
        "ssh",
        "-F", "/dev/null",  # ignore the user's ~/.ssh/config
        "-i", str(key),
        "-o", "IdentitiesOnly=yes",
        "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "ConnectTimeout=10",
        "-o", "LogLevel=ERROR",
        f"{user}@{address}",
    ]  # fmt: skip
