"""Apply tasks for artifacts (issue 15): fetch or receive, verify, unpack, switch `current`, prune.

The release dir is built under a temp name and renamed into place only once complete (its marker
names the sha256 it was made from), and `current` is switched with a rename of a new link over it:
a failed or corrupt download changes nothing a running app sees. A release dir still on the node
with the wanted sha256 is reused: a rollback just switches the link back.
"""

from __future__ import annotations

import posixpath

from ..compile.artifacts import MARKER
from ..compile.resources import Resource
from .tasks import PathMap, Task, q


def place_artifact(res: Resource, path: PathMap) -> Task:
    spec = res.run_spec or {}
    link, target = path(res.name), path(spec["dir"])
    version, want = res.desired["release"], res.desired["sha256"]
    if spec.get("url"):
        fetch = (
            f'curl -fsSL --retry 2 --connect-timeout 10 --max-time 600 -o "$t/.download" -- {q(spec["url"])}'
        )
        what = spec["url"]
    else:
        fetch, what = 'cat > "$t/.download"', f"the upload of {spec.get('upload')}"
    name = spec.get("file") or ""
    place = (
        f'mv -- "$t/.download" "$t/r/"{q(name)}; chmod 0644 -- "$t/r/"{q(name)}'
        if name
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
  printf '%s\\n' "$want" > "$t/r/{MARKER}"
  rm -rf -- "$d"
  mv -T -- "$t/r" "$d"
"""
    if res.content is None and not spec.get("url"):  # from a release record: an upload is not kept
        gone = f"is no longer on this node (uploaded from {spec.get('upload')}): apply that revision again"
        build = f'  echo "release dir $d "{q(gone)}; exit 1'
    # Release dirs are named by versions (letters, digits, '._-'): the newest `keep` stay, and the
    # one `current` names; temp dirs (dot names) are never pruned here.
    script = f"""set -e
umask 022
l={q(link)}; d={q(target)}; want={q(want)}; keep={int(spec.get("keep", 5))}
rels=$(dirname -- "$d")
mkdir -p -- "$rels"
if [ "$(head -c 64 -- "$d/{MARKER}" 2>/dev/null)" = "$want" ]; then
  echo "release dir $d is on the node: nothing to fetch"
else
{build.rstrip()}
fi
touch -- "$d"
ln -sfn -- {q("releases/" + version)} "$l.funops-new"
mv -T -- "$l.funops-new" "$l"
find "$rels" -mindepth 1 -maxdepth 1 ! -name '.*' -printf '%T@ %f\\n' | sort -rn | tail -n +$((keep + 1)) |
  while read -r _ old; do [ "$old" = {q(version)} ] || rm -rf -- "${{rels:?}}/$old"; done
"""
    return Task(f"place {res.id}", script, res.content)


def remove_artifact(link: str, path: PathMap) -> Task:
    """The app is gone from the node: its releases go with it."""
    return Task(f"remove artifact:{link}", f"rm -rf -- {q(path(posixpath.dirname(link)))}\n")
