"""Issue 6 acceptance: `funops drift` against real nodes, hand-made drift, --fix, acknowledgements,
--notify, and the CI / cron examples' own commands.

The tests run in file order on one repo (the bundled example with the lab's inventory).
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from lab import Lab

from .fleet import apply, edit_yaml, funops, make_repo, reset

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "funops" / "schemas" / "drift.schema.json").read_text())
EXAMPLES = ROOT / "examples"
ENV_FILE = "file:/etc/funops/apps/api.env"
FUNOPS_LINE = re.compile(r"^\s*(- )?funops (plan|apply|drift)\b", re.M)


@pytest.fixture(scope="module", params=["ssh", "agent"])
def repo(
    lab: Lab, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Path]:
    """Every test over both transports (issue 13: the agent is a drop-in for ssh)."""
    reset(lab)
    path = make_repo(lab, tmp_path_factory.mktemp("drift") / "repo", transport=request.param)
    code, _, err = apply(path)
    assert code == 0, err
    yield path
    reset(lab)


def drift(repo: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = funops(repo, "drift", "-o", "json", *args)
    assert done.returncode != 1, done.stderr
    doc = json.loads(done.stdout)
    jsonschema.validate(doc, SCHEMA)  # every real report, against the shipped schema
    assert doc["exitCode"] == done.returncode
    return done.returncode, doc


def found(doc: dict[str, Any], acknowledged: bool = False) -> set[tuple[str, str, str]]:
    return {
        (n["name"], i["id"], i["class"])
        for n in doc["nodes"]
        for i in n["drift"]
        if i["acknowledged"] is acknowledged
    }


def test_drift_is_clean_right_after_apply(repo: Path) -> None:
    code, doc = drift(repo)
    assert (code, doc["status"], found(doc)) == (0, "clean", set())
    assert any(n["nginxTest"] == {"ok": True, "output": ""} for n in doc["nodes"])  # nginx -t on node1


def test_hand_made_drift_is_found_classified_and_fixed(lab: Lab, repo: Path) -> None:
    lab.exec("node2", "echo 'HANDEDIT=xyzzy' >> /etc/funops/apps/api.env", check=True)
    lab.exec("node3", "systemctl stop web.service", check=True)
    lab.exec("node3", "docker rm -f api", check=True)

    code, doc = drift(repo)
    assert code == 2 and doc["status"] == "drift"
    assert found(doc) == {
        ("node2", ENV_FILE, "modified"),
        ("node3", "unit:web.service", "stopped"),
        ("node3", "container:api", "missing"),
    }
    assert "xyzzy" not in json.dumps(doc)  # the env file is secret: fingerprints only
    markdown = funops(repo, "drift", "-o", "markdown")
    assert markdown.returncode == 2
    assert "| node | resource | drift | owner | what | --fix |" in markdown.stdout
    assert f"| node2 | `{ENV_FILE}` | **modified** |" in markdown.stdout

    fixed = funops(repo, "drift", "--fix", "--auto-approve", "-o", "json")
    assert fixed.returncode == 0, fixed.stderr
    report = json.loads(fixed.stdout)
    assert report["fix"]["nodes"]["node2"]["status"] == "succeeded"
    assert "node1" not in report["fix"]["nodes"]  # only the drifted nodes are planned and touched
    assert "xyzzy" not in lab.exec("node2", "cat /etc/funops/apps/api.env").stdout
    assert lab.exec("node3", "systemctl is-active web.service").stdout.strip() == "active"
    assert lab.exec("node3", "docker inspect -f '{{.State.Status}}' api").stdout.strip() == "running"
    assert drift(repo)[0] == 0


def test_acknowledged_drift_passes_until_its_date_or_until_it_changes(lab: Lab, repo: Path) -> None:
    lab.exec("node2", "echo '# hotfix' >> /etc/funops/apps/api.env", check=True)
    assert drift(repo)[0] == 2
    future = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    ack = funops(
        repo, "drift", "ack", "node2", ENV_FILE, "--reason", "hotfix, ticket OPS-1", "--until", future
    )
    assert ack.returncode == 0, ack.stderr
    acks = yaml.safe_load((repo / "drift-ack.yaml").read_text())["acknowledgements"]
    assert [(a["node"], a["resource"], a["until"]) for a in acks] == [("node2", ENV_FILE, future)]

    code, doc = drift(repo)
    assert (code, found(doc), found(doc, acknowledged=True)) == (0, set(), {("node2", ENV_FILE, "modified")})
    item = next(i for n in doc["nodes"] for i in n["drift"])
    assert item["ack"]["reason"] == "hotfix, ticket OPS-1" and not item["ack"]["expired"]

    past = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    text = (repo / "drift-ack.yaml").read_text()
    (repo / "drift-ack.yaml").write_text(text.replace(future, past))
    code, doc = drift(repo)
    assert (code, found(doc)) == (2, {("node2", ENV_FILE, "modified")})
    assert next(i for n in doc["nodes"] for i in n["drift"])["ack"]["expired"] is True

    (repo / "drift-ack.yaml").write_text(text)  # the future date again, but the drift changes
    lab.exec("node2", "echo '# and another edit' >> /etc/funops/apps/api.env", check=True)
    code, doc = drift(repo)
    assert (code, found(doc)) == (2, {("node2", ENV_FILE, "modified")})

    # Acknowledged again; then other drift on the same node: --fix would converge the whole node and
    # revert the acknowledged hotfix too, so it refuses.
    again = funops(repo, "drift", "ack", "node2", ENV_FILE, "--reason", "hotfix 2", "--until", future)
    assert again.returncode == 0 and drift(repo)[0] == 0
    lab.exec("node2", "systemctl stop web.service", check=True)
    assert found(drift(repo)[1]) == {("node2", "unit:web.service", "stopped")}
    refused = funops(repo, "drift", "--fix", "--auto-approve")
    assert refused.returncode == 1 and "acknowledged drift" in refused.stderr
    (repo / "drift-ack.yaml").unlink()
    assert funops(repo, "drift", "--fix", "--auto-approve").returncode == 0


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append({"path": self.path, "type": self.headers["Content-Type"], "body": body})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_notify_posts_the_json_report_when_drift_is_found(lab: Lab, repo: Path) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hooks/s3cr3t-token"
    _Hook.received.clear()  # the module runs once per transport
    try:
        assert funops(repo, "drift", "--notify", url).returncode == 0
        assert _Hook.received == []  # clean: nothing sent
        lab.exec("node3", "systemctl stop web.service", check=True)
        done = funops(repo, "drift", "--notify", url)
        assert done.returncode == 2, done.stderr
        [hook] = _Hook.received
        assert hook["path"] == "/hooks/s3cr3t-token" and hook["type"] == "application/json"
        sent = json.loads(hook["body"])
        jsonschema.validate(sent, SCHEMA)
        assert found(sent) == {("node3", "unit:web.service", "stopped")}
    finally:
        server.shutdown()
        server.server_close()
    # A webhook that is gone is a warning, not a crash; the exit code stays the drift's; no token leaks.
    done = funops(repo, "drift", "--notify", url)
    assert done.returncode == 2
    assert "warning: --notify: http://127.0.0.1" in done.stderr and "s3cr3t" not in done.stderr + done.stdout
    assert funops(repo, "drift", "--fix", "--auto-approve").returncode == 0


# ---------------------------------------------------------------- the examples' own commands


def ci_env(tmp: Path) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)  # where `funops` is installed
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "NO_COLOR": "1",
            "GITHUB_OUTPUT": str(tmp / "output"), "GITHUB_STEP_SUMMARY": str(tmp / "summary")}  # fmt: skip


def github_steps(job: str) -> list[str]:
    workflow = yaml.safe_load((EXAMPLES / "ci" / "github-actions.yml").read_text())
    return [s["run"] for s in workflow["jobs"][job]["steps"] if FUNOPS_LINE.search(s.get("run", ""))]


def gitlab_lines(job: str) -> list[str]:
    pipeline = yaml.safe_load((EXAMPLES / "ci" / "gitlab-ci.yml").read_text())
    return [line for line in pipeline[job]["script"] if FUNOPS_LINE.search(line)]


def run_script(script: str, repo: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    # GitHub's `run:` shell; GitLab runs each line in sh with errexit: the same for one-line scripts.
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=repo,
                          env=ci_env(tmp), capture_output=True, text=True, timeout=600)  # fmt: skip


def test_the_ci_examples_commands_run_against_the_lab(lab: Lab, repo: Path, tmp_path: Path) -> None:
    edit_yaml(repo / "manifests" / "web.yaml", lambda docs: docs[0]["spec"].update(version="v2"))  # a PR
    [plan_step] = github_steps("plan")
    done = run_script(plan_step, repo, tmp_path)
    assert done.returncode == 0, done.stderr
    assert (repo / "plan.md").read_text().startswith("### funops plan")
    assert "### funops plan" in (tmp_path / "summary").read_text()
    assert "exit=2" in (tmp_path / "output").read_text()  # changes pending: the step still passes

    for script in [*github_steps("apply"), *gitlab_lines("apply")]:
        done = run_script(script, repo, tmp_path)
        assert done.returncode == 0, script + done.stderr
        events = [json.loads(line) for line in (repo / "apply.jsonl").read_text().splitlines()]
        assert events == [] or events[-1]["event"]  # the second apply has nothing to do
    for script in [*github_steps("drift"), *gitlab_lines("plan"), *gitlab_lines("drift")]:
        done = run_script(script, repo, tmp_path)
        assert done.returncode == 0, script + done.stderr
    jsonschema.validate(json.loads((repo / "drift.json").read_text()), SCHEMA)
    assert "funops drift" in (repo / "drift.md").read_text()


def cron_command(repo: Path) -> str:
    """The crontab's command, with the example's install paths pointed at this checkout."""
    line = next(
        ln for ln in (EXAMPLES / "cron" / "crontab").read_text().splitlines() if ln.strip() and ln[0] != "#"
    )
    return localize(line.split(None, 5)[5], repo)


def localize(command: str, repo: Path) -> str:
    return command.replace(
        "/usr/local/bin/funops-drift.sh", str(EXAMPLES / "cron" / "funops-drift.sh")
    ).replace("/srv/funops-repo", str(repo))


def test_the_cron_and_systemd_examples_run_the_drift_check(lab: Lab, repo: Path, tmp_path: Path) -> None:
    env = {**ci_env(tmp_path), "FUNOPS_DRIFT_DIR": str(tmp_path / "cron")}
    done = subprocess.run(
        ["sh", "-c", cron_command(repo)], env=env, capture_output=True, text=True, timeout=600
    )
    assert (done.returncode, done.stdout) == (0, ""), done.stderr  # clean: cron mails nothing
    jsonschema.validate(json.loads((tmp_path / "cron" / "last.json").read_text()), SCHEMA)

    unit = (EXAMPLES / "cron" / "funops-drift.service").read_text()
    unit_env = dict(re.findall(r"^Environment=(\w+)=(.*)$", unit, re.M))
    [exec_start] = re.findall(r"^ExecStart=(.*)$", unit, re.M)
    lab.exec("node3", "systemctl stop web.service", check=True)
    env |= {k: localize(v, repo) for k, v in unit_env.items()} | {"FUNOPS_DRIFT_DIR": str(tmp_path / "unit")}
    done = subprocess.run([localize(exec_start, repo)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2 and "funops drift exited 2" in done.stdout, done.stderr
    report = json.loads((tmp_path / "unit" / "last.json").read_text())
    assert found(report) == {("node3", "unit:web.service", "stopped")}
    assert funops(repo, "drift", "--fix", "--auto-approve").returncode == 0

    # The unit and the timer are valid for a real systemd (the lab node's).
    node = lab.nodes[0]
    for name in ("funops-drift.service", "funops-drift.timer"):
        lab.exec(node, ["tee", f"/tmp/{name}"], input=(EXAMPLES / "cron" / name).read_text(), check=True)
    lab.exec(
        node, "install -m 755 /dev/null /usr/local/bin/funops-drift.sh && id funops || useradd -r funops"
    )
    verify = lab.exec(node, "systemd-analyze verify /tmp/funops-drift.service /tmp/funops-drift.timer")
    lab.exec(node, "rm -f /tmp/funops-drift.* /usr/local/bin/funops-drift.sh; userdel funops")
    assert verify.returncode == 0, verify.stderr
