"""The host's docker engine, through the docker SDK: the Engine API directly, typed errors
(docker.errors.*), no CLI text to parse. Only the lab (dev tooling) talks to it; funops itself
reaches nodes with its one-round-trip shell probe (see README, Dependencies)."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import docker
import docker.errors
import requests.exceptions

from .config import LabError

API_TIMEOUT = 300  # seconds for one Engine API call (an image import streams hundreds of MB)
POOL_SIZE = 32  # the lab calls the engine from up to 16 threads at once

_lock = threading.Lock()
_client: docker.DockerClient | None = None

# What the Engine API (or the socket to it) raises when the engine is missing or fails.
ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


def client() -> docker.DockerClient:
    """One client per process (thread-safe), made on first use; the API version is negotiated with
    the engine (Debian's docker.io 20.10 speaks 1.41)."""
    global _client
    with _lock:
        if _client is None:
            try:
                _client = docker.from_env(timeout=API_TIMEOUT, max_pool_size=POOL_SIZE)
            except ENGINE_ERRORS as e:
                raise LabError(f"no docker engine answers ({e}): run `make lab-host`") from e
        return _client


def engine_answers() -> bool:
    """True when a docker engine answers."""
    try:
        return bool(client().ping())
    except (LabError, *ENGINE_ERRORS):
        return False


def image_exists(ref: str) -> bool:
    try:
        client().images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def image_label(ref: str, label: str) -> str | None:
    """A label of a local image; None when the image or the label is missing."""
    try:
        return (client().images.get(ref).labels or {}).get(label)
    except docker.errors.ImageNotFound:
        return None


def lab_containers(label: str, value: str) -> list[str]:
    """Names of all containers (running or not) carrying `label=value`."""
    found = client().containers.list(all=True, filters={"label": f"{label}={value}"})
    return sorted(c.name for c in found)


def remove_containers(names: Sequence[str]) -> None:
    for name in names:
        with contextlib.suppress(docker.errors.NotFound):  # gone already
            client().api.remove_container(name, v=True, force=True)


def inspect_container(name: str) -> dict[str, Any] | None:
    """What `docker inspect` shows of a container; None when there is none of that name."""
    try:
        return client().api.inspect_container(name)
    except docker.errors.NotFound:
        return None


def exec_in(
    container: str,
    argv: Sequence[str],
    *,
    user: str | None = None,
    input: str | None = None,
    timeout: float | None = 300,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` in a running container (`docker exec`), feeding `input` to its stdin.

    Raises docker.errors.NotFound (no such container) or docker.errors.APIError (e.g. 409: it is not
    running); a command that fails is a non-zero returncode, as with subprocess.
    """
    api = client().api
    exec_id = api.exec_create(container, list(argv), stdin=input is not None, user=user or "")["Id"]
    response = _exec_start(api, exec_id)
    # Read through the buffered reader http.client read the response's headers with: the engine may
    # send a quick command's output in the same packet as the headers, and docker-py's raw socket
    # (exec_start(socket=True)) skips what that reader already buffered — output lost under load.
    reader = response.raw._fp.fp
    raw: socket.socket = getattr(sock := api._get_raw_response_socket(response), "_sock", sock)
    out: dict[int, list[bytes]] = {1: [], 2: []}
    try:
        raw.settimeout(timeout)
        if input is not None:
            raw.sendall(input.encode())
            raw.shutdown(socket.SHUT_WR)
        while len(head := reader.read(8)) == 8:  # stream, 3 bytes padding, size (big-endian)
            stream, size = struct.unpack(">BxxxL", head)
            out.setdefault(stream, []).append(reader.read(size))
    except TimeoutError as e:
        raise LabError(f"timed out after {timeout}s: docker exec {container} {' '.join(argv)}") from e
    finally:
        response.close()
    code = _exit_code(exec_id)
    stdout, stderr = (b"".join(out[k]).decode(errors="replace") for k in (1, 2))
    return subprocess.CompletedProcess(list(argv), code, stdout, stderr)


def _exec_start(api: Any, exec_id: str) -> Any:
    """POST exec start, attached (as docker-py's exec_start does), returning the streamed response."""
    response = api._post_json(
        api._url("/exec/{0}/start", exec_id),
        headers={"Connection": "Upgrade", "Upgrade": "tcp"},
        data={"Tty": False, "Detach": False},
        stream=True,
    )
    api._raise_for_status(response)
    return response


def _exit_code(exec_id: str) -> int:
    # The output ends when the process does; the engine records its exit a moment later.
    for _ in range(100):
        info = client().api.exec_inspect(exec_id)
        if not info["Running"] and info["ExitCode"] is not None:
            return int(info["ExitCode"])
        time.sleep(0.05)
    raise LabError(f"exec {exec_id[:12]} did not report an exit code")


def import_image(tar: IO[bytes], ref: str, changes: Iterable[str]) -> None:
    """`docker import`: a rootfs tar stream becomes the image `ref` (Dockerfile `changes` applied)."""
    repository, _, tag = ref.rpartition(":")
    try:
        result = client().api.import_image_from_stream(
            tar, repository=repository, tag=tag, changes=list(changes)
        )
    except docker.errors.APIError as e:
        raise LabError(f"docker import of {ref} failed: {e.explanation or e}") from e
    for line in str(result).splitlines():
        event = json.loads(line) if line.startswith("{") else {}
        if "error" in event:
            raise LabError(f"docker import of {ref} failed: {event['error']}")


def import_tree(root: Path, ref: str, changes: Iterable[str], what: str, xattrs: bool = False) -> None:
    """`docker import` of the directory `root` (tarred as it is: numeric owners, optionally xattrs)."""
    args = ["tar", "-C", str(root), "--numeric-owner", *(["--xattrs"] if xattrs else []), "-c", "."]
    tar = subprocess.Popen(args, stdout=subprocess.PIPE)
    assert tar.stdout is not None
    try:
        import_image(tar.stdout, ref, changes)
    finally:
        tar.stdout.close()
        if tar.wait() != 0:
            raise LabError(f"tar of {what} failed ({tar.returncode})")


def push(ref: str) -> None:
    """Push `ref` to its registry; a failure arrives in the progress stream, not as a status code."""
    repository, _, tag = ref.rpartition(":")
    try:
        for event in client().api.push(repository, tag=tag, stream=True, decode=True):
            if "error" in event:
                raise LabError(f"docker push {ref} failed: {event['error']}")
    except docker.errors.APIError as e:
        raise LabError(f"docker push {ref} failed: {e.explanation or e}") from e


def remove_images(refs: Iterable[str]) -> None:
    """Remove image tags; one still in use by a container is kept (the engine refuses: 409)."""
    for ref in refs:
        with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
            client().images.remove(ref)


def prune_images(label: str) -> None:
    """Remove dangling (untagged) images carrying `label`: leftovers of rebuilt tags."""
    with contextlib.suppress(docker.errors.APIError):  # another prune runs at once: it does the work
        client().images.prune(filters={"label": label})
