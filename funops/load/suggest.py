""" "Did you mean …?": the close match of a mistyped field, name or choice, and the field names a model
accepts at a location (the keys an unknown field could have meant)."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel


def did_you_mean(word: object, choices: Iterable[object]) -> str:
    """`did you mean 'healthCheck'?`, or "" when no choice is close (difflib's ratio ≥ 0.6)."""
    if not isinstance(word, str):
        return ""
    named = {str(c): c for c in choices}
    by_case = {k.lower(): k for k in named}
    close = by_case.get(word.lower()) or next(iter(difflib.get_close_matches(word, named, n=1)), None)
    return f"did you mean {close!r}?" if close and close != word else ""


def field_names(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The YAML keys (aliases) the model accepts at `loc` (a path of aliases and list indexes);
    across a union, the keys of every member. Empty when `loc` does not lead to a model."""
    found: list[str] = []
    for cls in _models_at(model, loc):
        found += [f.alias or name for name, f in cls.model_fields.items()]
    return list(dict.fromkeys(found))


def _models_at(model: Any, loc: tuple[str | int, ...]) -> list[type[BaseModel]]:
    current = _models(model)
    for part in loc:
        if isinstance(part, int) or not current:
            continue  # a list index: the item type was already unwrapped
        following: list[Any] = []
        for cls in current:
            for name, info in cls.model_fields.items():
                if part in (name, info.alias):
                    following += _models(info.annotation)
        if following:
            current = following
        # a name pydantic adds to `loc` (a union member's tag): stay on the same models
    return current


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The models inside an annotation: through Optional, unions, Annotated, list[...] and dict[str, ...]."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _models(args[0])
    if origin in (typing.Union, types.UnionType, list, tuple):
        return [m for a in args for m in _models(a)]
    if origin is dict and len(args) == 2:
        return _models(args[1])
    return []
