"""The exit-code contract of every command: the table in README.md's "Using it", one meaning per code
whatever the command, so CI and cron can branch on it (docs/architecture.md, "Errors and exit codes")."""

from __future__ import annotations

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_PARTIAL, EXIT_UNREACHABLE = 0, 1, 2, 3, 4
_SEVERITY = (EXIT_OK, EXIT_CHANGES, EXIT_UNREACHABLE, EXIT_PARTIAL, EXIT_ERROR)


def worst(*codes: int) -> int:
    """Where several exit codes hold, the most severe wins: 1 > 3 > 4 > 2 > 0."""
    return max(codes, key=_SEVERITY.index, default=EXIT_OK)
