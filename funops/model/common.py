"""Shared building blocks of the models: strict base, safe names, safe paths, secret references."""

from __future__ import annotations

import posixpath
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from .text import bad_char, shown

API_VERSION = "funops/v1"

# A DNS label: safe as a unit, container, file and nginx upstream name (no shell metacharacters).
# Used with fullmatch: `re.match(...$)` would accept a trailing newline ('$' matches before it).
NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
LABEL_KEY_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.\-/]{0,61}[A-Za-z0-9])?")
LABEL_VALUE_RE = re.compile(r"[A-Za-z0-9_.\-]{0,63}")


class FieldError(ValueError):
    """A check on a whole object that knows which field is wrong: the loader adds `path` to the
    location pydantic reports, so the error points at the field's line, not the object's."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(message)


# Plain words for the regex patterns of the schema (pydantic would print the raw pattern).
PATTERN_WORDS: dict[str, str] = {}


def pattern(regex: str, words: str) -> str:
    PATTERN_WORDS[regex] = words
    return regex


class Strict(BaseModel):
    """Unknown fields are errors, no type coercion, YAML keys in camelCase. A string under a field is
    its description in the JSON Schemas (what an editor shows on hover: funops/schemas/descriptions.py)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=False,
        # Validators are built when first used, not when the class is: a project taken from the
        # compiled-state cache (funops/cache/compiled.py) is never validated again.
        defer_build=True,
    )


def _safe_name(value: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a safe name: use lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters"
        )
    return value


def _labels(value: dict[str, str]) -> dict[str, str]:
    for key, val in value.items():
        if not LABEL_KEY_RE.fullmatch(key):
            raise FieldError((key,), f"label key {key!r} is not valid (letters, digits, '_.-/')")
        if not LABEL_VALUE_RE.fullmatch(val):
            raise FieldError((key,), f"label value {val!r} is not valid (at most 63 letters, digits, '_.-')")
    return dict(sorted(value.items()))


def _path_chars(value: str) -> None:
    """A path lands in shell scripts, `stat`/`sha256sum` output the probe parses, and unit files: a
    line break there makes the node unreadable; `sha256sum` escapes a backslash (the hash never
    matches, the file is rewritten on every apply)."""
    char = bad_char(value)
    if char is not None or "\\" in value:
        what = "a backslash" if char is None else f"a control character or line break ({repr(char)[1:-1]})"
        raise ValueError(f"{shown(value)} holds {what}: not allowed in a path")


def _absolute_path(value: str) -> str:
    _path_chars(value)
    if not value.startswith("/"):
        raise ValueError(f"{value!r} must be an absolute path")
    if ".." in value.split("/") or posixpath.normpath(value) != value.rstrip("/"):
        raise ValueError(f"{value!r} must be a normalised path without '..'")
    return value


def no_dotdot(value: str) -> str:
    if ".." in value.split("/") or not value:
        raise ValueError(f"{value!r} must not contain '..'")
    return value


def _relative_path(value: str) -> str:
    _path_chars(value)
    if value.startswith("/") or ".." in value.split("/") or not value:
        raise ValueError(f"{value!r} must be a path inside the repo (relative, without '..')")
    return value


SafeName = Annotated[str, AfterValidator(_safe_name)]
Labels = Annotated[dict[str, str], AfterValidator(_labels)]
AbsolutePath = Annotated[str, AfterValidator(_absolute_path)]
RepoPath = Annotated[str, AfterValidator(_relative_path)]
Port = Annotated[int, Field(ge=1, le=65535)]
FileMode = Annotated[str, Field(pattern=pattern(r"^0?[0-7]{3,4}$", 'an octal file mode such as "0644"'))]
UnixName = Annotated[
    str, Field(pattern=pattern(r"^[a-z_][a-z0-9_-]{0,31}$", "a unix user or group name such as www-data"))
]
EnvName = Annotated[
    str,
    Field(pattern=pattern(r"^[A-Za-z_][A-Za-z0-9_]*$", "an environment variable name (letters, digits, _)")),
]


class Metadata(Strict):
    name: SafeName
    """The object's name, unique among its kind: lowercase letters, digits and '-', at most 63 characters."""
    labels: Labels = {}
    """Labels of the object (key: value); an app's labels are given to its templates as app.labels."""
    annotations: dict[str, str] = {}
    """Free-form notes (key: value) for people and tools; funops does not act on them."""


class Selector(Strict):
    """Nodes by labels (all must match) and/or by name; an empty selector matches every node."""

    match_labels: Labels = {}
    """Node labels that must all match (key: value)."""
    nodes: list[SafeName] = []
    """Node names: a node named here is selected whatever its labels."""


class SecretRef(Strict):
    """A value that is never printed: read from a controller-side file or environment variable."""

    from_file: Annotated[str, AfterValidator(lambda v: _path_chars(v) or v)] | None = None
    """A file on the controller holding the value (a relative path: from the repo root)."""
    from_env: EnvName | None = None
    """An environment variable of the controller holding the value."""

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.from_file is None) == (self.from_env is None):
            raise ValueError("a secret reference needs exactly one of fromFile or fromEnv")
        return self
