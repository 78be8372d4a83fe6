"""A loaded repo: validated documents, indexed by kind and name, each remembering where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..apptypes.application import Application
from ..errors import Problem
from ..model.inventory import Node
from ..model.manifests import Certificate, Ingress, Release, Service
from ..model.strategy import UpdateStrategy
from ..settings import Settings
from .document import Document
from .document import Path as YamlPath
from .source import Revision, Source


@dataclass(frozen=True)
class Origin:
    """The file and YAML document a model was read from, to locate later (cross-reference) errors."""

    file: str
    doc: Document
    base: YamlPath = ()  # where the model sits inside the document (inventory nodes are list items)

    def problem(self, field_path: YamlPath, message: str, suggestion: str = "", key: bool = False) -> Problem:
        """A problem at `field_path`, underlining its value (or, with `key`, the key itself)."""
        full = (*self.base, *field_path)
        line = self.doc.line_of(full)
        span = self.doc.key_span_of(full) if key else self.doc.span_of(full)
        if span is None or span.line != line or not 0 < line <= len(self.doc.lines):
            return Problem(self.file, line, ".".join(str(p) for p in full), message, suggestion=suggestion)
        return Problem(
            self.file,
            line,
            ".".join(str(p) for p in full),
            message,
            column=span.column,
            end_column=span.end_column,
            source=self.doc.lines[line - 1],
            suggestion=suggestion,
        )


@dataclass
class Project:
    """The repo as loaded and validated: settings, nodes and every manifest, with where each came from."""

    source: Source
    settings: Settings
    nodes: dict[str, Node] = field(default_factory=dict)
    apps: dict[str, Application] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    ingresses: dict[str, Ingress] = field(default_factory=dict)
    releases: dict[str, Release] = field(default_factory=dict)
    certificates: dict[str, Certificate] = field(default_factory=dict)
    origins: dict[tuple[str, str], Origin] = field(default_factory=dict)  # (kind, name) → origin
    settings_origin: Origin | None = None

    @property
    def root(self) -> Path:
        return self.source.root

    @property
    def revision(self) -> Revision:
        return self.source.revision

    def origin(self, kind: str, name: str) -> Origin:
        return self.origins[(kind, name)]

    def release_for(self, app: str) -> Release | None:
        """The Release that names `app` (the checks make sure there is at most one)."""
        return next((r for _, r in sorted(self.releases.items()) if r.spec.app == app), None)

    def strategy_of(self, app: str) -> UpdateStrategy:
        """The Release's strategy, else the app's, else the project default."""
        release = self.release_for(app)
        if release and release.spec.strategy:
            return release.spec.strategy
        spec = self.apps[app].spec if app in self.apps else None
        return (spec.strategy if spec else None) or self.settings.strategy
