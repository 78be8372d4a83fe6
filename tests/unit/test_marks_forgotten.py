"""A validated document drops its marks and spans (memory: a 2,000-node inventory's are ~6.5 MB); a
later problem reads them again from the file's text (load/document.py, `forget_marks`)."""

from __future__ import annotations

from pathlib import Path

from funops.load.yaml_marks import load_documents


def test_forgotten_marks_are_read_again_the_same() -> None:
    text = "---\nkind: A\n---\nnodes:\n  - name: n1\n    address: 10.0.0.1\n  - {name: n2, address: x}\n"
    doc = load_documents(text)[1]
    path = ("nodes", 1, "address")
    before = (doc.line_of(path), doc.span_of(path), doc.key_span_of(path), dict(doc.marks))
    doc.forget_marks(load_documents)
    assert doc.forgotten and not doc.marks and not doc.value_spans
    assert (doc.line_of(path), doc.span_of(path), doc.key_span_of(path), dict(doc.marks)) == before


def test_a_loaded_project_forgets_its_marks(tmp_path: Path) -> None:
    from funops.load.loader import load_project

    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "hosts.yaml").write_text("nodes:\n  - {name: n1, address: 10.0.0.1}\n")
    project = load_project(tmp_path, None, None)
    origin = project.origin("Node", "n1")
    assert origin.doc.forgotten
    assert origin.problem(("address",), "no").line == 2
