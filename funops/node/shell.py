"""Typed tasks rendered as POSIX sh, and many of them as one bundle: one round trip per node.

Quoting lives here only, in `q` (shlex.quote): every value a task carries reaches the script through
it, numbers too (the task checked them as it was made: tasks/values.py), and none is spliced into a
nested `bash -c` script: that gets its values as positional arguments. `path` maps node paths for
the transport (a root prefix for local nodes), so the same task runs over ssh and locally. The data
a task reads comes on its own stdin (base64 in a here-doc of the bundle), never on a command line.
"""

from __future__ import annotations

import base64
import ipaddress
import math
import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import singledispatch

from ..tasks import model as m
from ..tasks.results import CommandResult, StepResult, TransportError

PathMap = Callable[[str], str]


def q(value: str | int | float) -> str:
    """The one quoting function: a value as one sh word (a number as its shortest decimal)."""
    return shlex.quote(
        value if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value)
    )


@dataclass(frozen=True)
class ShellStep:
    """A task rendered for sh: the script, and the data it reads on stdin."""

    name: str  # what people see: "write file:/etc/x", "restart unit:web.service"
    script: str
    stdin: bytes | None = field(default=None, repr=False)


def render(task: m.Task, path: PathMap) -> ShellStep:
    return ShellStep(task.name, _script(task, path), task.stdin)


@singledispatch
def _script(task: m.Task, path: PathMap) -> str:
    raise TypeError(f"no shell rendering for {type(task).__name__}")


# ---- files and directories -------------------------------------------------------------------------


# Managed paths are walked as node/nofollow.py walks them (its docstring has the rule): from `/`, one
# component at a time, the shell's working directory pinned in each (`cd -P`, then checked with
# `pwd -P`: a component swapped for a link since the check is caught), so what follows is done
# relative to a directory reached without a planted link. Return 2: a component is missing.
_CD = r"""funops_rootonly() {  # $1: a directory's uid:mode, as stat -c %u:%a gives them
  [ "${1%%:*}" = 0 ] && { [ $((0${1#*:} & 022)) = 0 ] || [ $((0${1#*:} & 01000)) != 0 ]; }; }
funops_cd() {  # $1 dir, $2 $3 mode and owner of those made on the way ('': none made), $4 the path to name
  CDPATH=; cd / || return 1; _r=$1; _at=; _n=0; _h=/
  while [ -n "$_r" ]; do
    _c=${_r%%/*}; case $_r in */*) _r=${_r#*/};; *) _r=;; esac
    case $_c in ''|.) continue;; ..)  # from a root link's target: the directory reached's parent
      _h=${_h%/*}; _h=${_h:-/}
      if ! { cd -P .. && _p=$(pwd -P) && [ "$_p" = "$_h" ]; }
      then echo "refusing $4: $_at/.. moved while funops walked it"; return 1; fi
      _at=${_at%/*}; continue;; esac
    if [ -L "$_c" ]; then
      _o=$(stat -c %u -- "$_c") && _d=$(stat -c %u:%a .) || return 1
      if [ "$_o" != 0 ] || ! funops_rootonly "$_d"; then
        echo "refusing $4: $_at/$_c __LINK__"; return 1; fi
      _n=$((_n + 1)); [ "$_n" -le 40 ] || { echo "too many links on the way to $4"; return 1; }
      _t=$(readlink -- "$_c") || return 1
      case $_t in /*) cd / || return 1; _at=; _h=/;; esac
      _r=$_t/$_r; continue
    fi
    if [ ! -e "$_c" ]; then
      [ -n "$2" ] || { echo "$_at/$_c: no such directory"; return 2; }
      if ! { mkdir -m "$2" -- "$_c" && cd -P -- "$_c" && _p=$(pwd -P) && [ "$_p" = "${_h%/}/$_c" ] &&
        chown "$3" .; }
      then echo "refusing $4: $_at/$_c changed while funops made it"; return 1; fi
    else
      [ -d "$_c" ] || { echo "$_at/$_c exists and is not a directory"; return 1; }
      if ! { cd -P -- "$_c" && _p=$(pwd -P) && [ "$_p" = "${_h%/}/$_c" ]; }
      then echo "refusing $4: $_at/$_c __LINK__"; return 1; fi
    fi
    _at=$_at/$_c; _h=$_p
  done
}
""".replace(
    "__LINK__",
    "is a symbolic link that a user other than root could have made "
    "(funops follows only root's links in directories only root can change)",
)


def _no_link(name: str) -> str:
    """Refuse a link where the file is (in the pinned directory)."""
    return (
        f'[ ! -L {name} ] || {{ echo "refusing $p: it is a symbolic link '
        f'(funops writes no managed file through a link)"; exit 1; }}\n'
    )


_ENTER = '( if ! { cd -P -- "$td" && [ "$(pwd -P)" = "${h%/}/$td" ]; }; then exit 1; fi\n'


def _in_private_dir(*steps: str, between: str = "") -> str:
    """Each of `steps` run in a fresh root-only directory made in the pinned one (entries there
    cannot be swapped for links by whoever owns the pinned one), `between` them in the pinned one;
    `f` is the file being made."""
    runs = [f"{_ENTER}{step.rstrip()}\n)\n" for step in steps]
    return (
        "h=$(pwd -P); td=$(mktemp -d ./.funops.XXXXXX); td=${td#./}\n"
        "trap 'rm -rf -- \"$td\"' EXIT\n" + between.join(runs) + 'rmdir -- "$td"; trap - EXIT\n'
    )


