"""What a document that forgot its marks reads them again with: the YAML parser, imported only then.
A loaded project keeps a reference to this function (a compiled-state cache entry pickles it), so
loading such a project imports this module, not the parser and PyYAML."""

from __future__ import annotations

from .document import Document


def documents(text: str) -> list[Document]:
    from .yaml_marks import load_documents

    return load_documents(text)
