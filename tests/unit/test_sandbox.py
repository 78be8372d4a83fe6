"""Templates are user input: they render in jinja2's immutable sandbox and cannot run code."""

from __future__ import annotations

from pathlib import Path

import pytest

from funops.compile.compiler import compile_project
from funops.errors import InputError
from funops.load.loader import load_project

# Known ways out of a plain jinja2 environment; each would create `marker` on the controller.
ESCAPES = [
    "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "{{ joiner.__init__.__globals__['os'].system('touch MARKER') }}",
    "{{ lipsum.__globals__['os'].system('touch MARKER') }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ namespace.__init__.__globals__.__builtins__.open('MARKER', 'w') }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.system('touch MARKER') }}",
    "{{ ({}).update(a=1) }}",
    "{{ ('x' * 100000) * 100000 }}",
    "{{ 9 ** (9 ** 9) }}",
]


@pytest.mark.parametrize("payload", ESCAPES)
def test_a_template_cannot_reach_python(example: Path, tmp_path: Path, payload: str) -> None:
    marker = tmp_path / "pwned"
    manifest = example / "manifests" / "web.yaml"
    text = manifest.read_text().replace('"ok\\n"', repr(payload.replace("MARKER", str(marker))))
    manifest.write_text(text)

    with pytest.raises(InputError) as caught:
        compile_project(load_project(example))

    assert not marker.exists()
    (problem,) = {(p.file, p.line, p.field) for p in caught.value.problems}
    assert problem == ("manifests/web.yaml", 18, "spec.configFiles.1.content")