def _pin(path: str) -> tuple[str, str]:
    """(the parent directory, the name) of a mapped node path."""
    head, _, name = path.rstrip("/").rpartition("/")
    return head or "/", name


@_script.register
def _(task: m.WriteFile, path: PathMap) -> str:
    """Directories it creates (never existing ones) get 0755 root, or with `private_dirs` (a
    secret's) 0700 owned by the file's owner. The file is made in a private temp dir beside it and
    renamed over it; a link at the file, or on the way (node/nofollow.py's rule), is refused."""
    owner, group = q(task.owner), q(task.group)
    dir_mode, dir_owner = ("0700", f"{owner}:{group}") if task.private_dirs else ("0755", "root:root")
    head, name = _pin(path(task.path))
    if task.content is None and task.store:
        source = f"""a={q(path(task.store))}
[ -f "$a" ] || {{ echo "the kept content of $p is no longer on this node"; exit 1; }}
cat < "$a" > f
[ "$(sha256sum < f | cut -c1-64)" = {q(task.sha256)} ] ||
  {{ echo "the kept content of $p is damaged"; exit 1; }}"""
    else:
        source = "cat > f"
    keep = ""
    if task.backup:
        keep = f'b={q(path(task.backup))}; if [ -f {q(name)} ]; then mkdir -p -- "$(dirname -- "$b")"; '
        keep += f'cp -p -- {q(name)} "$b"; else rm -f -- "$b"; fi\n'
    steps = f"""{source}
chmod {q(task.mode)} f
chown -h {owner}:{group} f
sync -- f 2>/dev/null || true"""
    put = _in_private_dir(steps, f"mv -fT -- f ../{q(name)}", between=keep + _no_link(q(name)))
    return f"""set -e
p={q(path(task.path))}
{_CD}funops_cd {q(head)} {dir_mode} {dir_owner} "$p" || exit 1
{_no_link(q(name))}{put}"""


@_script.register
def _(task: m.RestoreFile, path: PathMap) -> str:
    head, name = _pin(path(task.path))
    put = _in_private_dir(f'cp -p -- "$b" f\nmv -fT -- f ../{q(name)}')
    return f"""p={q(path(task.path))}; b={q(path(task.backup))}
{_CD}if [ -f "$b" ]; then
  funops_cd {q(head)} '' '' "$p" || exit 1
  set -e
  {_no_link(q(name))}{put}else
  funops_cd {q(head)} '' '' "$p"; rc=$?; [ "$rc" = 2 ] && exit 0; [ "$rc" = 0 ] || exit 1
  {_no_link(q(name))}rm -f -- {q(name)}
fi
"""


@_script.register
def _(task: m.RemoveFile, path: PathMap) -> str:
    head, name = _pin(path(task.path))
    n = q(name)
    return f"""p={q(path(task.path))}; b={q(path(task.backup))}
{_CD}funops_cd {q(head)} '' '' "$p"; rc=$?; [ "$rc" = 2 ] && exit 0; [ "$rc" = 0 ] || exit 1
set -e
{_no_link(n)}if [ -f {n} ]; then mkdir -p -- "$(dirname -- "$b")"; cp -p -- {n} "$b"; rm -f -- {n}; fi
"""


@_script.register
def _(task: m.EnsureDirectory, path: PathMap) -> str:
    """The directory is reached as a file's directories are (a root link in a root-only directory
    is followed, any other link refused), then its owner and mode are set on it, not on a name."""
    return f"""set -e
d={q(path(task.path))}
{_CD}funops_cd "$d" 0755 root:root "$d" || exit 1
chown {q(task.owner)}:{q(task.group)} .
chmod {q(task.mode)} .
"""


@_script.register
def _(task: m.RemoveDirectory, path: PathMap) -> str:
    d = q(path(task.path))
    return f"""if [ -d {d} ]; then rmdir -- {d} 2>/dev/null ||
  printf "kept %s: not empty (what is in it is not funops's to delete)\\n" {q(task.path)}; fi
"""


@_script.register
def _(task: m.KeepArtifacts, path: PathMap) -> str:
    """Store entries are named by the sha256 of their content, a secret file's too: no store path
    may reach the command line of a process (`ps` shows it to every user on the node, and a short
    secret is found again from its digest). So content moves by the shell's redirections, `cat`
    naming nothing, and stale entries go with the store they are left out of when it is rebuilt
    (`rm -rf` names only the directory). An entry cut short is found by its digest, not kept."""
    lines = [
        f"d={q(path(task.store))}",
        '[ -d "$d" ] || [ ! -d "$d.old" ] || mv -- "$d.old" "$d"',  # a rebuild cut short
        'mkdir -p -- "$d"',
        'chmod 0700 "$d"',
    ]
    if task.files:
        lines.append('funops_has() { [ -f "$1" ] && [ "$(sha256sum < "$1" | cut -c1-64)" = "$2" ]; }')
    for sha, node_path in sorted(set(task.files)):
        p, s = q(path(node_path)), q(sha)
        lines.append(f'funops_has "$d/"{s} {s} || {{ funops_has {p} {s} && cat < {p} > "$d/"{s}; }} || true')
    lines += [
        f"keep={q(_words(task.keep))}",
        "stale=",
        'for f in "$d"/* "$d"/.[!.]*; do [ -e "$f" ] || [ -L "$f" ] || continue; '
        'case "$keep" in *" ${f##*/} "*) [ -f "$f" ] || stale=1;; *) stale=1;; esac; done',
        'if [ -n "$stale" ]; then',
        '  rm -rf -- "$d.new" && mkdir -m 0700 -- "$d.new" || exit 1',
        '  for s in $keep; do [ -f "$d/$s" ] && { cat < "$d/$s" > "$d.new/$s" || exit 1; }; done',
        '  rm -rf -- "$d.old" && mv -- "$d" "$d.old" && mv -- "$d.new" "$d" && rm -rf -- "$d.old"',
        "fi",
    ]
    return "\n".join(lines) + "\n"


