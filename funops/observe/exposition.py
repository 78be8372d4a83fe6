"""The deploy metrics funops exports, as families of samples (the format: node/exposition.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..node.exposition import family


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
        if fam.samples:
            samples = [
                (dict(sorted({**(common or {}), **labels}.items())), value) for labels, value in fam.samples
            ]
            lines += family(fam.name, fam.type, fam.help, samples)
    return "\n".join(lines) + "\n" if lines else ""
