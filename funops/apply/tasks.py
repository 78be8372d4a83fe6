"""Apply tasks as data: each is a POSIX sh script (plus stdin) built from a change, never run here.

Quoting lives here only (shlex.quote). `path` maps node paths for the transport (a root prefix for
local nodes), so the same task runs over ssh and locally.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from ..compile.resources import Resource
from ..model.strategy import HealthCheck
from ..state.records import artifact_path, artifacts_dir

PathMap = Callable[[str], str]
q = shlex.quote


@dataclass(frozen=True)
class Task:
    name: str  # what people see: "write file:/etc/x", "restart unit:web.service"
    script: str
    stdin: bytes | None = field(default=None, repr=False)


def backup_path(state_dir: str, node_path: str) -> str:
    """Where the previous version of a managed file is kept (restore on a failed nginx -t, rollback)."""
    return f"{state_dir.rstrip('/')}/backup{node_path}"


def _atomic_write(
    target: str,
    mode: str,
    owner: str,
    group: str,
    backup: str | None,
    artifact: tuple[str, str] | None = None,
    private_dirs: bool = False,
) -> str:
    """A script writing its stdin to `target`: a temp file in the same directory, fsync, rename
    over; with `backup`, the previous version is kept there (for restore and rollback). With
    `artifact` (store path, sha256) the content comes from the node's artifact store instead, and
    must still have that hash. Directories it creates (never existing ones) get a mode of their own
    rather than the bundle's umask 077: 0755 root, or with `private_dirs` (a secret's) 0700 owned by
    the file's owner, so an app running as that user can still reach its files."""
    dir_mode, dir_owner = ("0700", f"{q(owner)}:{q(group)}") if private_dirs else ("0755", "root:root")
    source = (
        f"""a={q(artifact[0])}
[ -f "$a" ] || {{ echo "the kept content of $p is no longer on this node"; exit 1; }}
cat -- "$a" > "$t"
[ "$(sha256sum < "$t" | cut -c1-64)" = {q(artifact[1])} ] ||
  {{ echo "the kept content of $p is damaged"; exit 1; }}"""
        if artifact
        else 'cat > "$t"'
    )
    keep = (
        f'b={q(backup)}; if [ -f "$p" ]; then mkdir -p -- "$(dirname -- "$b")"; cp -p -- "$p" "$b"; '
        'else rm -f -- "$b"; fi\n'
        if backup
        else ""
    )
    return f"""set -e
p={q(target)}
funops_mkdir() {{ [ -d "$1" ] && return 0; funops_mkdir "$(dirname -- "$1")" || return 1
  mkdir -m {dir_mode} -- "$1" && chown {dir_owner} -- "$1"; }}
funops_mkdir "$(dirname -- "$p")"
t=$(mktemp "$(dirname -- "$p")/.funops.XXXXXX")
trap 'rm -f -- "$t"' EXIT
{source}
chmod {q(mode)} "$t"
chown {q(owner)}:{q(group)} "$t"
sync -- "$t" 2>/dev/null || true
{keep}mv -f -- "$t" "$p"
trap - EXIT
"""


def write_file(res: Resource, state_dir: str, path: PathMap) -> Task:
    """Atomic, and the old version is kept (see _atomic_write). A resource restored from a release
    record has no content here: the node's artifact store has it."""
    mode, owner, group = res.desired["mode"], res.desired["owner"], res.desired["group"]
    sha = res.desired["sha256"]
    artifact = None if res.content is not None else (path(artifact_path(state_dir, sha)), sha)
    script = _atomic_write(
        path(res.name), mode, owner, group, path(backup_path(state_dir, res.name)), artifact, res.secret
    )
    return Task(f"write {res.id}", script, res.content)


def restore_file(node_path: str, state_dir: str, path: PathMap) -> Task:
    """Undo write_file: put the kept previous version back, or remove a file that was new."""
    target, backup = path(node_path), path(backup_path(state_dir, node_path))
    script = f"""p={q(target)}; b={q(backup)}
if [ -f "$b" ]; then cp -p -- "$b" "$p"; else rm -f -- "$p"; fi
"""
    return Task(f"restore file:{node_path}", script)


def remove_file(node_path: str, state_dir: str, path: PathMap) -> Task:
    target, backup = path(node_path), path(backup_path(state_dir, node_path))
    script = f"""set -e
p={q(target)}; b={q(backup)}
if [ -f "$p" ]; then mkdir -p -- "$(dirname -- "$b")"; cp -p -- "$p" "$b"; rm -f -- "$p"; fi
"""
    return Task(f"remove file:{node_path}", script)


def daemon_reload() -> Task:
    return Task("daemon-reload", "systemctl daemon-reload")