@_script.register
def _(task: m.WriteState, path: PathMap) -> str:
    return _script(
        m.WriteFile(task.path, "", "0600", "root", "root", None, task.content, private_dirs=True), path
    )


# ---- systemd ----------------------------------------------------------------------------------------


@_script.register
def _(task: m.DaemonReload, path: PathMap) -> str:
    if not task.unit_files:
        return "systemctl daemon-reload"
    loaded = " && ".join(f"funops_loaded {q(unit)} {q(file)}" for unit, file in reload_checks(task))
    return f"""funops_loaded() {{  # $1 (a unit) is loaded from $2 as $2 is now
  [ "$(systemctl show -p {",".join(RELOAD_PROPERTIES)} -- "$1" 2>/dev/null | LC_ALL=C sort | tr '\\n' ' ')" \\
    = "FragmentPath=$2 LoadState=loaded NeedDaemonReload=no " ]
}}
if {loaded}; then echo {q(NO_RELOAD)}; else systemctl daemon-reload; fi
"""


RELOAD_PROPERTIES = ("FragmentPath", "LoadState", "NeedDaemonReload")
NO_RELOAD = "every unit file is loaded as written: no reload needed"


def reload_checks(task: m.DaemonReload) -> list[tuple[str, str]]:
    """(unit, its file) of each unit file the reload is for."""
    return [(f.rpartition("/")[2], f) for f in task.unit_files]


@_script.register
def _(task: m.StartUnit, path: PathMap) -> str:
    # `enable` reloads systemd by itself (slow on a busy node); the unit file is loaded (by the
    # daemon-reload before, or by systemd as the unit is used), so --no-reload is enough for the
    # [Install] symlinks.
    unit = q(task.unit)
    return f"""set -e
systemctl is-enabled --quiet {unit} 2>/dev/null || systemctl enable --no-reload --quiet {unit}
systemctl {"restart" if task.restart else "start"} {unit}
"""


@_script.register
def _(task: m.RunCommand, path: PathMap) -> str:
    # Each argument one quoted word: the command is run as given, never re-read by a shell. stdin is
    # closed (the bundle's own stdin must not be eaten), and `exec` keeps its exit code the task's.
    return f"exec {' '.join(q(a) for a in task.argv)} </dev/null\n"


@_script.register
def _(task: m.StopUnit, path: PathMap) -> str:
    return f"systemctl disable --now --quiet {q(task.unit)} 2>/dev/null || true\n"


@_script.register
def _(task: m.EnsureUser, path: PathMap) -> str:
    name = q(task.user)
    return (
        f"id -u {name} >/dev/null 2>&1 || useradd --system --user-group --no-create-home "
        f"--home-dir /nonexistent --shell /usr/sbin/nologin {name}\n"
    )


# ---- containers -------------------------------------------------------------------------------------


def _graceful_stop(name: str) -> str:
    """`docker stop` first: its stop signal and timeout (given at run) let requests finish; `rm -f`
    alone kills at once."""
    return f"docker stop {q(name)} >/dev/null 2>&1 || true\n"


@_script.register
def _(task: m.RunContainer, path: PathMap) -> str:
    spec = task.spec
    name, image = spec["name"], spec["image"]
    args = ["docker", "run", "-d", "--name", name, "--network", spec.get("network", "host"),
            "--restart", spec.get("restart", "unless-stopped")]  # fmt: skip
    if spec.get("envFile"):
        args += ["--env-file", path(spec["envFile"])]
    for volume in spec.get("volumes") or []:
        args += ["-v", volume]
    if spec.get("stopSignal"):
        args += ["--stop-signal", spec["stopSignal"], "--stop-timeout", str(spec["stopTimeout"])]
    if spec.get("memory"):
        args += ["--memory", str(spec["memory"])]
    if spec.get("cpus"):
        args += ["--cpus", str(spec["cpus"])]
    args += _security_args(spec.get("security") or {})
    for key, value in sorted((spec.get("labels") or {}).items()):
        args += ["--label", f"{key}={value}"]
    args.append(image)
    return f"""set -e
docker image inspect {q(image)} >/dev/null 2>&1 || docker pull -q {q(image)} >/dev/null
{_graceful_stop(name)}docker rm -f {q(name)} >/dev/null 2>&1 || true
{" ".join(map(q, args))} >/dev/null
"""


def _security_args(security: dict) -> list[str]:
    """`docker run` flags of the run spec's `security` (see apptypes/hardening.py)."""
    args = []
    if security.get("noNewPrivileges"):
        args += ["--security-opt", "no-new-privileges"]
    for cap in security.get("capDrop") or []:
        args += ["--cap-drop", cap]
    for cap in security.get("capAdd") or []:
        args += ["--cap-add", cap]
    if security.get("pidsLimit"):
        args += ["--pids-limit", str(security["pidsLimit"])]
    if security.get("readOnlyRootfs"):
        # A read-only root still gets a private, non-executable /tmp: most runtimes need one.
        args += ["--read-only", "--tmpfs", "/tmp:rw,noexec,nosuid,size=64m"]
    if security.get("user"):
        args += ["--user", security["user"]]
    return args


