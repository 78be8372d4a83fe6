"""The services of a simulated node as PATH shims that succeed like a healthy node's: `systemctl`
keeps each unit's enabled/active state under the node's root and answers `show`, `is-active` and
`is-enabled` from it, so a probe after an apply sees the units it started; `nginx -t`, reloads and
`-v` succeed; `docker` and `journalctl` have nothing to show. Nothing here touches this machine's
services: the agent runs scripts with these shims first on PATH (funops never calls a service by
absolute path)."""

from __future__ import annotations

from pathlib import Path

NGINX_VERSION = "1.22.1"
STATE = "/run/fleet-sim"  # under the node's root: what the fake systemd knows
SYSTEMD_MARK = "/run/systemd/system"  # under the root: the probe's "systemd is the init" test

_SYSTEMCTL = r"""#!/bin/sh
# A simulated node's systemctl: unit state in files under the node's root.
R={root}; S="$R{state}"; mkdir -p "$S"
quiet=; props=; cmd=
while [ $# -gt 0 ]; do
  case "$1" in
    --quiet|-q) quiet=1;; --no-reload|--now|--no-pager|--) ;;
    -p) shift; props="$props $1";;
    -*) ;;
    *) if [ -z "$cmd" ]; then cmd=$1; else break; fi;;
  esac
  shift
done
unit_show() {{
  u=$1; f="$R/etc/systemd/system/$u"
  if [ -f "$f" ]; then load=loaded; else load=not-found; fi
  if [ -f "$S/$u.active" ]; then act=active; sub=running; ts=$(cat "$S/$u.active")
  else act=inactive; sub=dead; ts=; fi
  if [ -f "$S/$u.enabled" ]; then en=enabled; elif [ "$load" = loaded ]; then en=disabled; else en=; fi
  for p in ${{props:-Id LoadState ActiveState SubState UnitFileState ActiveEnterTimestamp NRestarts}}; do
    case "$p" in
      Id) echo "Id=$u";; LoadState) echo "LoadState=$load";; ActiveState) echo "ActiveState=$act";;
      SubState) echo "SubState=$sub";; UnitFileState) echo "UnitFileState=$en";;
      ActiveEnterTimestamp) echo "ActiveEnterTimestamp=$ts";; NRestarts) echo "NRestarts=0";;
    esac
  done
}}
case "$cmd" in
  show) first=1; for u in "$@"; do [ -n "$first" ] || echo; first=; unit_show "$u"; done;;
  daemon-reload|reload|reload-or-restart) ;;
  is-active) [ -f "$S/$1.active" ] || {{ [ -n "$quiet" ] || echo inactive; exit 3; }}
    [ -n "$quiet" ] || echo active;;
  is-enabled) [ -f "$S/$1.enabled" ] || {{ [ -n "$quiet" ] || echo disabled; exit 1; }}
    [ -n "$quiet" ] || echo enabled;;
  enable) for u in "$@"; do : > "$S/$u.enabled"; done;;
  start) for u in "$@"; do [ -f "$S/$u.active" ] || date '+%a %Y-%m-%d %H:%M:%S UTC' > "$S/$u.active"; done;;
  restart) for u in "$@"; do date '+%a %Y-%m-%d %H:%M:%S UTC' > "$S/$u.active"; done;;
  stop) for u in "$@"; do rm -f "$S/$u.active"; done;;
  disable) for u in "$@"; do rm -f "$S/$u.enabled" "$S/$u.active"; done;;
  *) echo "simulated systemctl: $cmd not simulated" >&2; exit 1;;
esac
"""

_NGINX = """#!/bin/sh
# A simulated node's nginx: every configuration tests fine, reloads succeed.
case "$*" in *-v*|*-V*) echo "nginx version: nginx/{version}" >&2;; esac
exit 0
"""

_NOTHING = """#!/bin/sh
# A simulated node has no {name} to show.
exit 0
"""


def install(root: Path) -> Path:
    """Write the shims of the node under `root` (in `root`/.sim/bin) and its systemd mark; the bin dir."""
    bin_dir = root / ".sim" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (root / SYSTEMD_MARK.lstrip("/")).mkdir(parents=True, exist_ok=True)
    scripts = {
        "systemctl": _SYSTEMCTL.format(root=_sh_quote(str(root)), state=STATE),
        "nginx": _NGINX.format(version=NGINX_VERSION),
        "docker": _NOTHING.format(name="container"),
        "journalctl": _NOTHING.format(name="journal"),
        "service": _NOTHING.format(name="service"),
        "invoke-rc.d": _NOTHING.format(name="service"),
    }
    for name, text in scripts.items():
        shim = bin_dir / name
        shim.write_text(text)
        shim.chmod(0o755)
    return bin_dir


def show(root: Path, units: list[str], properties: tuple[str, ...]) -> str:
    """What the systemctl shim's `show -p … -- UNITS` prints, read in-process: the simulated node's
    answer to what a real agent reads from systemd's bus without running systemctl."""
    state = root / STATE.lstrip("/")
    blocks = []
    for unit in units:
        loaded = (root / "etc/systemd/system" / unit).is_file()
        try:
            since = (state / f"{unit}.active").read_text().strip()
            active, sub = "active", "running"
        except FileNotFoundError:
            since, active, sub = "", "inactive", "dead"
        enabled = "enabled" if (state / f"{unit}.enabled").exists() else "disabled" if loaded else ""
        values = {
            "Id": unit, "LoadState": "loaded" if loaded else "not-found", "ActiveState": active,
            "SubState": sub, "UnitFileState": enabled, "ActiveEnterTimestamp": since, "NRestarts": "0",
        }  # fmt: skip
        blocks.append("".join(f"{p}={values[p]}\n" for p in properties if p in values))
    return "\n".join(blocks)


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"
