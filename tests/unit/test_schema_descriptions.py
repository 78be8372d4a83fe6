"""The editor schemas (`funops schema manifest|inventory|settings`, which `funops init` writes into a
new repo) describe every field: the YAML language server shows the description on hover, and a field
without one shows nothing. Descriptions come from the string under each field in the models."""

from __future__ import annotations

from typing import Any

import pytest

from funops.schemas import EDITOR_SCHEMAS, schema_for


def undescribed(node: Any, where: str = "#") -> list[str]:
    """Every property of every object in the schema (its $defs included) without a description."""
    missing: list[str] = []
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            if not isinstance(prop, dict) or not str(prop.get("description", "")).strip():
                missing.append(f"{where}/properties/{name}")
        for key, value in node.items():
            missing += undescribed(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            missing += undescribed(value, f"{where}/{i}")
    return missing


@pytest.mark.parametrize("name", EDITOR_SCHEMAS)
def test_every_field_has_a_description(name: str) -> None:
    missing = undescribed(schema_for(name))
    assert not missing, f"{name}: properties without a description (add a docstring under the field):\n" + (
        "\n".join(missing)
    )


def test_the_walk_finds_a_field_without_one() -> None:
    schema = {"properties": {"a": {"description": "A."}}, "$defs": {"X": {"properties": {"b": {}}}}}
    assert undescribed(schema) == ["#/$defs/X/properties/b"]


def test_descriptions_reach_fields_of_every_origin() -> None:
    """A common field, an app type's own field (mixed into the spec), a nested model's, a setting's."""
    spec = schema_for("manifest")["$defs"]["ApplicationSpec"]["properties"]
    assert "connections to end" in spec["drainTimeout"]["description"]
    assert "(default 5)" in spec["drainTimeout"]["description"]
    assert "calendar" in spec["schedule"]["description"]
    node = schema_for("inventory")["$defs"]["Node"]["properties"]
    assert "(default 22)" in node["port"]["description"]
    settings = schema_for("settings")["properties"]
    assert "(default 20" in settings["parallel"]["description"]


def test_models_do_not_read_their_source_at_import() -> None:
    """pydantic's use_attribute_docstrings would: about 0.15 s before every command. The schemas read the
    docstrings themselves (funops/schemas/descriptions.py)."""
    from funops.model.common import Strict

    assert not Strict.model_config.get("use_attribute_docstrings")