@_script.register
def _(task: m.StartContainer, path: PathMap) -> str:
    return f"docker start {q(task.container)} >/dev/null\n"


@_script.register
def _(task: m.RemoveContainer, path: PathMap) -> str:
    """Stop = remove the container (nothing stopped lingers on the node) and clean its image up — unless
    a kept release still needs that image for a rollback (Kamal's pruning broke rollback:
    basecamp/kamal#270)."""
    name = task.container
    script = f"""img=$(docker inspect -f '{{{{.Config.Image}}}}' {q(name)} 2>/dev/null || true)
{_graceful_stop(name)}docker rm -f {q(name)} >/dev/null 2>&1 || true
"""
    if task.remove_image:
        script += (
            f'keep={q(_words(task.keep_images))}; case "$keep" in *" $img "*) ;; *) '
            'if [ -n "$img" ]; then docker rmi "$img" >/dev/null 2>&1 || true; fi;; esac\n'
        )
    return script


@_script.register
def _(task: m.PruneImages, path: PathMap) -> str:
    script = f"keep={q(_words(task.keep))}\n"
    for repo in sorted(task.repositories):
        script += (
            f"docker images --format '{{{{.Repository}}}}:{{{{.Tag}}}}' {q(repo)} 2>/dev/null | "
            'while read -r i; do case "$keep" in *" $i "*) ;; *) docker rmi "$i" >/dev/null 2>&1 || true;; '
            "esac; done\n"
        )
    return script


def _words(items: frozenset[str] | set[str]) -> str:
    return " " + " ".join(sorted(items)) + " "


@_script.register
def _(task: m.DeletePaths, path: PathMap) -> str:
    return f"rm -f -- {' '.join(q(path(p)) for p in task.paths)}\n"


@_script.register
def _(task: m.CheckChallenge, path: PathMap) -> str:
    url = f"http://{task.address}:{int(task.port)}/.well-known/acme-challenge/{task.token}"
    return f"""u={q(url)}; h={q("Host: " + task.host)}; i=0
while :; do
  got=$(curl -sS --max-time 5 -H "$h" -- "$u" 2>&1) &&
    [ "$(printf %s "$got" | sha256sum | cut -c1-64)" = {q(task.sha256)} ] && exit 0
  i=$((i + 1))
  if [ "$i" -ge 10 ]; then
    printf '%s (Host: %s) does not answer the key authorization: %.200s\\n' "$u" {q(task.host)} "$got"
    exit 1
  fi
  sleep 0.5
done
"""


@_script.register
def _(task: m.PruneVersions, path: PathMap) -> str:
    """Version dirs by modification time, newest first; `current`, dot names (temp) never go."""
    return f"""d={q(path(task.directory))}; keep={int(task.keep)}
[ -d "$d" ] || exit 0
cur=$(readlink -- "$d/current" 2>/dev/null || true)
find "$d" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%T@ %f\\n' | sort -rn |
  tail -n +$((keep + 1)) | while read -r _ old; do [ "$old" = "$cur" ] || rm -rf -- "${{d:?}}/$old"; done
"""


# ---- artifacts --------------------------------------------------------------------------------------


@_script.register
def _(task: m.PlaceArtifact, path: PathMap) -> str:
    """The release dir is built under a temp name and renamed into place only once complete (its
    marker names the sha256 it was made from), and `current` is switched with a rename of a new link
    over it: a failed or corrupt download changes nothing a running app sees. A release dir still on
    the node with the wanted sha256 is reused: a rollback just switches the link back."""
    if task.url:
        fetch = f'curl -fsSL --retry 2 --connect-timeout 10 --max-time 600 -o "$t/.download" -- {q(task.url)}'
        what = task.url
    else:
        fetch, what = 'cat > "$t/.download"', f"the upload of {task.upload}"
    place = (
        f'mv -- "$t/.download" "$t/r/"{q(task.file)}; chmod 0644 -- "$t/r/"{q(task.file)}'
        if task.file
        else 'tar -xf "$t/.download" -C "$t/r" --no-same-owner'
    )
    build = f"""  t=$(mktemp -d "$rels/.funops.XXXXXX")
  trap 'rm -rf -- "$t"' EXIT
  {fetch}
  got=$(sha256sum < "$t/.download" | cut -c1-64)
  [ "$got" = "$want" ] || {{
    printf 'sha256 mismatch for %s: got %s, want %s (nothing switched)\\n' {q(what)} "$got" "$want"
    exit 1; }}
  mkdir -m 0755 -- "$t/r"
  {place}
  printf '%s\\n' "$want" > "$t/r/{m.ARTIFACT_MARKER}"
  rm -rf -- "$d"
  mv -T -- "$t/r" "$d"
"""
    if task.content is None and not task.url:  # from a release record: an upload is not kept
        gone = f"is no longer on this node (uploaded from {task.upload}): apply that revision again"
        build = f'  echo "release dir $d "{q(gone)}; exit 1'
    # Release dirs are named by versions (letters, digits, '._-'): the newest `keep` stay, and the
    # one `current` names; temp dirs (dot names) are never pruned here.
    return f"""set -e
umask 022
l={q(path(task.link))}; d={q(path(task.directory))}; want={q(task.sha256)}; keep={q(task.keep)}
rels=$(dirname -- "$d")
mkdir -p -- "$rels"
if [ "$(head -c 64 -- "$d/{m.ARTIFACT_MARKER}" 2>/dev/null)" = "$want" ]; then
  echo "release dir $d is on the node: nothing to fetch"
else
{build.rstrip()}
fi
touch -- "$d"
ln -sfn -- {q("releases/" + task.release)} "$l.funops-new"
mv -T -- "$l.funops-new" "$l"
find "$rels" -mindepth 1 -maxdepth 1 ! -name '.*' -printf '%T@ %f\\n' | sort -rn | tail -n +$((keep + 1)) |
  while read -r _ old; do [ "$old" = {q(task.release)} ] || rm -rf -- "${{rels:?}}/$old"; done
"""


