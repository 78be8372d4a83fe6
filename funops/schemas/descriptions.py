"""Field descriptions for the JSON Schemas: the string under each field of a model, as pydantic's
`use_attribute_docstrings` would read it, but only when a schema is made. That option reads every
model's source as its class is created, at import: about 0.15 s more before every command (a busy
2-core machine)."""

from __future__ import annotations

import ast
import inspect
import textwrap
from functools import cache
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue

if TYPE_CHECKING:
    from pydantic_core import core_schema


@cache
def field_docstrings(cls: type) -> dict[str, str]:
    """The docstrings of the fields `cls` itself declares, by field name."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for stmt, after in pairwise(body):
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[stmt.target.id] = inspect.cleandoc(after.value.value)
    return docs


class DescribedFields(GenerateJsonSchema):
    """Each property of a model gets its field's docstring as its description (from the class that
    declares the field: a mixin's fields are documented where they are written); a description the
    field has already (`Field(description=…)`) wins."""

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        json_schema = super().model_schema(schema)
        cls: Any = schema["cls"]
        properties = json_schema.get("properties") or {}
        for name, field in cls.model_fields.items():
            key = field.alias if self.by_alias and field.alias else name
            prop = properties.get(key)
            if not isinstance(prop, dict) or "description" in prop:
                continue
            doc = next((d[name] for base in cls.__mro__ if name in (d := field_docstrings(base))), None)
            if doc:
                prop["description"] = doc
        return json_schema
