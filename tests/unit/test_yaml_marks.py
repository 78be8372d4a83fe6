"""YAML reading: merge keys honoured, bounds enforced, YAML 1.1 surprises refused (not converted)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from funops.errors import InputError
from funops.load import yaml_marks
from funops.load.loader import MAX_YAML_BYTES, load_project
from funops.load.yaml_marks import YamlError, load_documents


def test_merge_keys_are_honoured_and_an_explicit_key_wins() -> None:
    (doc,) = load_documents(
        "base: &base {a: 1, b: 2}\nother: &other {b: 9, c: 3}\nx:\n  <<: [*base, *other]\n  b: 5\n"
    )
    assert doc.data["x"] == {"a": 1, "b": 5, "c": 3}
    assert doc.line_of(("x", "b")) == 5  # the explicit key's line
    assert doc.line_of(("x", "a")) == 1  # a merged key: where the merged mapping says it


def test_merge_keys_in_a_manifest(example: Path) -> None:
    web = example / "manifests" / "web.yaml"
    web.write_text(
        web.read_text().replace(
            "  strategy: {batchSize: 1, maxFailures: 0}",
            "  strategy:\n    <<: &s {batchSize: 3, maxFailures: 1}\n    batchSize: 1",
        )
    )
    strategy = load_project(example).apps["web"].spec.strategy
    assert (strategy.batch_size, strategy.max_failures) == (1, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("v: 1.10\n", 'v: 1.10 is read by YAML as the number 1.1: quote it ("1.10")'),
        ("v: 010\n", 'v: 010 is read by YAML as the number 8: quote it ("010")'),
        ("v: 0x1f\n", 'v: 0x1f is read by YAML as the number 31: quote it ("0x1f")'),
        ("v: 1:30\n", 'v: 1:30 is read by YAML as the number 90: quote it ("1:30")'),
        ("v: off\n", 'v: off is read by YAML as false: write false, or quote it ("off")'),
        ("NO: x\n", ': key NO is read by YAML as false: quote it ("NO")'),
    ],
)
def test_yaml_11_coercions_are_refused(text: str, message: str) -> None:
    with pytest.raises(YamlError) as caught:
        load_documents(text)
    assert f"{caught.value.field}: {caught.value}" == message


def test_plain_values_still_parse() -> None:
    (doc,) = load_documents("a: 1\nb: -2\nc: 1.5\nd: true\ne: False\nf: ~\ng: '010'\nh: \"yes\"\n")
    assert doc.data == {"a": 1, "b": -2, "c": 1.5, "d": True, "e": False, "f": None, "g": "010", "h": "yes"}


def test_deep_nesting_fails_without_a_traceback() -> None:
    with pytest.raises(YamlError, match="nested deeper than 64 levels"):
        load_documents("a: " + "[" * 5000 + "]" * 5000 + "\n")


def test_a_file_above_the_size_limit_is_refused(example: Path) -> None:
    (example / "manifests" / "zz-big.yaml").write_text("#" * MAX_YAML_BYTES + "\n")
    with pytest.raises(InputError) as caught:
        load_project(example)
    (problem,) = caught.value.problems
    assert (
        str(problem)
        == f"manifests/zz-big.yaml: {MAX_YAML_BYTES + 1} bytes is above the limit of {MAX_YAML_BYTES}"
    )


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(yaml_marks._CLoader is None, reason="PyYAML built without libyaml")
@pytest.mark.parametrize(
    "path",
    sorted(p for d in ("tests", "examples", "manifests", "inventory") for p in (ROOT / d).rglob("*.yaml")),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_libyaml_and_the_python_parser_read_every_yaml_file_of_the_repo_alike(path: Path) -> None:
    """load_documents parses with libyaml and words errors as the Python parser does: the two must
    read the same data at the same lines (the bad fixtures and the hostile ones included)."""

    text = path.read_text(errors="surrogateescape")  # a fixture that is not UTF-8 on purpose
    if yaml.reader.Reader.NON_PRINTABLE.search(text):
        pytest.skip("load_documents reads it with the Python parser only")

    def read(loader: type) -> object:
        try:
            return [(d.data, d.line, d.marks) for d in yaml_marks._documents(loader, text)]
        except (YamlError, yaml.YAMLError, RecursionError) as exc:
            return type(exc).__name__ if not isinstance(exc, YamlError) else (str(exc), exc.line)

    fast, reference = read(yaml_marks._CLoader), read(yaml_marks._Loader)
    assert fast == reference or (isinstance(fast, str) and isinstance(reference, str))
