"""The test app: a tiny HTTP service image, built without internet and pushed to the local registry.

Its rootfs is busybox-static (the shell and tools), tcpserver from ucspi-tcp (which binds $BIND:$PORT)
and the C library tcpserver links against, all taken from the host's Debian packages: about 5 MB.
v1 and v2 are healthy; v3's /health answers 500.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .config import LABEL, PACKAGE_DIR, REGISTRY, TESTAPP_REPO, TESTAPP_VERSIONS, LabError
from .engine import image_label, import_tree, prune_images, push

APP_DIR = PACKAGE_DIR / "testapp"
HOST_FILES = ("/bin/busybox", "/usr/bin/tcpserver")
UNHEALTHY = {"v3"}
APPLETS = ("sh", "env", "cat", "grep", "sort", "printf")
CHANGES = ('CMD ["/app/start"]', "ENV PATH=/bin:/usr/bin")  # Dockerfile instructions of the import
RECIPE_VERSION = 1  # bump when the images change in a way the recipe below does not show


def recipe_hash() -> str:
    """A hash of what goes into the images (not of this module's code: a refactor rebuilds nothing)."""
    recipe = {
        "version": RECIPE_VERSION,
        "applets": APPLETS,
        "changes": CHANGES,
        "unhealthy": sorted(UNHEALTHY),
    }
    h = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode())
    for path in [*(APP_DIR / n for n in ("start", "handler")), *map(Path, HOST_FILES)]:
        h.update(path.read_bytes() if path.exists() else b"missing")
    return h.hexdigest()[:12]


def registry_has(version: str) -> bool:
    req = urllib.request.Request(
        f"http://{REGISTRY}/v2/funops/testapp/manifests/{version}",
        method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def registry_answers() -> bool:
    try:
        with urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def testapp_refs() -> list[str]:
    return [f"{TESTAPP_REPO}:{version}" for version in TESTAPP_VERSIONS]


def ensure_testapp() -> list[str]:
    """Make sure every test app version of the current recipe is in the registry.

    Returns the refs it had to (re)build: nodes that pulled an older build of them hold a stale copy.
    """
    if not registry_answers():
        raise LabError(f"no image registry answers on {REGISTRY}: run `make lab-host`")
    recipe = recipe_hash()
    rebuilt = []
    for version, ref in zip(TESTAPP_VERSIONS, testapp_refs(), strict=True):
        if image_label(ref, f"{LABEL}.recipe") != recipe:
            _build(version, ref, recipe)
            rebuilt.append(ref)
        elif registry_has(version):
            continue
        push(ref)
    if rebuilt:  # the builds these tags pointed at before
        prune_images(f"{LABEL}.recipe")
    return rebuilt


def _build(version: str, ref: str, recipe: str) -> None:
    for path in HOST_FILES:
        if not Path(path).exists():
            raise LabError(f"{path} is missing: run `make lab-host` (busybox-static, ucspi-tcp)")
    with tempfile.TemporaryDirectory(prefix="funops-testapp-") as tmp:
        root = Path(tmp)
        for path in HOST_FILES:
            _copy_into(root, Path(path))
        for lib in _shared_libs("/usr/bin/tcpserver"):
            _copy_into(root, lib)
        for applet in APPLETS:
            (root / "bin" / applet).symlink_to("busybox")
        app = root / "app"
        app.mkdir()
        for name in ("start", "handler"):
            shutil.copy2(APP_DIR / name, app / name)
        (app / "VERSION").write_text(version + "\n")
        (app / "HEALTH").write_text(("fail" if version in UNHEALTHY else "ok") + "\n")
        (root / "tmp").mkdir(mode=0o1777)
        changes = [*CHANGES, f"LABEL {LABEL}.recipe={recipe}", f"LABEL {LABEL}.testapp={version}"]
        import_tree(root, ref, changes, "the test app's rootfs")


def _shared_libs(binary: str) -> list[Path]:
    """The shared libraries (and loader) a binary needs, as resolved on this host by ldd."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if path.startswith("/"):
            libs.append(Path(path))
    return libs


def _copy_into(root: Path, path: Path) -> None:
    """Copy a host file to the same path under root (following symlinks: the content is what counts)."""
    dest = root / path.relative_to("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path.resolve(), dest)
