"""Artifacts of systemd apps (issue 15): what the app runs, as one resource per node.

`artifact:/opt/funops/apps/<app>/current` wants the `current` link on the release's directory
`releases/<version>/`, holding content of a given sha256. Its `run_spec` says where the content comes
from (a URL the node fetches, or the bytes funops uploads as the resource's content), so a rollback
from a release record can fetch it again when its directory has been pruned.
"""

from __future__ import annotations

import io
import os
import posixpath
import stat
import tarfile
from pathlib import Path

from .. import resources as r
from ..ids import Owner, ResourceId
from ..load.source import GitRevision, Source, SourceError
from ..model.manifests import Artifact

APPS_ROOT = "/opt/funops/apps"
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")


def app_dir(app: str) -> str:
    return f"{APPS_ROOT}/{app}"


def release_dir(app: str, version: str) -> str:
    return f"{app_dir(app)}/releases/{version}"


def current_link(app: str) -> str:
    return f"{app_dir(app)}/current"


def resource(
    app: str, version: str, artifact: Artifact, source: Source, keep: int, restart: str
) -> tuple[r.Resource | None, str | None]:
    """The artifact resource of `app` at `version`, or (None, why) when its repo path cannot be read."""
    content: bytes | None = None
    if artifact.url is not None:
        name = posixpath.basename(artifact.url.split("?", 1)[0].split("#", 1)[0]) or "artifact"
        sha, spec = artifact.sha256 or "", {"url": artifact.url}
    else:
        path = artifact.path or ""
        try:
            content, name = _repo_payload(source, path)
        except SourceError as exc:
            return None, str(exc)
        if content is None:
            return None, f"{path} does not exist in the repo"
        sha, spec = r.sha256(content), {"upload": path}
    unpack = name == "" or name.endswith(TAR_SUFFIXES)
    return (
        r.Resource(
            id=ResourceId.of("artifact", current_link(app)),
            kind="artifact",
            owner=Owner.of_app(app),
            desired={"release": version, "sha256": sha},
            order=r.ORDER_ARTIFACT,
            handlers=(restart,),
            content=content,
            run_spec={**spec, "dir": release_dir(app, version), "file": "" if unpack else name, "keep": keep},
        ),
        None,
    )


def _repo_payload(source: Source, path: str) -> tuple[bytes | None, str]:
    """A file's bytes and its name, or a directory as a reproducible tar (name ""): same tree, same
    bytes, so the sha256 changes only when the content does."""
    files = _tree(source, path)
    if files is None:
        return source.read_bytes(path), posixpath.basename(path)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, executable in files:
            data = source.read_bytes(f"{path}/{rel}") or b""
            info = tarfile.TarInfo(rel)
            info.size, info.mode, info.mtime = len(data), 0o755 if executable else 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue(), ""


def _tree(source: Source, path: str) -> list[tuple[str, bool]] | None:
    """The files under a repo directory (relative, sorted, with their executable bit); None when
    `path` is not a directory."""
    if isinstance(source, GitRevision):
        tree = source._blob(path)
        if tree is None or tree.type != "tree":
            return None
        return sorted(
            (b.path.removeprefix(tree.path + "/"), bool(b.mode & 0o111))
            for b in tree.traverse()
            if b.type == "blob"
        )
    base = Path(source.root) / path
    if base.is_symlink() or not base.is_dir():
        return None
    found = []
    for folder, dirs, names in os.walk(base):
        dirs.sort()
        for name in names:
            full = Path(folder) / name
            mode = full.lstat().st_mode
            found.append((full.relative_to(base).as_posix(), bool(mode & stat.S_IXUSR)))
    return sorted(found)
