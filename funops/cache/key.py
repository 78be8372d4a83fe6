"""What a run's output may depend on, as one digest: the key of the no-op cache.

The key covers the command line as typed, the working directory, the environment a run may read
(`_keyed_env`: what funops, Python and its libraries read, and every variable the repo names, such as
a secret's `fromEnv`), whether stdin/stdout/stderr are terminals,
every file of the repo (manifests, templates, inventory, funops.yaml, secret files, agent pins and
tokens: anything a run may read), git's view of the repo, and funops's own code and the libraries
installed beside it. Over-covering only costs a miss; under-covering would replay a stale output, so
a command line this module does not fully understand gets no key at all (`request`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import sys
from pathlib import Path

# Options a cached run may carry, by command: they take a value / they do not. Anything else
# (--revision, --inventory, --out, a plan file, --help, --metrics-*…) is left to the full path.
_PLANS = (
    {"-C", "--repo", "-n", "--node", "-a", "--app", "-o", "--output", "-p", "--parallel", "--diff-context"},
    {"--skip-unreachable", "--auto-approve", "--allow-dirty", "--force", "--no-diff"},
)
_OPTIONS: dict[str, tuple[set[str], set[str]]] = {
    "plan": _PLANS,
    "apply": _PLANS,
    "validate": ({"-C", "--repo"}, set()),  # text output: a valid repo's one line
}
# Variables that bring in inputs the key does not hash, or outputs beside stdout.
_REFUSED_ENV = ("FUNOPS_INVENTORY", "FUNOPS_METRICS_PUSH", "FUNOPS_METRICS_TEXTFILE", "FUNOPS_LOG")
# The environment a run reads: funops's own variables and typer's FUNOPS_* options, Python's, those
# of the libraries it uses (TLS, ssh, docker, git, rich's terminal and colour variables), the locale
# and the proxies; and any variable whose name the repo holds (a secret's `fromEnv`, an agent token's
# `tokenFromEnv`, the ACME account key's). The rest (a CI job's id, the shell's `_` and OLDPWD) is left
# out, so runs that differ only there share an entry.
_ENV_PREFIXES = (
    "FUNOPS_",
    "PYTHON",
    "SSL_",
    "SSH_",
    "DOCKER_",
    "GIT_",
    "XDG_",
    "LC_",
    "TERM",
    "JUPYTER_",
    "TTY_",
)
_SHELL_NOISE = {"_", "OLDPWD"}  # the shell's last command and directory before the last cd
_ENV_NAMES = {
    *("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "CI"),
    *("COLORTERM", "COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "CLICOLOR", "CLICOLOR_FORCE"),
    *("CACHE_DIRECTORY", "NOTIFY_SOCKET"),
    *(
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
    ),
}
# Below the repo root, what changes with every run and is never an input of a plan.
_SKIPPED = {".git", ".funops/cache", ".funops/journal.jsonl", ".funops/nodes"}
# Directories no run reads, whatever the repo: Python's bytecode, a virtualenv (a repo that is also
# a Python project keeps its .venv at the root, thousands of files), the test and lint tools' caches.
_NEVER_READ = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
_MAX_FILES, _MAX_BYTES = 10_000, 16 << 20  # a larger tree is not hashed on every run: no fast path


class Request:
    """A `plan`/`apply`/`validate` command line the cache may answer: the command and the repo root it reads.
    (A plain class: the dataclasses module imports inspect and ast, a tenth of a cached run.)"""

    __slots__ = ("argv", "command", "root")

    def __init__(self, command: str, argv: tuple[str, ...], root: Path) -> None:
        self.command = command
        self.argv = argv  # as typed, after the leading -C
        self.root = root  # resolved


def request(argv: list[str], environ: dict[str, str]) -> Request | None:
    """The command line as the cache understands it, or None (the full path decides)."""
    where = Path.cwd()
    while argv[:1] == ["-C"] or argv[:1] == ["--repo"] or (argv and argv[0].startswith("--repo=")):
        if argv[0].startswith("--repo="):
            where, argv = where / argv[0].removeprefix("--repo="), argv[1:]
        elif len(argv) > 1:
            where, argv = where / argv[1], argv[2:]
        else:
            return None
    if not argv or argv[0] not in _OPTIONS or any(environ.get(v) for v in _REFUSED_ENV):
        return None
    valued, flags = _OPTIONS[argv[0]]
    repo: str | None = None
    args = argv[1:]
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in flags and not eq:
            i += 1
            continue
        if name not in valued:
            return None  # a positional (a plan file), an unknown or unsupported option, --help
        if not eq:
            if i + 1 >= len(args):
                return None
            value = args[i + 1]
            i += 1
        if name in ("-C", "--repo"):
            repo = value
        i += 1
    repo = repo if repo is not None else environ.get("FUNOPS_REPO") or "."
    try:
        root = (where / repo).resolve(strict=True)
    except OSError:
        return None
    return Request(argv[0], tuple(argv), root)


def key(req: Request, environ: dict[str, str]) -> str | None:
    """The digest of everything the run's output may depend on; None: too large or unreadable."""
    tree = hashlib.sha256()
    contents = _hash_tree(req.root, tree)
    if contents is None:
        return None
    h = hashlib.sha256(b"funops-noop-cache 2\0")
    for part in (
        repr(req.argv),
        str(req.root),
        os.getcwd(),
        repr(_keyed_env(environ, contents)),
        repr([s.isatty() for s in (sys.stdin, sys.stdout, sys.stderr)]),
        sys.version,
        sys.executable,
    ):
        h.update(part.encode("utf-8", "surrogateescape") + b"\0")
    h.update(code_identity().encode() + b"\0")
    h.update(tree.digest())
    h.update(_git_view(req.root))
    return h.hexdigest()


