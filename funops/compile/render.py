"""The jinja2 environment: sandboxed, StrictUndefined, the repo's templates/ overriding the bundled ones.

Manifests, funops.yaml and templates/ come from whoever can open a pull request, and `funops plan`
renders them in CI next to a deploy key: templates run in jinja2's immutable sandbox (no dunder or
internal attributes, no mutating methods) and arithmetic that would build huge values is refused."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..load.source import Source, SourceError

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


# Big enough for any real template; small enough that `{{ "x" * 10**10 }}` fails instead of eating memory.
MAX_REPEAT = 1_000_000
MAX_EXPONENT = 64


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with `*` and `**` bounded (they can build huge values in one step)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent {right!r} is above {MAX_EXPONENT}")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(count, int)
                if sized and len(seq) * count > MAX_REPEAT:
                    raise SecurityError(f"repeating a value {count} times is above {MAX_REPEAT} items")
        return super().call_binop(context, operator, left, right)


class Renderer:
    def __init__(self, source: Source) -> None:
        def repo_template(name: str) -> str | None:
            try:
                return source.read(f"{REPO_TEMPLATE_DIR}/{name}")
            except (SourceError, UnicodeDecodeError) as exc:  # a symlink out of the repo, a FIFO, …
                raise jinja2.TemplateError(str(exc)) from exc

        self.env = _Sandbox(
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
