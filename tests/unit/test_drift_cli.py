"""`funops drift` on the local transport: exit codes, the JSON contract and its shipped schema,
acknowledgements, --notify, no prompt without a TTY, no colour without a TTY or with NO_COLOR."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema

from funops.drift.document import drift_schema
from tests.conftest import webhook

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "funops" / "schemas" / "drift.schema.json"
INDEX = "/srv/web/index.html"


def funops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "funops", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=env or {"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )


def drifted(example: Path, content: str = "edited by hand\n") -> Path:
    """node2 as if funops had applied index.html there (recorded in its state file), then edited."""
    root = example / ".funops" / "nodes" / "node2"
    (root / "srv/web").mkdir(parents=True, exist_ok=True)
    (root / "srv/web/index.html").write_text(content)
    applied = {"sha256": hashlib.sha256(b"as applied\n").hexdigest(), "mode": "0644", "owner": "root"}
    live = (root / "srv/web/index.html").stat()
    import grp
    import pwd

    applied |= {"owner": pwd.getpwuid(live.st_uid).pw_name, "group": grp.getgrgid(live.st_gid).gr_name}
    state = {"managed": {f"file:{INDEX}": {"owner": "app/web", "kind": "file", "applied": applied}}}
    (root / "var/lib/funops").mkdir(parents=True, exist_ok=True)
    (root / "var/lib/funops/state.json").write_text(json.dumps(state) + "\n")  # as funops writes it
    (root / "var/lib/funops/fingerprint.key").write_text("0f" * 32)  # made by funops's first apply
    return example


def report(example: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = funops("drift", "-C", str(example), "-o", "json", *args)
    doc = json.loads(done.stdout)
    jsonschema.validate(doc, json.loads(SCHEMA_FILE.read_text()))
    return done.returncode, doc


def test_shipped_drift_schema_matches_the_models() -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == drift_schema(), (
        f"regenerate: funops schema drift > {SCHEMA_FILE}"
    )
    done = funops("schema", "drift")
    assert done.returncode == 0 and json.loads(done.stdout) == drift_schema()


def test_never_applied_nodes_have_pending_changes_and_no_drift(example: Path) -> None:
    code, doc = report(example)
    assert (code, doc["kind"], doc["formatVersion"], doc["status"]) == (0, "drift", 1, "clean")
    assert doc["summary"]["drift"] == 0 and doc["summary"]["pending"] > 0


def test_a_hand_edit_is_drift_exit_2_with_json_text_and_markdown(example: Path) -> None:
    drifted(example)
    code, doc = report(example)
    assert (code, doc["exitCode"], doc["status"]) == (2, 2, "drift")
    [item] = [i for n in doc["nodes"] for i in n["drift"]]
    assert (item["id"], item["class"], item["baseline"], item["fixable"]) == (
        f"file:{INDEX}", "modified", "applied", True,
    )  # fmt: skip
    assert doc["summary"]["byClass"]["modified"] == 1 and doc["summary"]["nodesDrifted"] == 1
    text = funops("drift", "-C", str(example))
    assert (
        text.returncode == 2 and "✗ modified" in text.stdout and "Drift: 1 item(s) on 1 of 3" in text.stdout
    )
    markdown = funops("drift", "-C", str(example), "-o", "markdown").stdout
    assert "| node2 | `file:/srv/web/index.html` | **modified** | app/web | edited by hand: hmac:" in markdown


def test_unknown_node_or_bad_ack_file_is_an_error_before_any_node(example: Path) -> None:
    done = funops("drift", "-C", str(example), "--node", "nope")
    assert done.returncode == 1 and "unknown node(s): nope" in done.stderr
    (example / "drift-ack.yaml").write_text("apiVersion: funops/v1\nkind: DriftAcknowledgements\nacks: []\n")
    done = funops("drift", "-C", str(example))
    assert done.returncode == 1 and "drift-ack.yaml:3: acks: unknown field" in done.stderr


def test_ack_covers_the_drift_until_it_changes(example: Path) -> None:
    drifted(example)
    until = (dt.date.today() + dt.timedelta(days=7)).isoformat()
    args = ("drift", "ack", "node2", f"file:{INDEX}", "--reason", "demo", "--until", until, "--by", "ci")
    done = funops(*args, "-C", str(example))
    assert done.returncode == 0, done.stderr
    code, doc = report(example)
    assert (code, doc["summary"]["drift"], doc["summary"]["acknowledged"]) == (0, 0, 1)
    drifted(example, "edited again\n")
    assert report(example)[0] == 2
    past = funops("drift", "ack", "node2", f"file:{INDEX}", "--reason", "x", "--until", "2000-01-01",
                  "-C", str(example))  # fmt: skip
    assert past.returncode == 1 and "has passed" in past.stderr
    none = funops(
        "drift", "ack", "node1", f"file:{INDEX}", "--reason", "x", "--until", until, "-C", str(example)
    )
    assert none.returncode == 1 and "no drift of file:/srv/web/index.html on node1" in none.stderr


def test_fix_without_a_tty_needs_auto_approve_and_changes_nothing(example: Path) -> None:
    drifted(example)
    done = funops("drift", "-C", str(example), "--fix")
    assert done.returncode == 1 and "pass --auto-approve" in done.stderr
    assert (example / ".funops/nodes/node2/srv/web/index.html").read_text() == "edited by hand\n"


def test_notify_posts_only_when_not_clean_and_a_dead_hook_is_a_warning(example: Path) -> None:
    with webhook() as (url, got):
        assert funops("drift", "-C", str(example), "--notify", url).returncode == 0 and got == []
        drifted(example)
        assert funops("drift", "-C", str(example), "--notify", url).returncode == 2
        assert json.loads(got[0])["summary"]["drift"] == 1
    done = funops("drift", "-C", str(example), "--notify", url)
    assert done.returncode == 2 and "warning: --notify" in done.stderr and "TOKEN123" not in done.stderr
    bad = funops("drift", "-C", str(example), "--notify", "file:///etc/passwd")
    assert bad.returncode == 1 and "http:// or https://" in bad.stderr


def run_in_pty(args: list[str], env: dict[str, str]) -> str:
    """Run with stdout on a pseudo-terminal (what a person sees); return what was written there."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        args, stdout=follower, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env
    )
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=60)
    os.close(leader)
    return out.decode(errors="replace")


def test_colour_only_on_a_terminal_and_never_with_no_color(example: Path) -> None:
    drifted(example)
    args = [sys.executable, "-m", "funops", "drift", "-C", str(example)]
    base = {"PATH": "/usr/bin:/bin", "TERM": "xterm-256color"}
    assert "\x1b[" in run_in_pty(args, base)  # a person at a terminal gets colour
    assert "\x1b[" not in run_in_pty(args, base | {"NO_COLOR": "1"})
    piped = subprocess.run(args, capture_output=True, text=True, env=base, timeout=60)
    assert piped.returncode == 2 and "\x1b[" not in piped.stdout + piped.stderr
