"""The validate report as a document: the `funops validate --output json` contract (diagnostics as data).

Its JSON Schema ships in funops/schemas/validate.schema.json (regenerate with
`funops schema validate > funops/schemas/validate.schema.json`); bump FORMAT_VERSION on any
incompatible change.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ..errors import Problem, visible

FORMAT_VERSION = 1


class _Doc(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class DiagnosticDoc(_Doc):
    severity: Literal["error", "warning"]
    file: str = Field(description="repo-relative path (absolute for an --inventory outside the repo)")
    line: int | None = Field(description="1-based; null when the problem is about the whole file")
    column: int | None = Field(description="1-based column where the span starts; null when unknown")
    end_column: int | None = Field(description="1-based column just after the span, on the same line")
    field: str = Field(description="dotted path inside the document (spec.healthCheck.port); may be empty")
    message: str
    suggestion: str = Field(description="what to do, e.g. \"did you mean 'port'?\"; empty when none")
    source: str | None = Field(description="the text of the line, control characters escaped")


class ValidateDoc(_Doc):
    format_version: Literal[1] = FORMAT_VERSION
    kind: Literal["validate"] = "validate"
    valid: bool
    revision: str | None = Field(description="what was read: working tree at <commit>, a --revision …")
    counts: dict[str, int] = Field(description="what the repo declares (nodes, apps, …), when valid")
    diagnostics: list[DiagnosticDoc]

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2) + "\n"


def diagnostic(problem: Problem) -> DiagnosticDoc:
    return DiagnosticDoc(
        severity=problem.severity,
        file=problem.file,
        line=problem.line,
        column=problem.column,
        end_column=problem.end_column,
        field=problem.field,
        message=visible(problem.message),
        suggestion=visible(problem.suggestion),
        source=visible(problem.source) if problem.source is not None else None,
    )


def validate_schema() -> dict[str, Any]:
    schema = ValidateDoc.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://funops.dev/schemas/validate-v1.json"
    return schema
