"""The jinja2 environment: StrictUndefined, the repo's templates/ overriding the bundled ones."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import jinja2

from ..load.source import Source

REPO_TEMPLATE_DIR = "templates"


def systemd_quote(value: str) -> str:
    """A value for an EnvironmentFile line: double-quoted, with backslash and quote escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_escape(command: str) -> str:
    """An ExecStart= line: '%' starts a unit specifier, so a literal one is doubled."""
    return command.replace("%", "%%")


@cache
def _bundled_dir() -> str:
    return str(resources.files("funops") / "templates")


class Renderer:
    def __init__(self, source: Source) -> None:
        def repo_template(name: str) -> str | None:
            return source.read(f"{REPO_TEMPLATE_DIR}/{name}")

        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(
                [jinja2.FunctionLoader(repo_template), jinja2.FileSystemLoader(_bundled_dir())]
            ),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            autoescape=False,
        )
        self.env.filters["systemd_quote"] = systemd_quote
        self.env.filters["systemd_escape"] = systemd_escape
        self.env.policies["json.dumps_kwargs"] = {"sort_keys": True}

    def render(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(**context)

    def render_string(self, text: str, **context: Any) -> str:
        """A user-given value (command, env value, config content) that may hold jinja2 expressions."""
        if "{{" not in text and "{%" not in text:
            return text
        return self.env.from_string(text).render(**context)
