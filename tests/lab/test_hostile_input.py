"""Issue 11 (input side) on real nodes: a hostile repo is refused before anything runs. Each variant
ends in exit 1 with a located error; no code ran on the controller, and every node is byte-for-byte as
the last good apply left it (files funops manages, its state file, the units and containers)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab import Lab

from .fleet import apply, edit_yaml, funops, make_repo, reset

SNAPSHOT = """\
cd / && sha256sum etc/systemd/system/web.service etc/funops/apps/* etc/nginx/conf.d/funops-* \
srv/web/* var/lib/funops/state.json 2>&1
ls /tmp
systemctl show -p ActiveEnterTimestampMonotonic -p ExecStart --value web.service
docker inspect -f '{{.State.StartedAt}} {{.Config.Env}}' api 2>/dev/null || true
"""


@pytest.fixture(scope="module")
def repo(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reset(lab)
    repo = make_repo(lab, tmp_path_factory.mktemp("hostile") / "repo")
    code, evs, err = apply(repo)
    assert code == 0, err + json.dumps(evs[-1:])
    yield repo
    reset(lab)


def _snapshot(lab: Lab) -> dict[str, str]:
    return {node.name: lab.exec(node, SNAPSHOT).stdout for node in lab.nodes}


def _web(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    return lambda repo: edit_yaml(repo / "manifests" / "web.yaml", lambda docs: edit(docs[0]["spec"]))


def _api(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    return lambda repo: edit_yaml(repo / "manifests" / "api.yaml", lambda docs: edit(docs[0]["spec"]))


MARKER = "/tmp/funops-hostile-marker"
ESCAPE = f"{{{{ cycler.__init__.__globals__.os.popen('touch {MARKER}').read() }}}}"
VARIANTS = {
    "sandbox escape in a config file": (
        _web(lambda s: s["configFiles"][1].update(content=ESCAPE)),
        r"manifests/web\.yaml:\d+: spec\.configFiles\.1\.content: template refused by the sandbox",
    ),
    "a newline adding ExecStartPre to the unit": (
        _web(lambda s: s.update(command=s["command"] + "\nExecStartPre=/bin/touch /tmp/pwned")),
        r"manifests/web\.yaml:\d+: spec\.command: "
        r"…'.*\\nExecStartPre=/bin/touch.*' holds a line break \(\\n\)",
    ),
    "a var adding LD_PRELOAD to the env file through injectEnv": (
        _api(lambda s: s["vars"].update(userId="42\nLD_PRELOAD=/tmp/x.so")),
        r"funops\.yaml:16: injectEnv\.0\.template: 'mongodb://127\.0\.0\.1:27017/db_u42\\nLD_PRELOAD=/tmp/x\.so_a7'",
    ),
    "a config file over funops's state": (
        _web(lambda s: s["configFiles"].append({"path": "/var/lib/funops/state.json", "content": "{}\n"})),
        r"manifests/web\.yaml:\d+: spec\.configFiles\.\d+\.path: "
        r"/var/lib/funops/state\.json is funops's own file",
    ),
}  # fmt: skip


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_hostile_repo_changes_nothing_anywhere(lab: Lab, repo: Path, variant: str) -> None:
    edit, expected = VARIANTS[variant]
    before = _snapshot(lab)
    originals = {p: p.read_bytes() for p in (repo / "manifests").glob("*.yaml")}
    edit(repo)
    try:
        for args in (("plan",), ("apply", "--auto-approve")):
            done = funops(repo, *args)
            assert done.returncode == 1, done.stdout + done.stderr
            assert re.search(expected, done.stderr), done.stderr
            assert "Traceback" not in done.stderr
    finally:
        for path, data in originals.items():
            path.write_bytes(data)
    assert not Path(MARKER).exists()
    assert _snapshot(lab) == before
