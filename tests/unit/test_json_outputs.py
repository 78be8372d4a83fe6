"""Every command's `-o json` is a document with a formatVersion that fits its published schema
(`funops schema NAME`): run on the bundled example (local nodes), checked with jsonschema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from funops.schemas import SCHEMAS, schema_for


def funops(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "funops", "-C", str(repo), *args],
        capture_output=True, text=True, timeout=180, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip


def fits(name: str, doc: Any) -> None:
    schema = schema_for(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)
    ]
    assert not errors, (name, errors)


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_schema_is_valid_and_names_itself(name: str) -> None:
    schema = schema_for(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"].startswith("https://json-schema.org/")


def test_every_json_output_fits_its_schema(example: Path) -> None:
    # Read-only documents first, then an apply (its events) and what it leaves behind.
    documents = {
        "validate": ["validate", "-o", "json"],
        "plan": ["plan", "-o", "json"],
        "nodes": ["nodes", "-o", "json"],
        "status": ["status", "-o", "json"],
        "details": ["details", "-o", "json"],
        "lock": ["lock", "status", "-o", "json"],
        "exec": ["exec", "-o", "json", "--node", "node1", "--", "true"],
    }
    for name, args in documents.items():
        done = funops(example, *args)
        assert done.stdout, (name, done.stderr)
        doc = json.loads(done.stdout)
        assert doc.get("formatVersion"), name
        fits(name, doc)
    applied = funops(example, "apply", "--auto-approve", "-o", "json")
    assert applied.returncode == 0, applied.stderr
    events = [json.loads(line) for line in applied.stdout.splitlines()]
    assert {"start", "done"} <= {e["event"] for e in events}
    for event in events:
        fits("events", event)
    for name, args in {
        "audit": ["audit", "-o", "json"],
        "history": ["history", "-o", "json"],
        "drift": ["drift", "-o", "json"],
    }.items():
        done = funops(example, *args)
        doc = json.loads(done.stdout)
        assert doc.get("formatVersion"), name
        fits(name, doc)
    assert json.loads(funops(example, "audit", "-o", "json").stdout)["entries"]