@_script.register
def _(task: m.RemoveArtifact, path: PathMap) -> str:
    """The app is gone from the node: its releases go with it."""
    return f"rm -rf -- {q(path(task.link.rsplit('/', 1)[0]))}\n"


# ---- nginx ------------------------------------------------------------------------------------------


@_script.register
def _(task: m.NginxTest, path: PathMap) -> str:
    return "nginx -t -q 2>&1"


@_script.register
def _(task: m.NginxReload, path: PathMap) -> str:
    return _reload(path, settle=isinstance(task, m.NginxReloadSettled))


def _reload(path: PathMap, settle: bool) -> str:
    """`systemctl reload` where systemd runs nginx; a signal otherwise (e.g. a container without
    systemd). Either returns once the master got its signal, before it has read the new configuration:
    `settle` waits until the master runs a worker it did not have before (it forks the new
    configuration's workers, then tells the old ones to finish their requests), at most 10 s."""
    reload = """if [ -d /run/systemd/system ] && systemctl is-active --quiet nginx
then systemctl reload nginx
elif [ -d /run/systemd/system ]; then systemctl start nginx
else nginx -s reload; fi
"""
    if not settle:
        return reload
    for done, then in (("reload nginx\n", "reload nginx || exit\n"), ("start nginx\n", "start nginx; exit\n"),
                       ("-s reload;", "-s reload || exit;")):  # fmt: skip
        reload = reload.replace(done, then)
    pid = q(path("/run/nginx.pid"))
    return (
        f"m=$(cat {pid} 2>/dev/null); old=\n"
        """if [ -n "$m" ] && command -v pgrep >/dev/null 2>&1; then old=" $(pgrep -P "$m" | tr '\\n' ' ')"; fi
"""
        + reload
        + """[ "$old" != " " ] && [ -n "$old" ] || exit 0
i=0
while [ "$i" -lt 400 ]; do
  for p in $(pgrep -P "$m"); do case "$old " in *" $p "*) ;; *) exit 0 ;; esac; done
  sleep 0.025; i=$((i + 1))
done
"""
    )


# ---- draining ---------------------------------------------------------------------------------------


@_script.register
def _(task: m.DrainWrite, path: PathMap) -> str:
    return f"""set -e
p={q(path(task.path))}
rm -f -- "$p.funops-drain"
[ -f "$p" ] || exit 0  # only a site nginx serves already: a first deploy writes it in its batch
cp -p -- "$p" "$p.funops-drain"
cat > "$p.funops-new"
chmod {q(task.mode)} "$p.funops-new"
mv -f -- "$p.funops-new" "$p"
"""


@_script.register
def _(task: m.DrainTest, path: PathMap) -> str:
    paths = [path(p) for p in task.paths]
    undo = " ".join(f'b={q(p + ".funops-drain")}; [ -f "$b" ] && mv -f -- "$b" {q(p)};' for p in paths)
    keep = " ".join(f"rm -f -- {q(p + '.funops-drain')};" for p in paths)
    return f'if ! out=$(nginx -t -q 2>&1); then {undo} echo "$out"; exit 1; fi; {keep}'


@_script.register
def _(task: m.AwaitIdle, path: PathMap) -> str:
    """Poll `ss` for established connections whose local port is one of `ports` (on `host`)."""
    if task.host in ("", "0.0.0.0", "::"):  # bound to every address: a connection to any of them
        filt = " or ".join(f"sport = :{p:d}" for p in sorted(set(task.ports)))
    else:
        where = f"[{task.host}]" if ":" in task.host else task.host
        filt = " or ".join(f"src {where}:{p:d}" for p in sorted(set(task.ports)))
    # No sleep first: the drain's reload returned once nginx served the new configuration (NginxReload)
    return f"""command -v ss >/dev/null 2>&1 || {{ sleep {q(task.timeout)}; exit 0; }}
end=$(( $(date +%s) + {q(math.ceil(task.timeout))} ))
while [ "$(date +%s)" -lt "$end" ]; do
  [ -z "$(ss -Htn state established {q(f"( {filt} )")} 2>/dev/null)" ] && exit 0
  sleep 0.1
done
"""


# ---- health -----------------------------------------------------------------------------------------


FIRST_PAUSE = 0.02  # seconds before a health check's second try (then doubling up to its interval)


