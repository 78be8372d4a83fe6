"""`plan` shows the batch schedule apply follows (issue 15): text, Markdown, JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

SCHEMA = Path(__file__).resolve().parents[2] / "funops" / "schemas" / "plan.schema.json"


def plan(repo: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "funops", "plan", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "COLUMNS": "200"},
    )
    assert done.returncode == 2, done.stderr
    return done.stdout


def test_the_schedule_in_json_text_and_markdown(example: Path) -> None:
    # Deployed once: the apps run on their nodes, so a change drains them first.
    assert "drain first" not in plan(example), "nothing runs yet: nothing to drain"
    applied = subprocess.run(
        [sys.executable, "-m", "funops", "apply", "-C", str(example), "--auto-approve"],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    api = example / "manifests" / "api.yaml"
    api.write_text(api.read_text().replace('PORT: "{{ app.port }}"', 'PORT: "{{ app.port }}"\n    MODE: "b"'))
    web = example / "manifests" / "web.yaml"
    docs = list(yaml.safe_load_all(web.read_text()))
    docs[0]["spec"]["strategy"] = {"batchSize": 1, "maxFailures": 0, "pauseSeconds": 2, "bakeSeconds": 30}
    docs[0]["spec"]["configFiles"][0]["content"] += "<p>changed</p>\n"
    web.write_text(yaml.safe_dump_all(docs, sort_keys=False))

    doc = json.loads(plan(example, "-o", "json"))
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    schedule = doc["schedule"]
    assert schedule["batches"] == [["node1"], ["node2"], ["node3"]]
    assert (schedule["pauseSeconds"], schedule["bakeSeconds"], schedule["maxFailures"]) == (2, 30, 0)
    assert schedule["drains"]["node2"] == ["api", "web"]  # routed by the ingress: drained first

    text = plan(example)
    assert "batch 1/3: node1 (drain first: node1: web)" in text
    assert "pause 2s, then batch 2/3: node2" in text
    assert "bake 30s: health-checked after the last batch" in text
    assert "- bake 30s" in plan(example, "-o", "markdown")
