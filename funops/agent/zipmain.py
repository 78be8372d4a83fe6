"""The agent zip's entry point, copied to the zip's top as `__main__.py` (install.bundle).

A zip carries no bytecode that fits every node's python, so `python3 funops-agent.pyz serve` would
compile every module of funops at each start, and the compiler's leftovers stay in the heap. The
agent's idle RSS is what every node pays all the time, so funops-agent.service gives the agent a
cache directory (systemd's CacheDirectory=) and runs python with -OO (no docstrings) and its bytecode
cache there (-X pycache_prefix). The first start writes a copy of the zip with bytecode from the
node's own python, imports what serving imports from it (python writes the standard library's
bytecode as it goes), then starts afresh (exec) from the warm caches: ~1 MB less than from the zip.

The copy is named by the zip's digest, the python's cache tag and the standard library's directory
(an upgrade of python makes a new copy and warms the caches again), and its bytecode is checked
against the sources beside it (hash-based .pyc): a copy never runs other code than its zip's.
The standard library only, and nothing of funops is imported before the copy is on the path.
"""

from __future__ import annotations

import hashlib
import os
import sys

SUFFIX = ".pyz"
CHECKED_HASH = 0b11  # PEP 552 flags: hash-based, checked against the source


def main() -> None:
    cache_dir = os.environ.get("CACHE_DIRECTORY")  # only funops-agent.service sets it
    if cache_dir and sys.argv[1:2] == ["serve"] and sys.path[0].endswith(SUFFIX):
        copy = compiled_copy(sys.path[0], cache_dir)
        if copy is not None:
            sys.path[0] = copy
    from funops.agent.__main__ import main as run

    raise SystemExit(run())


def compiled_copy(archive: str, cache_dir: str) -> str | None:
    """The path of `archive`'s compiled copy in `cache_dir`, None if it could not be made. Making it
    ends in an exec of this same command, which then finds it."""
    with open(archive, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:24]
    stdlib = os.stat(os.path.dirname(hashlib.__file__)).st_mtime_ns  # dpkg renames files into it
    copy = os.path.join(cache_dir, f"{digest}.{stdlib}.{sys.implementation.cache_tag}{SUFFIX}")
    if os.path.exists(copy):
        return copy
    try:
        _write_copy(archive, copy)
        for name in os.listdir(cache_dir):  # other versions' copies: the agent runs one zip at a time
            if name.endswith(SUFFIX) and name != os.path.basename(copy):
                os.unlink(os.path.join(cache_dir, name))
    except (OSError, SyntaxError, ValueError):
        return None  # a read-only or full disk: run from the sources, as without a cache
    sys.path[0] = copy
    import funops.node.server  # noqa: F401  (the warm-up: writes the standard library's bytecode)

    os.execv(sys.executable, [sys.executable, *_flags(), *sys.argv])
    return None  # not reached


def _flags() -> list[str]:
    """The interpreter's options this runs with (sys.orig_argv has them from python 3.10 only)."""
    flags = ["-I"] if sys.flags.isolated else []
    flags += ["-S"] if sys.flags.no_site else []
    flags += [f"-{'O' * sys.flags.optimize}"] if sys.flags.optimize else []
    return flags + (["-X", f"pycache_prefix={sys.pycache_prefix}"] if sys.pycache_prefix else [])


def _write_copy(archive: str, copy: str) -> None:
    import importlib.util
    import marshal
    import zipfile

    temp = f"{copy}.{os.getpid()}.tmp"
    try:
        with zipfile.ZipFile(archive) as source, zipfile.ZipFile(temp, "w") as out:
            for info in source.infolist():
                data = source.read(info)
                out.writestr(info, data)
                if info.filename.endswith(".py") and info.filename != "__main__.py":
                    # named as the zip's own modules are, so tracebacks point at the shipped zip;
                    # optimized as this python runs (-OO: without docstrings)
                    code = compile(data, os.path.join(archive, info.filename), "exec", dont_inherit=True)
                    header = importlib.util.MAGIC_NUMBER + CHECKED_HASH.to_bytes(4, "little")
                    pyc = header + importlib.util.source_hash(data) + marshal.dumps(code)
                    out.writestr(zipfile.ZipInfo(f"{info.filename}c", info.date_time), pyc)
        os.replace(temp, copy)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


if __name__ == "__main__":
    main()