@_script.register
def _(task: m.CheckHealth, path: PathMap) -> str:
    """The target reaches the nested `bash -c` (its /dev/tcp) as positional arguments, never as script."""
    check = task.check
    host = health_host(task.host)
    if task.unit:
        alive = f"systemctl is-active --quiet {q(task.unit)}"
    elif task.container:
        alive = f'[ "$(docker inspect -f "{{{{.State.Running}}}}" {q(task.container)} 2>/dev/null)" = true ]'
    else:
        alive = "true"
    port = check.port or task.port
    timeout = q(check.timeout)
    if check.type == "http":
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}{check.path}"
        probe = (
            f'[ "$(curl -s -o /dev/null -w "%{{http_code}}" --max-time {timeout} {q(url)})" '
            f"= {q(check.expect_status)} ]"
        )
    elif check.type == "tcp":
        tcp = 'exec 3<>"/dev/tcp/$1/$2"'
        probe = f"timeout {timeout} bash -c {q(tcp)} funops-check {q(host)} {q(str(port))} 2>/dev/null"
    else:
        probe = "true"
    # (retries - 1) intervals for the app to come up; the first pauses are shorter within that time
    # (FIRST_PAUSE, doubling up to the interval): an app up a few ms after its start passes then, not
    # a whole interval later. Not a container's: each try runs the docker CLI (≈ 40 ms of the node's
    # CPU), so it waits whole intervals as before. In ms: sh counts in integers. A task made without
    # its checks (no code path makes one) fails closed: one try, no pause.
    numbers = all(type(v) in (int, float) and math.isfinite(v) for v in (check.retries, check.interval))
    budget = round((check.retries - 1) * check.interval * 1000) if numbers else 0
    interval = max(1, round(check.interval * 1000)) if numbers else 1
    first = interval if task.container else round(FIRST_PAUSE * 1000)
    # $1 and $2 are the nested bash's own arguments: single quotes keep them from this sh.
    lint = "# shellcheck disable=SC2016\n" if check.type == "tcp" else ""
    script = f"""{lint}check() {{ {alive} && {probe}; }}
w=0; p={first}
until check; do
  if ! [ "$w" -lt {budget} ]; then echo {q(f"unhealthy after {check.retries} tries")}; exit 1; fi
  s=$p; if [ "$s" -gt $(({budget} - w)) ]; then s=$(({budget} - w)); fi
  sleep "$((s / 1000)).$(printf %03d $((s % 1000)))"
  w=$((w + s)); p=$((p * 2)); if [ "$p" -gt {interval} ]; then p={interval}; fi
done
"""
    if task.min_healthy_seconds:
        secs = q(task.min_healthy_seconds)
        gone = q(f"unhealthy after {task.min_healthy_seconds:g}s")
        script += f"sleep {secs}\ncheck || {{ echo {gone}; exit 1; }}\n"
    return script


def health_host(host: str) -> str:
    """Where a health check connects: an app bound to every address (or none given) is asked on loopback."""
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


# ---- reads -----------------------------------------------------------------------------------------

CONTENT_MARK = "@@funops content "
CONTENT_END = "@@funops content-end"
# Where only funops writes: a file here that funops did not create is drift's `extra`. Unit files are
# funops's when they carry the header of the bundled template (funops/templates/systemd/app.service.j2).
OWN_GLOBS = (
    "/etc/nginx/conf.d/funops-*.conf",
    "/etc/funops/apps/*.env",
    "/etc/funops/tls/*.crt",
    "/etc/funops/tls/*.key",
)
UNIT_GLOB = "/etc/systemd/system/*.service"
UNIT_HEADER = "# Managed by funops"


@_script.register
def _(task: m.Probe, path: PathMap) -> str:
    from .probe import build_script  # the kinds' fragments, assembled

    return build_script(task.ids, task.state_file, path, containers=task.containers)


def _contents(paths: Sequence[str], limit: int) -> str:
    """Print `paths` (as the transport sees them): per file its size, then its bytes in base64 when
    the size is within `limit`; a missing file, a symlink or a non-regular file prints `missing`."""
    lines = []
    for i, p in enumerate(paths):
        lines.append(
            f"echo '{CONTENT_MARK}{i}'; if [ -f {q(p)} ] && [ ! -L {q(p)} ]; then n=$(wc -c < {q(p)}); "
            f'echo "$n"; [ "$n" -le {q(limit)} ] && base64 < {q(p)}; else echo missing; fi'
        )
    lines.append(f"echo '{CONTENT_END}'")
    return "\n".join(lines) + "\n"


@_script.register
def _(task: m.ReadFiles, path: PathMap) -> str:
    return "export LC_ALL=C\n" + _contents([path(p) for p in task.paths], task.limit)


def _glob(path: PathMap, pattern: str) -> str:
    """A glob under the transport's root: the prefix quoted, the pattern itself left to the shell."""
    prefix = path("/")[:-1]
    return (q(prefix) if prefix else "") + pattern


@_script.register
def _(task: m.ProbeExtras, path: PathMap) -> str:
    globs = " ".join(_glob(path, g) for g in OWN_GLOBS)
    lines = [
        "export LC_ALL=C",
        "echo '@@funops own'",
        f'for f in {globs}; do [ -f "$f" ] && sha256sum -- "$f"; done',
        f'for f in {_glob(path, UNIT_GLOB)}; do [ -f "$f" ] && '
        f'head -n 1 -- "$f" | grep -q {q("^" + UNIT_HEADER)} && sha256sum -- "$f"; done',
    ]
    if task.nginx_test:
        lines.append(
            "if command -v nginx >/dev/null 2>&1; then "
            "echo '@@funops nginx'; nginx -t 2>&1; echo \"@@funops nginx-rc $?\"; fi"
        )
    if task.fetch:  # the contents drift diffs need: in this same round trip
        lines.append(_contents([path(p) for p in task.fetch], task.limit).rstrip("\n"))
    lines.append("echo '@@funops end'")
    return "\n".join(lines) + "\n"


# ---- the apply lock ----------------------------------------------------------------------------------


