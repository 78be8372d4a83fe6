"""The pull-mode runtime (controller side): the third-party packages the engine needs on a node that
converges itself (`funops-agent pull`), taken from this controller's own environment and shipped as
one byte-stable tar.gz that `agent install` unpacks under /opt/funops-agent/runtime/.

Only nodes with `pull:` get it: the agent itself (`serve`) stays standard library only. The packages
are the closure of ROOTS over their (non-extra) requirements, as installed here — compiled ones
(pydantic-core, pyyaml's _yaml, markupsafe's speedups, cachebox) included, so the node's python must
be able to load what this one loads: `check_python` refuses one that cannot.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import platform
import re
import sys
import tarfile
from dataclasses import dataclass
from functools import cache
from importlib import metadata

from ..errors import FunopsError

# What the engine imports on the node (funops.apply.executor and what it reaches: pydantic models,
# jinja2 templates, yaml; deepdiff once something differs). Not paramiko, cryptography, typer, rich,
# git: the node verifies signatures with the openssl CLI, and it has no CLI of funops's own.
ROOTS = ("pydantic", "jinja2", "pyyaml", "deepdiff")
# Installer bookkeeping, not needed to import (RECORD names this controller's paths).
_SKIP_META = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
_EPOCH = 946684800  # 2000-01-01: a fixed mtime (tar and gzip), so the same packages make the same bytes


@dataclass(frozen=True)
class Runtime:
    data: bytes  # tar.gz
    sha256: str
    distributions: tuple[str, ...]  # "name==version"
    files: int
    unpacked: int  # bytes
    glibc: tuple[int, ...]  # the oldest glibc its compiled wheels load on; () when none is compiled

    @property
    def release(self) -> str:
        """Its directory name on the node (/opt/funops-agent/runtime/releases/<release>)."""
        return self.sha256[:16]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distributions(roots: tuple[str, ...] = ROOTS) -> list[metadata.Distribution]:
    """ROOTS and what they require (extras left out), as installed in this environment, by name.
    A requirement that is not installed here is one no import needs (a marker for another python)."""
    found: dict[str, metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        name = _norm(todo.pop())
        if name in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            if name in map(_norm, roots):
                raise FunopsError(f"{name} is not installed here: the pull runtime is made from it") from None
            continue
        found[name] = dist
        for req in dist.requires or []:
            if "extra" not in req.partition(";")[2]:
                todo.append(re.split(r"[\s;<>=!~\[(]", req.strip(), maxsplit=1)[0])
    return [found[k] for k in sorted(found)]


def _members(dists: list[metadata.Distribution]) -> dict[str, tuple[bytes, int]]:
    """Archive path → (bytes, mode) of every file the distributions installed in site-packages:
    no bytecode (the node's python compiles its own), no scripts outside it, no installer records."""
    out: dict[str, tuple[bytes, int]] = {}
    for dist in dists:
        for f in dist.files or []:
            parts = f.parts
            if ".." in parts or "__pycache__" in parts or f.suffix == ".pyc":
                continue
            if parts[0].endswith(".dist-info") and f.name in _SKIP_META:
                continue
            data = dist.locate_file(f).read_bytes()  # type: ignore[union-attr]
            out["/".join(parts)] = (data, 0o755 if f.suffix == ".so" else 0o644)
    return out


def _glibc_needed(dists: list[metadata.Distribution]) -> tuple[int, ...]:
    """The newest glibc any compiled wheel needs: each wheel's oldest manylinux tag (it loads where
    any of its tags does); a wheel built here (`linux_…`) needs this machine's glibc."""
    need: tuple[int, ...] = ()
    for dist in dists:
        tags = [line.split(":", 1)[1].strip() for line in (dist.read_text("WHEEL") or "").splitlines()
                if line.startswith("Tag:")]  # fmt: skip
        versions = []
        for tag in tags:
            plat = tag.rsplit("-", 1)[-1]
            if plat == "any":
                break
            if m := re.match(r"manylinux_(\d+)_(\d+)_", plat):
                versions.append((int(m[1]), int(m[2])))
            elif legacy := {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}.get(
                plat.split("_", 1)[0]
            ):
                versions.append(legacy)
            elif plat.startswith("linux_"):
                versions.append(_version(platform.libc_ver()[1]))
        else:
            if versions:
                need = max(need, min(versions))
    return need


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text))


@cache
def build() -> Runtime:
    """This environment's runtime (made once per process: a few seconds of gzip)."""
    dists = distributions()
    members = _members(dists)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(members):
            data, mode = members[name]
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, _EPOCH
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", compresslevel=6, mtime=_EPOCH) as gz:
        gz.write(raw.getvalue())
    data = packed.getvalue()
    return Runtime(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        distributions=tuple(f"{d.metadata['Name']}=={d.version}" for d in dists),
        files=len(members),
        unpacked=sum(len(d) for d, _ in members.values()),
        glibc=_glibc_needed(dists),
    )


def here() -> dict[str, str]:
    """This controller's python, as ProbePython reports a node's."""
    libc, version = platform.libc_ver()
    return {
        "cacheTag": sys.implementation.cache_tag or "",
        "machine": platform.machine(),
        "libc": libc,
        "libcVersion": version,
        "version": platform.python_version(),
    }


def check_python(node: str, there: dict[str, str], runtime: Runtime) -> None:
    """Refuse a node whose /usr/bin/python3 cannot load this runtime's compiled modules."""
    ours = here()
    mine, theirs = _shown(ours), _shown(there)
    if not there:
        raise FunopsError(
            f"node {node}: pull mode needs /usr/bin/python3 on the node (this controller runs {mine}); "
            "install python3 there, or drop `pull:` from the node"
        )
    why = None
    if (there.get("cacheTag"), there.get("machine")) != (ours["cacheTag"], ours["machine"]):
        why = "another python or machine"
    elif there.get("libc") != "glibc":
        why = "no glibc (the compiled wheels are manylinux)"
    elif runtime.glibc and _version(there.get("libcVersion", "")) < runtime.glibc:
        why = f"a glibc older than the {'.'.join(map(str, runtime.glibc))} the compiled wheels need"
    if why:
        raise FunopsError(
            f"node {node}: its /usr/bin/python3 is {theirs}, this controller's is {mine}: {why}. The pull "
            "runtime is this controller's own packages (compiled ones included), so run `funops agent "
            "install` from a controller (or CI image) with the same python version and machine as the "
            "node, or drop `pull:` from the node"
        )


def _shown(py: dict[str, str]) -> str:
    libc = f"{py.get('libc')} {py.get('libcVersion')}" if py.get("libc") else "no glibc"
    return f"python {py.get('version')} {py.get('cacheTag')} {py.get('machine')} ({libc})"
