"""Diagnostics as people and CI see them: the rendering of bad-input fixtures (column, carets, help)
against snapshots, `validate -o json` against its shipped schema, GitHub annotations' escaping.

Snapshots live in tests/unit/snapshots/<fixture>.txt; after a deliberate change of the rendering,
regenerate them with FUNOPS_UPDATE_SNAPSHOTS=1 and read the diff."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from funops.compile.compiler import compile_project
from funops.diagnostics import github_annotation, render
from funops.errors import InputError, Problem
from funops.load.loader import load_project
from funops.load.report import validate_schema
from funops.load.suggest import did_you_mean
from tests.conftest import copy_example
from tests.unit.test_bad_inputs import _header

FIXTURES = Path(__file__).parent.parent / "fixtures" / "bad"
SNAPSHOTS = Path(__file__).parent / "snapshots"
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "funops" / "schemas" / "validate.schema.json"

SNAPSHOT_FIXTURES = [
    "001-unknown-field",
    "002-port-out-of-range",
    "003-yaml-syntax-error",
    "004-duplicate-key",
    "006-unknown-kind",
    "007-wrong-api-version",
    "008-missing-metadata-name",
    "012-app-unknown-type",
    "016-selector-unknown-node",
    "019-env-value-not-a-string",
    "028-bad-file-mode",
    "031-strategy-batch-size-over-100-percent",
    "036-service-unknown-app",
    "037-ingress-rule-unknown-service",
    "042-release-unknown-app",
    "047-node-missing-address",
    "051-node-port-as-string",
    "052-settings-unknown-key",
    "053-settings-parallel-zero",
    "066-version-as-number",
    "068-allowed-roots-relative",
    "071-inventory-hosts-instead-of-nodes",
    "095-yaml-norway-problem",
    "098-yaml-boolean-key",
    "099-yaml-control-character",
    "117-config-diff-not-a-bool",
    "210-yaml-tab-indent",
    "211-yaml-unclosed-quote",
    "212-yaml-bad-indentation",
    "213-unknown-field-did-you-mean",
    "214-inventory-defaults-typo",
    "215-transport-did-you-mean",
]


def _repo_with(fixture: Path, tmp_path: Path) -> Path:
    raw = fixture.read_bytes()
    text = raw.decode("utf-8", "surrogateescape")
    repo = copy_example(tmp_path / "repo")
    for removed in _header(text, "remove"):
        (repo / removed).unlink()
    (target,) = _header(text, "target")
    (repo / target).write_bytes(raw)
    return repo


def _rendered(repo: Path) -> str:
    with pytest.raises(InputError) as caught:
        compile_project(load_project(repo))
    return "".join("\n".join(render(p)) + "\n" for p in caught.value.problems)


@pytest.mark.parametrize("name", SNAPSHOT_FIXTURES)
def test_rendered_diagnostics_match_their_snapshot(name: str, tmp_path: Path) -> None:
    rendered = _rendered(_repo_with(FIXTURES / f"{name}.yaml", tmp_path))
    snapshot = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("FUNOPS_UPDATE_SNAPSHOTS"):
        snapshot.parent.mkdir(exist_ok=True)
        snapshot.write_text(rendered)
    assert rendered == snapshot.read_text()


def test_snapshots_show_columns_carets_and_suggestions() -> None:
    texts = [(SNAPSHOTS / f"{name}.txt").read_text() for name in SNAPSHOT_FIXTURES]
    assert len(SNAPSHOT_FIXTURES) >= 20
    assert sum("^" in t for t in texts) >= 20
    assert sum("= help: did you mean" in t for t in texts) >= 8


def test_a_defaults_typo_is_reported_once_at_its_line(tmp_path: Path) -> None:
    rendered = _rendered(_repo_with(FIXTURES / "214-inventory-defaults-typo.yaml", tmp_path))
    assert rendered.count("error:") == 1
    assert "inventory/zz-bad.yaml:5: defaults.usr: unknown field" in rendered


def _funops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "funops", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )


def test_shipped_validate_schema_matches_the_models() -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == validate_schema(), (
        f"regenerate: funops schema validate > {SCHEMA_FILE}"
    )


def test_validate_json_validates_against_the_shipped_schema(tmp_path: Path) -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    good = _funops("validate", "-C", str(copy_example(tmp_path / "good")), "-o", "json")
    assert good.returncode == 0, good.stderr
    doc = json.loads(good.stdout)
    jsonschema.validate(doc, schema)
    assert doc["valid"] and doc["formatVersion"] == 1 and doc["counts"]["nodes"] == 3

    bad = _funops(
        "validate",
        "-C",
        str(_repo_with(FIXTURES / "213-unknown-field-did-you-mean.yaml", tmp_path)),
        "-o",
        "json",
    )
    assert bad.returncode == 1, bad.stderr
    doc = json.loads(bad.stdout)
    jsonschema.validate(doc, schema)
    (diag,) = doc["diagnostics"]
    assert diag["file"] == "manifests/zz-bad.yaml" and (diag["line"], diag["column"]) == (12, 3)
    assert diag["field"] == "spec.helthCheck" and diag["suggestion"] == "did you mean 'healthCheck'?"


def test_validate_github_prints_one_annotation_per_problem(tmp_path: Path) -> None:
    repo = _repo_with(FIXTURES / "213-unknown-field-did-you-mean.yaml", tmp_path)
    done = _funops("validate", "-C", str(repo), "-o", "github")
    assert done.returncode == 1
    assert done.stdout == (
        "::error file=manifests/zz-bad.yaml,line=12,col=3,endColumn=13,title=funops%3A spec.helthCheck"
        "::unknown field (did you mean 'healthCheck'?)\n"
    )
    assert "^^^^^^^^^^" in done.stderr  # the log still shows the rendering


def test_github_annotations_escape_per_the_runner_rules() -> None:
    problem = Problem("a,b:c%.yaml", 3, "x", "100% bad\r\nnext", column=2, suggestion="")
    line = github_annotation(problem)
    assert line.startswith("::error file=a%2Cb%3Ac%25.yaml,line=3,col=2,title=funops%3A x::")
    assert line.endswith("::100%25 bad\\r\\nnext")  # control characters shown escaped, never raw
    raw = github_annotation(Problem("f", None, "", "50%\nx"))
    assert "\n" not in raw and "%25" in raw


def test_did_you_mean() -> None:
    assert did_you_mean("helthCheck", ["healthCheck", "port"]) == "did you mean 'healthCheck'?"
    assert did_you_mean("wbe", ["web", "api"]) == "did you mean 'web'?"
    assert did_you_mean("Port", ["port"]) == "did you mean 'port'?"
    assert did_you_mean("zzz", ["web"]) == ""


def test_a_read_only_command_does_not_say_nothing_was_changed() -> None:
    done = _funops("schema", "nonsense")
    assert done.returncode == 1
    assert "unknown schema" in done.stderr and "Nothing was changed" not in done.stderr


def test_markup_in_a_source_line_is_shown_as_text() -> None:
    from rich.console import Console

    problem = Problem(
        "m.yaml",
        3,
        "spec.x",
        "bad [red]x[/]",
        column=9,
        end_column=18,
        source="  x:    [bold]y[/]",
        suggestion="[u]z",
    )
    console = Console(record=True, color_system=None, width=200)
    for line in render(problem, markup=True):
        console.print(line)
    assert console.export_text().splitlines() == render(problem)


def test_a_long_line_is_cut_around_the_span_with_the_carets_under_it() -> None:
    source = "  command: " + "x" * 300 + " BAD " + "y" * 500
    column = source.index("BAD") + 1
    lines = render(
        Problem("f.yaml", 7, "spec.command", "bad", column=column, end_column=column + 3, source=source)
    )
    shown, carets = lines[3], lines[4]
    assert len(shown) < 200 and shown.startswith("7 | …") and shown.endswith("…")
    assert shown[carets.index("^") : carets.rindex("^") + 1] == "BAD"
