"""The node image: a debootstrapped Debian bookworm with systemd, sshd, nginx and docker.

The image is tagged with a hash of everything that goes into it (the recipe below, lab/node-rootfs/ and
lab/node-configure.sh), so an unchanged recipe is never rebuilt. Bump RECIPE_VERSION when changing
how the image is built in this file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .config import LABEL, NODE_IMAGE, PACKAGE_DIR, LabError
from .engine import client, image_exists, import_tree, prune_images, remove_images
from .files import remove_tree

RECIPE_VERSION = 1
SUITE = "bookworm"
MIRROR = os.environ.get("FUNOPS_LAB_MIRROR", "http://deb.debian.org/debian")
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "openssh-server",
    "nginx-light",
    "docker.io",
    "curl",
    "iproute2",
    "procps",
    "ca-certificates",
    "python3",
    "sudo",
)
OVERLAY_DIR = PACKAGE_DIR / "node-rootfs"
CONFIGURE_SCRIPT = PACKAGE_DIR / "node-configure.sh"
WORK_PARENT = Path("/var/tmp")  # a real filesystem: debootstrap creates device nodes


def recipe_hash() -> str:
    """A short content hash of the build inputs; it is the image's tag."""
    h = hashlib.sha256()
    recipe = {"version": RECIPE_VERSION, "suite": SUITE, "variant": "minbase", "packages": PACKAGES}
    h.update(json.dumps(recipe).encode())
    inputs = [CONFIGURE_SCRIPT, *sorted(p for p in OVERLAY_DIR.rglob("*") if p.is_file())]
    for path in inputs:
        h.update(str(path.relative_to(PACKAGE_DIR)).encode() + b"\0")
        h.update(oct(path.stat().st_mode & 0o777).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def image_ref() -> str:
    return f"{NODE_IMAGE}:{recipe_hash()}"


def build_image(force: bool = False) -> str:
    """Build the node image unless an image with the current recipe hash exists; return its ref."""
    ref = image_ref()
    if not force and image_exists(ref):
        return ref
    for tool in ("debootstrap", "chroot", "tar"):
        if shutil.which(tool) is None:
            raise LabError(f"`{tool}` is missing: run `make lab-host`")
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="funops-lab-rootfs-", dir=WORK_PARENT))
    rootfs = work / "rootfs"
    try:
        _debootstrap(rootfs)
        _configure(rootfs)
        _import(rootfs, ref)
    finally:
        remove_tree(work)
    _log(f"built {ref} in {time.monotonic() - started:.0f}s")
    _prune_old_images(keep=ref)
    return ref


def _log(msg: str) -> None:
    print(f"lab: {msg}", file=sys.stderr, flush=True)


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise LabError(f"{what} failed ({proc.returncode}):\n{tail}")


def _debootstrap(rootfs: Path) -> None:
    _log(f"debootstrap {SUITE} (minbase + {len(PACKAGES)} packages) from {MIRROR}")
    include = ",".join(PACKAGES)
    _run(
        ["debootstrap", "--foreign", "--variant=minbase", f"--include={include}", SUITE, str(rootfs), MIRROR],
        "debootstrap (download and unpack)",
    )
    # Maintainer scripts must not start services: in the chroot they would run on the host's network.
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    _run(["chroot", str(rootfs), "/debootstrap/debootstrap", "--second-stage"], "debootstrap --second-stage")


def _configure(rootfs: Path) -> None:
    _log("configuring the node rootfs")
    shutil.copytree(OVERLAY_DIR, rootfs, dirs_exist_ok=True, symlinks=True)
    script = rootfs / "tmp/funops-lab-configure.sh"
    shutil.copy2(CONFIGURE_SCRIPT, script)
    _run(["chroot", str(rootfs), "/bin/bash", "/tmp/funops-lab-configure.sh"], "node-configure.sh")
    script.unlink(missing_ok=True)


def _import(rootfs: Path, ref: str) -> None:
    _log(f"docker import {ref}")
    changes = ['CMD ["/sbin/init"]', "ENV container=docker", f"LABEL {LABEL}.recipe={ref.split(':')[1]}"]
    import_tree(rootfs, ref, changes, "the node rootfs", xattrs=True)


def _prune_old_images(keep: str) -> None:
    """Remove node images of older recipes (they are 400+ MB each); in-use ones are kept by docker."""
    tags = {tag for image in client().images.list(name=NODE_IMAGE) for tag in image.tags}
    remove_images(sorted(tags - {keep}))
    # Untagged leftovers of a forced rebuild (same tag, new image).
    prune_images(f"{LABEL}.recipe")