def start_unit(unit: str, restart: bool) -> Task:
    """Enable and (re)start: `restart` when its unit file, env or config changed, else just start."""
    verb = "restart" if restart else "start"
    # `enable` reloads systemd by itself (slow on a busy node); the unit file was loaded by the
    # daemon-reload before, so --no-reload is enough for the [Install] symlinks.
    script = f"""set -e
systemctl is-enabled --quiet {q(unit)} 2>/dev/null || systemctl enable --no-reload --quiet {q(unit)}
systemctl {verb} {q(unit)}
"""
    return Task(f"{verb} unit:{unit}", script)


def stop_unit(unit: str) -> Task:
    return Task(f"stop unit:{unit}", f"systemctl disable --now --quiet {q(unit)} 2>/dev/null || true\n")


def run_container(res: Resource, path: PathMap) -> Task:
    """Pull if missing, remove the old container, run the new one with its labels."""
    spec = res.run_spec or {}
    name, image = spec["name"], spec["image"]
    args = [
        "docker",
        "run",
        "-d",
        "--name",
        name,
        "--network",
        spec.get("network", "host"),
        "--restart",
        spec.get("restart", "unless-stopped"),
    ]
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
    script = f"""set -e
docker image inspect {q(image)} >/dev/null 2>&1 || docker pull -q {q(image)} >/dev/null
{_graceful_stop(name)}docker rm -f {q(name)} >/dev/null 2>&1 || true
{shlex.join(args)} >/dev/null
"""
    return Task(f"run container:{name}", script)


def _security_args(security: dict) -> list[str]:
    """`docker run` flags of the run spec's `security` (see compile/hardening.py)."""
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


def ensure_user(name: str) -> Task:
    """A system user for an app with `createUser`: no login, no home; left alone if it exists."""
    script = (
        f"id -u {q(name)} >/dev/null 2>&1 || useradd --system --user-group --no-create-home "
        f"--home-dir /nonexistent --shell /usr/sbin/nologin {q(name)}\n"
    )
    return Task(f"ensure user {name}", script)


def _graceful_stop(name: str) -> str:
    """`docker stop` first: its stop signal and timeout (given at run) let requests finish; `rm -f`
    alone kills at once."""
    return f"docker stop {q(name)} >/dev/null 2>&1 || true\n"


def start_container(name: str) -> Task:
    return Task(f"start container:{name}", f"docker start {q(name)} >/dev/null\n")


def restart_container(name: str) -> Task:
    return Task(f"restart container:{name}", f"docker restart {q(name)} >/dev/null\n")


def remove_container(name: str, remove_image: bool, keep_images: set[str] = frozenset()) -> Task:
    """Seed 000: stop = remove the container and clean its image up — unless a kept release still
    needs that image for a rollback (Kamal's pruning broke rollback: basecamp/kamal#270)."""
    script = f"""img=$(docker inspect -f '{{{{.Config.Image}}}}' {q(name)} 2>/dev/null || true)
{_graceful_stop(name)}docker rm -f {q(name)} >/dev/null 2>&1 || true
"""
    if remove_image:
        script += (
            f'keep={q(_words(keep_images))}; case "$keep" in *" $img "*) ;; *) '
            'if [ -n "$img" ]; then docker rmi "$img" >/dev/null 2>&1 || true; fi;; esac\n'
        )
    return Task(f"remove container:{name}", script)


def keep_artifacts(state_dir: str, files: list[tuple[str, str]], keep: set[str], path: PathMap) -> Task:
    """The node's artifact store holds the content of every file the kept releases name (copied from
    the live file while it has that hash); what no kept release names goes."""
    store = path(artifacts_dir(state_dir))
    lines = [f"d={q(store)}", 'mkdir -p -- "$d"', 'chmod 0700 "$d"']
    for sha, node_path in sorted(set(files)):
        p = q(path(node_path))
        lines.append(
            f'[ -f "$d/{sha}" ] || {{ [ -f {p} ] && [ "$(sha256sum < {p} | cut -c1-64)" = {sha} ] '
            f'&& cp -- {p} "$d/.{sha}" && mv -f -- "$d/.{sha}" "$d/{sha}"; }} || true'
        )
    lines.append(f"keep={q(_words(keep))}")
    lines.append(
        'for f in "$d"/*; do [ -f "$f" ] || continue; '
        'case "$keep" in *" ${f##*/} "*) ;; *) rm -f -- "$f";; esac; done'
    )
    return Task("keep release artifacts", "\n".join(lines) + "\n")


def prune_images(repositories: set[str], keep: set[str]) -> Task:
    """Remove the images of these repositories that no kept release needs (and no container uses:
    `docker rmi` without -f refuses those)."""
    script = f"keep={q(_words(keep))}\n"
    for repo in sorted(repositories):
        script += (
            f"docker images --format '{{{{.Repository}}}}:{{{{.Tag}}}}' {q(repo)} 2>/dev/null | "
            'while read -r i; do case "$keep" in *" $i "*) ;; *) docker rmi "$i" >/dev/null 2>&1 || true;; '
            "esac; done\n"
        )
    return Task("prune images", script)


