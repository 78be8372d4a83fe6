"""The Prometheus text exposition format (version 0.0.4), for the few gauges funops exports."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Family:
    """One metric: its HELP, its TYPE and its samples (labels → value)."""

    name: str
    help: str
    type: str = "gauge"
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> Family:
        self.samples.append((labels, value))
        return self


def render(families: list[Family], common: dict[str, str] | None = None) -> str:
    """The exposition text; `common` labels go on every sample (a textfile has no grouping key)."""
    lines: list[str] = []
    for fam in families:
        if not fam.samples:
            continue
        lines.append(f"# HELP {fam.name} {_escape_help(fam.help)}")
        lines.append(f"# TYPE {fam.name} {fam.type}")
        for labels, value in fam.samples:
            merged = {**(common or {}), **labels}
            shown = ",".join(f'{k}="{_escape_value(v)}"' for k, v in sorted(merged.items()))
            lines.append(
                f"{fam.name}{{{shown}}} {_number(value)}" if shown else f"{fam.name} {_number(value)}"
            )
    return "\n".join(lines) + "\n" if lines else ""


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))
