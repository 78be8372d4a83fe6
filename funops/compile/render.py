"""The jinja2 environment: sandboxed, StrictUndefined, the repo's templates/ overriding the bundled ones.

Manifests, funops.yaml and templates/ come from whoever can open a pull request, and `funops plan`
renders them in CI next to a deploy key: templates run in jinja2's immutable sandbox (no dunder or
internal attributes, no mutating methods) and arithmetic that would build huge values is refused.

A repo template may extend the bundled one it overrides through the `bundled/` prefix
(`{% extends "bundled/nginx/site.conf.j2" %}`), so it keeps the bundled template's fixes and only
fills the blocks it cares about. Every rendered template knows where it came from (`origin`)."""

from __future__ import annotations

import hashlib
import os
from functools import cache
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
import jinja2.meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..load.source import Source, SourceError
from ..resources import TemplateOrigin

REPO_TEMPLATE_DIR = "templates"
BUNDLED_PREFIX = "bundled"
BUNDLED_PATH = "funops/templates"  # where a bundled template lives in funops's source (and wheel)


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


@cache
def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs (compiling the bundled ones is ~15 ms of every plan), in
    a private directory named after this file's digest: the sandbox's settings shape the compiled
    code and jinja2 keys its cache by template name and source only, so another funops (or another
    sandbox) never shares it. None when there is no writable cache directory (nothing is cached)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    directory = os.path.join(base, "funops", f"templates-{digest}")
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(directory)


class Renderer:
    def __init__(self, source: Source) -> None:
        def repo_template(name: str) -> tuple[str, str, Any] | None:
            path = f"{REPO_TEMPLATE_DIR}/{name}"
            try:
                text = source.read(path)
            except (SourceError, UnicodeDecodeError) as exc:  # a symlink out of the repo, a FIFO, …
                raise jinja2.TemplateError(str(exc)) from exc
            # The repo-relative path as the filename: jinja2's errors and tracebacks then name it.
            return None if text is None else (text, path, lambda: True)

        bundled = jinja2.FileSystemLoader(_bundled_dir())
        self.env = _Sandbox(
            bytecode_cache=_bytecode_cache(),
            loader=jinja2.ChoiceLoader(
                [
                    jinja2.PrefixLoader({BUNDLED_PREFIX: bundled}),  # never overridden
                    jinja2.FunctionLoader(repo_template),
                    bundled,
                ]
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
        self._origins: dict[str, TemplateOrigin] = {}
        self._strings: dict[str, jinja2.Template] = {}  # an app's command is rendered once per node

    def render(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(**context)

    def render_string(self, text: str, **context: Any) -> str:
        """A user-given value (command, env value, config content) that may hold jinja2 expressions."""
        if "{{" not in text and "{%" not in text:
            return text
        if text not in self._strings:
            self._strings[text] = self.env.from_string(text)
        return self._strings[text].render(**context)

    def origin(self, template: str) -> TemplateOrigin:
        """Where `template` is loaded from (bundled or the repo's), once per template per run."""
        if template not in self._origins:
            self._origins[template] = self._find_origin(template)
        return self._origins[template]

    def _find_origin(self, template: str) -> TemplateOrigin:
        loaded = self.env.get_template(template)
        filename = loaded.filename or ""
        if not filename.startswith(f"{REPO_TEMPLATE_DIR}/"):
            return TemplateOrigin(
                template.removeprefix(f"{BUNDLED_PREFIX}/"), "bundled", bundled_path(filename)
            )
        source, _, _ = self.env.loader.get_source(self.env, template)  # type: ignore[union-attr]
        uses = jinja2.meta.find_referenced_templates(self.env.parse(source))
        return TemplateOrigin(template, "repo", filename, tuple(sorted(u for u in uses if u)))


def bundled_path(filename: str) -> str:
    """A bundled template's absolute filename as funops's own path (funops/templates/...)."""
    base = _bundled_dir().rstrip("/") + "/"
    return f"{BUNDLED_PATH}/{filename[len(base) :]}" if filename.startswith(base) else filename


def template_location(exc: BaseException) -> tuple[str | None, int | None]:
    """The template file and line a jinja2 error comes from: a syntax error carries them; a render
    error (an undefined variable, a failing filter) is found in the traceback jinja2 rewrites to
    template frames. The file is repo-relative for the repo's templates, funops/templates/... else."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return (bundled_path(exc.filename) if exc.filename else None), exc.lineno
    found: tuple[str | None, int | None] = (None, None)
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith(f"{REPO_TEMPLATE_DIR}/") or filename.startswith(_bundled_dir()):
            found = (bundled_path(filename), tb.tb_lineno)
        tb = tb.tb_next
    return found