def code_identity() -> str:
    """funops's own files (path, size, modification time) and the distributions installed beside
    it: another version, an edited module or an upgraded library is another key."""
    h = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent
    for dirpath, dirnames, filenames in os.walk(package):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            st = os.stat(os.path.join(dirpath, name))
            h.update(f"{dirpath}/{name} {st.st_size} {st.st_mtime_ns}\0".encode())
    for entry in sys.path:
        if entry.endswith("site-packages"):
            with contextlib.suppress(OSError):
                h.update("\0".join(sorted(os.listdir(entry))).encode())
    return h.hexdigest()


def _keyed_env(environ: dict[str, str], contents: bytes) -> list[tuple[str, str]]:
    """The variables a run may read (above), sorted; `contents`: the repo's files, for the names they hold."""
    return sorted(
        (k, v)
        for k, v in environ.items()
        if k not in _SHELL_NOISE and (k in _ENV_NAMES or k.startswith(_ENV_PREFIXES) or named_in(k, contents))
    )


def named_in(name: str, contents: bytes) -> bool:
    """Whether the repo's files (`contents`) hold `name` as a whole word: `_` is in every file,
    WEB_TOKEN in none of API_TOKEN."""
    word = name.encode("utf-8", "surrogateescape")
    if word not in contents:  # most names: bytes' own search, a hundred times the regex's speed
        return False
    import re  # only for a run a cache may answer

    return re.search(rb"(?<![A-Za-z0-9_])" + re.escape(word) + rb"(?![A-Za-z0-9_])", contents) is not None


def _hash_tree(root: Path, h: hashlib._Hash) -> bytes | None:  # type: ignore[name-defined]
    """Every file below root (its path, mode and content; a link as its target) into `h`; the
    contents back, joined. None: too many or too large (counted before anything is read: a big tree
    costs a walk, not its reading), or unreadable — no key."""
    found: list[tuple[str, str]] = []
    contents: list[bytes] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = sorted(
            d
            for d in dirnames
            if rel_dir + d not in _SKIPPED
            and d not in _NEVER_READ
            and not os.path.exists(os.path.join(dirpath, d, "pyvenv.cfg"))
        )
        found += [
            (rel_dir + n, os.path.join(dirpath, n)) for n in sorted(filenames) if rel_dir + n not in _SKIPPED
        ]
        if len(found) > _MAX_FILES:
            return None
    total = 0
    for rel, path in found:
        try:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                data = os.readlink(path).encode("utf-8", "surrogateescape")
            elif not stat.S_ISREG(st.st_mode):
                data = b""  # a FIFO or a device is never opened (it could hang): its mode says it
            else:
                total += st.st_size
                if total > _MAX_BYTES:
                    return None
                with open(path, "rb") as f:
                    data = f.read()
        except OSError:
            return None
        h.update(f"{rel}\0{st.st_mode:o}\0{len(data)}\0".encode("utf-8", "surrogateescape"))
        h.update(data)
        contents.append(data)
    return b"\0".join(contents)


def _git_view(root: Path) -> bytes:
    """What the loader reads of git (the commit, the branch, whether the tree is dirty): git's own
    answer, when the repo is in a git work tree (a commit changes the plan's header). Over the
    loader's paths: funops's own files under .funops, which every run writes, are not git's to
    report (their contents are hashed where they are inputs), else a repo that does not ignore
    them would never hit."""
    for parent in (root, *root.parents):
        if (parent / ".git").exists():
            break
    else:
        return b"no git\0"
    import subprocess  # only for a repo in git (~10 ms to import)

    try:
        done = subprocess.run(
            [
                "git",
                "-C",
                str(root),
                "status",
                "--porcelain=v2",
                "--branch",
                "--untracked-files=all",
                "--",
                ".",
                ":(exclude).funops",
            ],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return b"git failed\0"
    return b"git %d\0" % done.returncode + done.stdout + b"\0" + done.stderr