@_script.register
def _(task: m.TakeLock, path: PathMap) -> str:
    # An expired lock is broken only under a second, short-lived mutex (`$d.break`, mkdir): two
    # acquirers that both saw it expire must not both break it (the second would break the lock
    # the first just took). A breaker killed mid-way leaves a mutex that goes after a minute.
    # Only a non-empty lock is judged and removed: a missing or empty one can be replaced by another
    # acquirer's rename at any moment (rename(2) onto an empty directory succeeds), so removing it
    # after the check could remove the lock that acquirer just took. An empty one is rmdir'ed (atomic).
    d, k = q(path(task.lock_dir)), q(path(task.key_file))
    return f"""d={d}; now=$(date +%s); t="$d.new.$$"; b="$d.break"; k={k}
mkdir -p -- "$(dirname -- "$d")" && rm -rf -- "$t" && mkdir -m 0700 -- "$t" && cat > "$t/info" \\
  && echo {q(task.token)} > "$t/token" && echo $((now + {q(task.ttl)})) > "$t/expires" || exit 1
i=0
while [ $i -lt 20 ]; do
  i=$((i + 1))
  if mv -T -- "$t" "$d" 2>/dev/null; then
    [ -s "$k" ] || {{ (umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \\n' > "$k.$$") \\
      && mv -f -- "$k.$$" "$k"; }}
    exit 0
  fi
  [ -d "$d" ] || continue
  if mkdir -- "$b" 2>/dev/null; then
    exp=0
    rmdir -- "$d" 2>/dev/null
    if [ -d "$d" ]; then
      exp=$(cat -- "$d/expires" 2>/dev/null)
      case "$exp" in ''|*[!0-9]*) exp=0;; esac
      [ -s "$d/token" ] || exp=0
      [ "$exp" -lt "$now" ] && rm -rf -- "$d"
    fi
    rmdir -- "$b"
    [ "$exp" -lt "$now" ] || break
  else
    find "$b" -maxdepth 0 -mmin +1 -exec rmdir -- {{}} \\; 2>/dev/null; sleep 0.1
  fi
done
rm -rf -- "$t"; cat -- "$d/info" 2>/dev/null; exit {m.LOCK_HELD}
"""


@_script.register
def _(task: m.RenewLock, path: PathMap) -> str:
    """The new expiry is written aside and renamed: a reader never sees it empty."""
    return (
        f'd={q(path(task.lock_dir))}; [ "$(cat -- "$d/token" 2>/dev/null)" = {q(task.token)} ] '
        f"|| exit {m.LOCK_HELD}\n"
        f'echo $(( $(date +%s) + {q(task.ttl)} )) > "$d/expires.$$" '
        '&& mv -f -- "$d/expires.$$" "$d/expires"'
    )


@_script.register
def _(task: m.ReleaseLock, path: PathMap) -> str:
    return (
        f'd={q(path(task.lock_dir))}; [ "$(cat -- "$d/token" 2>/dev/null)" = {q(task.token)} ] '
        '&& rm -rf -- "$d"'
    )


@_script.register
def _(task: m.BreakLock, path: PathMap) -> str:
    return (
        f'd={q(path(task.lock_dir))}; mkdir -- "$d.break" 2>/dev/null || exit 0\n'
        f'[ "$(cat -- "$d/token" 2>/dev/null)" = {q(task.token)} ] && rm -rf -- "$d"; rmdir -- "$d.break"'
    )


# ---- the agent's installation ------------------------------------------------------------------------


@_script.register
def _(task: m.MakeCertificate, path: PathMap) -> str:
    cert, key = q(path(task.cert)), q(path(task.key))
    alt = ",".join(f"{'IP' if _is_ip(n) else 'DNS'}:{n}" for n in task.names)
    addext = f" -addext {q('subjectAltName=' + alt)}" if alt else ""
    return f"""set -e
if [ ! -s {cert} ] || [ ! -s {key} ]; then
  mkdir -p -- "$(dirname -- {cert})" "$(dirname -- {key})"
  (umask 077; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \\
    -subj {q("/CN=" + task.subject)}{addext} -keyout {key}.new -out {cert}.new 2>/dev/null)
  mv -f -- {key}.new {key}; chmod 0644 -- {cert}.new; mv -f -- {cert}.new {cert}
fi
echo "sha256:$(openssl x509 -in {cert} -outform der | sha256sum | cut -c1-64)"
"""


@_script.register
def _(task: m.PointLink, path: PathMap) -> str:
    link = q(path(task.link))
    return f"ln -sfn -- {q(task.target)} {link}.new && mv -fT -- {link}.new {link}"


_PYTHON_FACTS = (
    "import json, platform, sys; libc, version = platform.libc_ver(); "
    'print(json.dumps({"cacheTag": sys.implementation.cache_tag, "machine": platform.machine(), '
    '"libc": libc, "libcVersion": version, "version": platform.python_version()}))'
)


@_script.register
def _(task: m.ProbePython, path: PathMap) -> str:
    py = "/usr/bin/python3"
    return f"if [ -x {py} ]; then {py} -I -c {q(_PYTHON_FACTS)}; else echo '{{}}'; fi\n"


# ---- bundles: many tasks, one round trip ---------------------------------------------------------

BUNDLE_RUNNER = "exec sh -s"  # the bundle comes on stdin: no content (or secret) on a command line
TASK_MARK = "@@funops-task "


