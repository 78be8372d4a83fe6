"""How `--help` names what an option takes: in plain words (`FILE`, `TEXT`, `N`), not typer's Python
types (`<list[Path]>`, `<str>`), and nothing for a flag, which takes no value."""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperOption

# typer's label (its type name) → the word a user reads; a path's kind is shown in capitals (PATH,
# FILE), choices as they are (text|json).
_WORDS = {
    "str": "TEXT",
    "list[str]": "TEXT",
    "int": "N",
    "int range": "N",
    "list[int]": "N",
    "float": "NUMBER",
    "float range": "NUMBER",
    "list[Path]": "PATH",
    "datetime": "TIME",
}


def _plain(original: Any) -> Any:
    def display_type(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False):
            return None
        if self.metavar and isinstance(self, TyperOption):
            return self.metavar
        label = original(self, ctx).removeprefix("<").removesuffix(">")
        return _WORDS.get(label, label if "|" in label else label.upper())

    return display_type


def use_plain_placeholders() -> None:
    for cls in (TyperOption, TyperArgument):
        cls.display_type = _plain(cls.display_type)  # type: ignore[method-assign]
