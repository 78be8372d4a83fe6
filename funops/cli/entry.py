"""The `funops` entry point: what can be answered before the command line app is built, then the app.

- `funops --version` and `funops version` print the version (typer, rich and pydantic stay unloaded);
- `validate` of a valid repo (text output) is said valid without the app, from the cache when the
  repo did not change since it was last found valid: an invalid one goes to the app, which reports it;
- `plan`/`apply` of an unchanged repo against nodes that answer as when it last found nothing to do
  are answered from the no-op cache (funops/cache); a run the cache could not answer runs the app,
  and records itself if it finds nothing to do.
A plain `plan`/`apply` command line is parsed and run without the app (`cli/direct.py`).
Everything else goes to `cli/main.py` untouched: help, errors and options behave as they always did.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import Any


def run() -> None:
    argv = sys.argv[1:]
    if argv in (["--version"], ["version"]):
        from .. import __version__

        sys.stdout.write(__version__ + "\n")
        raise SystemExit(0)
    try:
        if argv[:1] == ["validate"] or argv[2:3] == ["validate"]:
            _validate(argv)
        attempt = _cached(argv)
    except Exception:  # a cache is never a reason to fail: the app answers
        attempt = None
    if attempt is None:
        _app(argv)()
        return
    code, req, key = attempt
    if code is not None:
        raise SystemExit(code)
    _record(req, key, _app(argv))


def _app(argv: list[str]) -> Callable[[], None]:
    """What runs the command in full: `plan`/`apply` called without building the typer app when
    their command line is a plain one (cli/direct.py), else the app."""
    from .direct import command

    direct = command(argv, os.environ)
    if direct is not None:
        return direct
    from .main import run

    return run


def _validate(argv: list[str]) -> None:
    """`funops [-C DIR] validate [-C DIR]`: a valid repo's line (what `cli/repo.py`'s validate
    prints) and exit 0 — from the cache when the repo is as when it was last found valid (the output
    is a function of the key's inputs alone), else loaded and compiled here, without the app, and
    recorded. Anything else returns, for the app (an invalid repo is loaded again there, to be
    reported as always)."""
    from .output import styled

    if styled(sys.stdout.isatty()):
        return  # colors: rich's to print
    from ..cache import key as keys
    from ..cache import store

    environ = dict(os.environ)
    req = keys.request(argv, environ)
    if req is None or req.command != "validate":
        return
    key = None if environ.get("FUNOPS_NO_CACHE") else keys.key(req, environ)
    entry = store.read(req.root, key) if key else None
    if entry is not None and entry.get("command") == "validate" and entry.get("root") == str(req.root):
        line = entry["stdout"]
    else:
        try:
            from ..compile.compiler import compile_project
            from ..load.loader import load_project

            project = load_project(req.root, None, None)
            compile_project(project)
        except Exception:
            return
        certificates = f", {len(project.certificates)} certificate(s)" if project.certificates else ""
        line = (
            f"valid: {len(project.nodes)} node(s), {len(project.apps)} app(s), {len(project.services)} "
            f"service(s), {len(project.ingresses)} ingress(es), {len(project.releases)} release(s)"
            f"{certificates} · {project.revision.describe()}\n"
        )
        if key and keys.key(req, environ) == key:  # nothing changed while it was read
            entry = {"command": "validate", "root": str(req.root), "nodes": {}, "stdout": line, "stderr": ""}
            store.write(req.root, key, {**entry, "exit": 0})
    sys.stdout.write(line)
    sys.stdout.flush()
    import gc

    gc.freeze()  # as cli/main.run: no collection of what the process is about to give back
    raise SystemExit(0)


def _cached(argv: list[str]) -> tuple[int | None, Any, str] | None:
    """(exit code, request, key) when the cache took part: a replayed run's code, or None with what
    the full run records under; None when it cannot answer this command line at all."""
    # Only where the output is plain text: on a terminal it depends on its size, and the spinner.
    if os.environ.get("FUNOPS_NO_CACHE") or sys.stdout.isatty() or sys.stderr.isatty():
        return None
    from ..cache import key as keys

    environ = dict(os.environ)
    req = keys.request(argv, environ)
    if req is None or req.command not in ("plan", "apply"):
        return None
    key = keys.key(req, environ)
    if key is None:
        return None
    from ..cache import store

    secret = store.local_key(req.root)  # none yet: nothing was recorded in this repo
    entry = store.read(req.root, key) if secret is not None else None
    if entry is not None and secret is not None and entry.get("root") == str(req.root):
        from ..cache.replay import replay

        code = replay(entry, secret)
        if code is not None:
            return code, req, key
    return None, req, key


def _record(req: Any, key: str, full: Callable[[], None]) -> None:
    """Run the app with its output copied; keep it if the plan was a no-op (cache/record.py) and the
    run ended with exit 0, with the repo as it was when the run began."""
    from ..cache import record, store
    from ..cache.key import key as key_of

    kept = store.local_key(req.root)
    # Nothing is written unless the run records: a failed run leaves the repo as it found it.
    record.active, record.secret = True, kept or os.urandom(32)
    out, err = _Copy(sys.stdout), _Copy(sys.stderr)
    sys.stdout, sys.stderr = out, err  # type: ignore[assignment]
    code: Any = 0
    try:
        full()
    except SystemExit as exc:
        code = exc.code
        raise
    finally:
        sys.stdout, sys.stderr = out.inner, err.inner
        pending = record.pending
        recordable = code in (0, None) and pending is not None and pending["root"] == str(req.root)
        with contextlib.suppress(Exception):  # never a reason to fail a run that succeeded
            unchanged = recordable and key_of(req, dict(os.environ)) == key  # nothing changed under the run
            if unchanged and (kept is not None or store.keep_key(req.root, record.secret)):
                store.write(req.root, key, {**pending, "stdout": out.text(), "stderr": err.text(), "exit": 0})


class _Copy:
    """A text stream that also keeps what is written to it (the run's output, for the cache)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self._parts = inner, []

    def write(self, text: str) -> int:
        self._parts.append(text)
        return self.inner.write(text)

    def text(self) -> str:
        return "".join(self._parts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
