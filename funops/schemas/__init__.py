"""JSON Schemas: generated from the models (repo files, plan, drift, history, validate: the models are the
single source of truth), or shipped as files beside this module for the smaller `-o json` documents
(nodes, status, …), which tests hold the commands' real output to."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_for(what: str) -> dict[str, Any]:
    from pydantic import TypeAdapter

    from ..apptypes.application import Manifest
    from ..drift.document import drift_schema
    from ..model.inventory import InventoryFile, Node
    from ..plan.document import plan_schema
    from ..settings import Settings

    if what == "plan":
        return plan_schema()
    if what == "history":
        from ..release.document import history_schema

        return history_schema()
    if what == "drift":
        return drift_schema()
    if what in SHIPPED:
        return json.loads((Path(__file__).parent / f"{what}.schema.json").read_text(encoding="utf-8"))
    if what == "validate":
        from ..load.report import validate_schema

        return validate_schema()
    from .descriptions import DescribedFields

    if what == "manifest":
        schema = TypeAdapter(Manifest).json_schema(by_alias=True, schema_generator=DescribedFields)
        schema["title"] = "funops manifest (Application, Service, Ingress or Release)"
    elif what == "inventory":
        schema = InventoryFile.model_json_schema(by_alias=True, schema_generator=DescribedFields)
        schema.setdefault("$defs", {})["Node"] = Node.model_json_schema(
            by_alias=True, schema_generator=DescribedFields
        )
        schema["properties"]["nodes"]["items"] = {"$ref": "#/$defs/Node"}
    elif what == "settings":
        schema = Settings.model_json_schema(by_alias=True, schema_generator=DescribedFields)
    else:
        raise KeyError(what)
    schema["$schema"] = SCHEMA_DIALECT
    schema["$id"] = schema_id(what)
    _drop_field_titles(schema)
    return schema


# The `-o json` documents whose schema is a file here, not generated ("events": one line of apply's
# JSON output, and of rollback, restart, drain, drift --fix and certs renew).
SHIPPED = ("nodes", "status", "publish", "details", "lock", "audit", "exec", "certs", "events")
SCHEMAS = ("manifest", "inventory", "settings", "plan", "drift", "history", "validate", *SHIPPED)

# The files editors validate against; `funops init` writes them into a new repo (schema --write).
EDITOR_SCHEMAS = ("manifest", "inventory", "settings")


def schema_id(what: str) -> str:
    """As the plan, drift and history schemas name themselves; editors read the files init writes."""
    return f"https://funops.dev/schemas/{what}-v1.json"


def _drop_field_titles(node: Any) -> None:
    """pydantic titles every field after its name ("Capadd" for capAdd): noise in an editor's hover,
    where the field's name is shown anyway. A model's title (Application, Node) stays."""
    if isinstance(node, dict):
        for sub in (node.get("properties") or {}).values():
            if isinstance(sub, dict):
                sub.pop("title", None)
        for value in node.values():
            _drop_field_titles(value)
    elif isinstance(node, list):
        for value in node:
            _drop_field_titles(value)