def _words(items: set[str]) -> str:
    return " " + " ".join(sorted(items)) + " "


def nginx_test() -> Task:
    return Task("nginx -t", "nginx -t -q 2>&1")


def nginx_reload() -> Task:
    # `systemctl reload` where systemd runs nginx; a signal otherwise (e.g. a container without systemd).
    script = """if [ -d /run/systemd/system ] && systemctl is-active --quiet nginx
then systemctl reload nginx
elif [ -d /run/systemd/system ]; then systemctl start nginx
else nginx -s reload; fi
"""
    return Task("reload nginx", script)


def health_check(
    app: str,
    check: HealthCheck | None,
    *,
    host: str,
    port: int | None,
    unit: str | None,
    container: str | None,
    min_healthy_seconds: float,
) -> Task:
    """One remote loop: retry the check until it passes (or give up), then hold for
    min_healthy_seconds and check again, so a process that crashes right after start fails."""
    check = check or HealthCheck()
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    alive = (
        f"systemctl is-active --quiet {q(unit)}"
        if unit
        else (f'[ "$(docker inspect -f "{{{{.State.Running}}}}" {q(container or "")} 2>/dev/null)" = true ]')
    )
    port = check.port or port
    timeout = f"{check.timeout:g}"
    if check.type == "http":
        url = f"http://{host}:{port}{check.path}"
        probe = (
            f'[ "$(curl -s -o /dev/null -w "%{{http_code}}" --max-time {timeout} {q(url)})" '
            f"= {check.expect_status} ]"
        )
    elif check.type == "tcp":
        probe = f"timeout {timeout} bash -c {q(f'exec 3<>/dev/tcp/{host}/{port}')} 2>/dev/null"
    else:
        probe = "true"
    script = f"""check() {{ {alive} && {probe}; }}
i=0
until check; do
  i=$((i+1)); if [ "$i" -ge {check.retries} ]; then echo "unhealthy after {check.retries} tries"; exit 1; fi
  sleep {check.interval:g}
done
"""
    if min_healthy_seconds:
        script += (
            f"sleep {min_healthy_seconds:g}\ncheck || {{ echo 'unhealthy after "
            f"{min_healthy_seconds:g}s'; exit 1; }}\n"
        )
    return Task(f"health {check.type} {app}", script)


def write_state(node_path: str, content: bytes, path: PathMap) -> Task:
    """The node state file: written atomically, readable by root only."""
    return Task(
        "record state",
        _atomic_write(path(node_path), "0600", "root", "root", None, private_dirs=True),
        content,
    )


# ---- bundles: many tasks, one round trip ---------------------------------------------------------

BUNDLE_RUNNER = "exec sh -s"  # the bundle comes on stdin: no content (or secret) on a command line
_TASK_MARK = "@@funops-task "


@dataclass(frozen=True)
class TaskResult:
    index: int
    exit_code: int
    seconds: float
    output: str


def bundle(tasks: list[Task]) -> str:
    """One sh script running `tasks` in order, each in its own subshell with its own stdin (its data,
    base64 in a here-doc, else /dev/null), stopping at the first failure. Each task's exit code,
    duration and output follow a marker line that `parse_bundle` reads back."""
    lines = ["umask 077", "o=$(mktemp -d) || exit 1", "trap 'rm -rf \"$o\"' EXIT"]
    # Functions first: a here-doc's data starts on the line after its `<<`, so each task runs on one line.
    for i, task in enumerate(tasks):
        lines.append(f"funops_task_{i}() {{\n{task.script.rstrip()}\n}}")
    for i, task in enumerate(tasks):
        run = f'( funops_task_{i} ) > "$o/out" 2>&1'
        lines.append("s=$(date +%s%N)")
        if task.stdin is not None:
            data = base64.encodebytes(task.stdin).decode()
            lines.append(f"base64 -d <<'FUNOPS_DATA' | {run}\n{data}FUNOPS_DATA")
        else:
            lines.append(f"{run} < /dev/null")
        lines.append("rc=$?; e=$(date +%s%N)")
        lines.append(f'printf "\\n{_TASK_MARK}{i} %s %s\\n" "$rc" "$((e - s))"; cat "$o/out"')
        lines.append('[ "$rc" -eq 0 ] || exit 0')
    return "\n".join(lines) + "\n"


def parse_bundle(output: str) -> list[TaskResult]:
    """The results of the tasks that ran (all, or up to and including the first failure)."""
    heads: list[tuple[int, int, float]] = []
    bodies: list[list[str]] = []
    for line in output.split("\n"):
        if line.startswith(_TASK_MARK):
            index, code, nanos = line[len(_TASK_MARK) :].split()
            heads.append((int(index), int(code), round(int(nanos) / 1e9, 3)))
            bodies.append([])
        elif bodies:
            bodies[-1].append(line)
    return [
        TaskResult(i, code, secs, "\n".join(body).strip())
        for (i, code, secs), body in zip(heads, bodies, strict=True)
    ]
