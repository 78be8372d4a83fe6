"""What the kinds' sh fragments print, read in this process instead: the agent answers a probe on its
node without a fork per tool (sh, stat, sha256sum, systemctl's shell), ~5 ms of the node's CPU per
gather. Each function prints exactly what its fragment prints, so one parser reads both; the unit
tests hold them to that. Standard library only (the node side)."""

from __future__ import annotations

import contextlib
import grp
import hashlib
import os
import pwd
import shutil
import stat
import subprocess

from . import systemd_bus

MARK = "@@funops "

# `stat -c %F`'s words for each file type (coreutils).
_TYPES = (
    (stat.S_ISDIR, "directory"),
    (stat.S_ISLNK, "symbolic link"),
    (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character special file"),
    (stat.S_ISBLK, "block special file"),
)


def plain(paths: list[str]) -> bool:
    """Names stat and sha256sum print as given (sha256sum escapes a backslash or a newline)."""
    return not any("\\" in p or "\n" in p for p in paths)


def stat_lines(paths: list[str], numeric_ids: bool) -> list[str | None]:
    """`stat_line` of each path, each owner's and group's name looked up once for them all (a
    lookup reads the passwd or group database: most of a probe's files are root's)."""
    names: dict[tuple[bool, int], str] = {}
    return [stat_line(p, numeric_ids, names) for p in paths]


def stat_line(path: str, numeric_ids: bool, names: dict[tuple[bool, int], str] | None = None) -> str | None:
    """`stat -c '%a|%U|%G|%F|%n'` (with numeric_ids: `%a|%U|%G|%u|%g|%F|%n`) of one path, not
    following a symlink; None when it does not exist (stat prints only to stderr). `names`: the
    owners' and groups' names already looked up, by (is a group, id)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    names = {} if names is None else names
    user = names.get((False, st.st_uid))
    if user is None:
        user = names[(False, st.st_uid)] = _user(st.st_uid)
    group = names.get((True, st.st_gid))
    if group is None:
        group = names[(True, st.st_gid)] = _group(st.st_gid)
    ids = [user, group]
    if numeric_ids:
        ids += [str(st.st_uid), str(st.st_gid)]
    return "|".join([format(stat.S_IMODE(st.st_mode), "o"), *ids, _type(st), path])


def sha256_line(path: str) -> str | None:
    """`sha256sum`'s line for a regular file (through a symlink, as sha256sum reads it); None for
    anything else (sha256sum would fail on a directory, and block on a fifo)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 16):
                digest.update(chunk)
    except OSError:
        return None
    return f"{digest.hexdigest()}  {path}"


def stat_sections(tag_lines: list[tuple[str, list[str | None]]]) -> str:
    """Sections as the fragments print them: each tag's marker, then its lines that exist."""
    out = []
    for tag, lines in tag_lines:
        out += [f"{MARK}{tag}", *(line for line in lines if line is not None)]
    return "\n".join(out) + "\n"


def systemctl_show(tag: str, units: list[str], properties: tuple[str, ...]) -> str:
    """The unit fragment: what `systemctl show` prints, read from systemd's bus (else systemctl run
    directly, no sh), or `nosystemd`."""
    out = f"{MARK}{tag}\n"
    systemctl = shutil.which("systemctl")
    if not os.path.isdir("/run/systemd/system") or systemctl is None:
        return out + "nosystemd\n"
    with contextlib.suppress(systemd_bus.BusError):
        return out + systemd_bus.show(units, properties)
    props = [arg for p in properties for arg in ("-p", p)]
    done = subprocess.run(
        [systemctl, "show", *props, "--", *units],
        capture_output=True,
        env={**os.environ, "LC_ALL": "C"},
        check=False,
        timeout=60,
    )
    return out + done.stdout.decode("utf-8", errors="replace")


def _type(st: os.stat_result) -> str:
    if stat.S_ISREG(st.st_mode):
        return "regular file" if st.st_size else "regular empty file"
    return next((word for test, word in _TYPES if test(st.st_mode)), "weird file")


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return "UNKNOWN"


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return "UNKNOWN"
