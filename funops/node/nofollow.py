"""Paths opened as root without following a link an unprivileged user could have planted (issue 28).

A managed file may sit in a directory its app's user owns (`directories:` default to that user):
that user can put a symbolic link where funops expects the file or one of its directories, and a
root write following it lands wherever the link points (/etc/cron.d), chowned to the app's uid. So a
managed path is walked from `/` one component at a time, each directory opened relative to its
parent's descriptor with O_NOFOLLOW, and what is written is written through descriptors.

The rule for links on the way (as the kernel's `protected_symlinks`): a link is followed only when
root owns it and it sits in a directory only root can change (owned by root, not writable by group
or others, or sticky) — the node's own links such as /var/run -> /run. Any other link in a directory
component is refused, and so is a link where funops expects the file itself, naming the path.
The sh rendering (node/shell.py, `funops_cd`) applies the same rule. Standard library only."""

from __future__ import annotations

import errno
import os
import stat

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_LINKS = 40  # as the kernel's ELOOP bound


class Refused(OSError):
    """A path funops will not use (a link in its way, a file where a directory should be); the
    message names it."""

    def __str__(self) -> str:
        return str(self.strerror)


def refusal(path: str, at: str) -> str:
    """The words both paths (native and sh) use."""
    if at == path:
        return f"refusing {path}: it is a symbolic link (funops writes no managed file through a link)"
    return (
        f"refusing {path}: {at} is a symbolic link that a user other than root could have made "
        "(funops follows only root's links in directories only root can change)"
    )


def root_only(st: os.stat_result) -> bool:
    """A directory whose entries no one but root can add, replace or remove."""
    return st.st_uid == 0 and (not st.st_mode & 0o022 or bool(st.st_mode & stat.S_ISVTX))


def open_dir(path: str, make: tuple[int, tuple[int, int] | None] | None = None, *, full: str = "") -> int:
    """A descriptor of the directory `path` (absolute), reached under the rule above. `make`: (mode,
    owner or None) for the directories missing on the way, each made with exactly that mode (and
    owner); None: a missing one is FileNotFoundError. `full`: the path named in a refusal."""
    full = full or path
    parts = [p for p in path.split("/") if p][::-1]  # a stack: the next component last
    fd = os.open("/", _DIR)
    at, hops = "", 0
    try:
        while parts:
            name = parts.pop()
            if name == ".":
                continue
            if name == "..":  # from a root link's target: the parent of the directory reached
                sub = os.open("..", _DIR, dir_fd=fd)
                os.close(fd)
                fd, at = sub, at.rpartition("/")[0]
                continue
            made = False
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                if make is None:
                    raise
                os.mkdir(name, 0o700, dir_fd=fd)
                made = True
            else:
                if stat.S_ISLNK(st.st_mode):
                    if st.st_uid != 0 or not root_only(os.fstat(fd)):
                        raise Refused(errno.ELOOP, refusal(full, f"{at}/{name}"))
                    hops += 1
                    if hops > MAX_LINKS:
                        raise Refused(errno.ELOOP, f"too many links on the way to {full}")
                    target = os.readlink(name, dir_fd=fd)
                    if target.startswith("/"):
                        os.close(fd)
                        fd, at = os.open("/", _DIR), ""
                    parts.extend([p for p in target.split("/") if p][::-1])
                    continue
            try:
                sub = os.open(name, _DIR, dir_fd=fd)
            except OSError as exc:
                now = lstat_in(fd, name)
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and now and stat.S_ISLNK(now.st_mode):
                    raise Refused(errno.ELOOP, refusal(full, f"{at}/{name}")) from exc  # swapped since
                if exc.errno == errno.ENOTDIR:
                    raise Refused(errno.ENOTDIR, f"{at}/{name} exists and is not a directory") from exc
                raise
            os.close(fd)
            fd, at = sub, f"{at}/{name}"
            if made and make is not None:
                mode, owner = make
                if owner is not None:
                    os.fchown(fd, *owner)
                os.fchmod(fd, mode)
        return fd
    except BaseException:
        os.close(fd)
        raise


def lstat_in(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def no_link(dir_fd: int, name: str, full: str) -> os.stat_result | None:
    """The entry's stat (None: there is none); Refused when it is a link."""
    st = lstat_in(dir_fd, name)
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise Refused(errno.ELOOP, refusal(full, full))
    return st


def open_file(dir_fd: int, name: str, full: str) -> int:
    """A regular file in the directory, for reading, never through a link."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Refused(errno.ELOOP, refusal(full, full)) from exc
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise Refused(errno.EINVAL, f"refusing {full}: it is not a regular file")
    return fd


def split(path: str) -> tuple[str, str]:
    head, _, name = path.rstrip("/").rpartition("/")
    return head or "/", name
