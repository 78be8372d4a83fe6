"""The docker CLI, called with argument lists (never through a shell)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from .config import LabError


def docker(
    *args: str, check: bool = True, timeout: float | None = 300, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `docker ARGS...`, capturing text output; raise LabError on failure when `check`."""
    cmd = ["docker", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    except FileNotFoundError as e:
        raise LabError("the docker client is not installed: run `make lab-host`") from e
    except subprocess.TimeoutExpired as e:
        raise LabError(f"timed out after {timeout}s: {' '.join(cmd)}") from e
    if check and proc.returncode != 0:
        raise LabError(f"`{' '.join(cmd)}` failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def engine_answers() -> bool:
    """True when a docker engine answers the client (within a few seconds)."""
    try:
        return docker("version", "--format", "{{.Server.Version}}", check=False, timeout=10).returncode == 0
    except LabError:
        return False


def image_exists(ref: str) -> bool:
    return docker("image", "inspect", ref, check=False).returncode == 0


def lab_containers(label: str, value: str) -> list[str]:
    """Names of all containers (running or not) carrying `label=value`."""
    out = docker("ps", "-a", "--filter", f"label={label}={value}", "--format", "{{.Names}}").stdout
    return [name for name in out.split() if name]


def remove_containers(names: Sequence[str]) -> None:
    if names:
        docker("rm", "-f", "-v", *names)