def bundle(steps: list[ShellStep]) -> str:
    """One sh script running `steps` in order, each in its own subshell with its own stdin (its data,
    base64 in a here-doc, else /dev/null), stopping at the first failure. Each step's exit code,
    duration and output follow a marker line that `parse_bundle` reads back."""
    lines = ["umask 077", "o=$(mktemp -d) || exit 1", "trap 'rm -rf \"$o\"' EXIT"]
    # The link-safe walk every file step carries is defined once for the bundle (the steps' subshells
    # inherit it), not once per file.
    scripts = [step.script for step in steps]
    if any(_CD in script for script in scripts):
        lines.append(_CD.rstrip())
        scripts = [script.replace(_CD, "") for script in scripts]
    # Functions first: a here-doc's data starts on the line after its `<<`, so each step runs on one line.
    for i, script in enumerate(scripts):
        lines.append(f"funops_task_{i}() {{\n{script.rstrip()}\n}}")
    for i, step in enumerate(steps):
        run = f'( funops_task_{i} ) > "$o/out" 2>&1'
        lines.append("s=$(date +%s%N)")
        if step.stdin is not None:
            data = base64.encodebytes(step.stdin).decode()
            lines.append(f"base64 -d <<'FUNOPS_DATA' | {run}\n{data}FUNOPS_DATA")
        else:
            lines.append(f"{run} < /dev/null")
        lines.append("rc=$?; e=$(date +%s%N)")
        lines.append(f'printf "\\n{TASK_MARK}{i} %s %s\\n" "$rc" "$((e - s))"; cat "$o/out"')
        lines.append('[ "$rc" -eq 0 ] || exit 0')
    return "\n".join(lines) + "\n"


@_script.register
def _(task: m.ReadLogs, path: PathMap) -> str:
    # stderr joins stdout: a container's stderr is its log too, and a failure shows with its node.
    if task.container is not None:
        args = ["docker", "logs", "--timestamps"]
        if task.since_seconds is not None:
            args += ["--since", f"{task.since_seconds}s"]
        if task.since_time is not None:
            args += ["--since", task.since_time]
        if task.lines is not None:
            args += ["--tail", str(task.lines)]
        if task.follow:
            args.append("--follow")
        name = q(task.container)
        # A replicas app runs on some of its matching nodes only: the others have no container.
        return f"""docker container inspect {name} >/dev/null 2>&1 || exit 0
exec {" ".join(q(a) for a in args)} {name} 2>&1
"""
    # No colours: ssh streams through a pty, where journalctl would otherwise add escapes.
    args = ["env", "SYSTEMD_COLORS=0", "journalctl", "--no-pager", "--quiet", "--output", "short-iso"]
    for unit in task.units:
        args += ["--unit", unit]
    if task.since_seconds is not None:
        args += ["--since", f"-{task.since_seconds}s"]
    if task.since_time is not None:
        args += ["--since", task.since_time.replace("T", " ")]
    if task.lines is not None:
        args += ["--lines", str(task.lines)]
    if task.follow:
        args.append("--follow")
    return f"exec {' '.join(q(a) for a in args)} 2>&1\n"


class ShellRunner:
    """What ssh and local nodes share: typed tasks rendered into sh and run with the transport's
    `run` (the one place a script reaches a node)."""

    def run(self, script: str, *, stdin: bytes | None = None, timeout: float | None = None) -> CommandResult:
        raise NotImplementedError

    def path(self, node_path: str) -> str:
        raise NotImplementedError

    def stream_script(self, script: str, on_line: Callable[[str], None], timeout: float | None = None) -> int:
        raise NotImplementedError

    def call(self, task: m.Task, timeout: float | None = None) -> CommandResult:
        step = render(task, self.path)
        return self.run(step.script, stdin=step.stdin, timeout=timeout)

    def stream(self, task: m.Task, on_line: Callable[[str], None], timeout: float | None = None) -> int:
        step = render(task, self.path)
        return self.stream_script(step.script, on_line, timeout)

    def run_tasks(
        self, tasks: list[m.Task], timeout: float | None = None
    ) -> tuple[list[StepResult], CommandResult]:
        steps = bundle([render(t, self.path) for t in tasks])
        result = self.run(BUNDLE_RUNNER, stdin=steps.encode(), timeout=timeout)
        return parse_bundle(result.text()), result


def bundle_text(steps: list[StepResult]) -> str:
    """The steps as the bundle prints them (parse_bundle reads them back): an agent's answer to a
    controller of protocol 1, older than typed results."""
    return "".join(
        f"\n{TASK_MARK}{s.index} {s.exit_code} {round(s.seconds * 1e9)}\n{s.output}" for s in steps
    )


def parse_bundle(output: str) -> list[StepResult]:
    """The results of the steps that ran (all, or up to and including the first failure)."""
    heads: list[tuple[int, int, float]] = []
    bodies: list[list[str]] = []
    for line in output.split("\n"):
        if line.startswith(TASK_MARK):
            index, code, nanos = line[len(TASK_MARK) :].split()
            heads.append((int(index), int(code), round(int(nanos) / 1e9, 3)))
            bodies.append([])
        elif bodies:
            bodies[-1].append(line)
    return [
        StepResult(i, code, secs, "\n".join(body).strip())
        for (i, code, secs), body in zip(heads, bodies)  # noqa: B905 (equal lengths by construction; strict= is 3.10+, nodes run 3.9)
    ]


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def run_sh(
    script: str, stdin: bytes | None, timeout: float | None, env: dict[str, str] | None, who: str = ""
) -> CommandResult:
    """A script run by this machine's /bin/sh (a local node's, the agent's): its exit code and output;
    TransportError, prefixed with `who`, when it cannot be run or times out."""
    try:
        done = subprocess.run(
            ["/bin/sh", "-c", script], input=stdin, capture_output=True, timeout=timeout, check=False, env=env
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TransportError(f"{who}{exc}") from exc
    return CommandResult(done.returncode, done.stdout, done.stderr)
