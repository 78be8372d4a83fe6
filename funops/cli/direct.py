"""`plan` and `apply` without building the typer app: their command line parsed here and the command
called as typer would call it, when every word of it is one this module fully understands.

Typer builds a click command and a pydantic adapter for every option before it parses any, and
`cli/main.py` imports every command module to list them: together a tenth of a no-op plan. Only the
plain forms are taken here (options spelled out, values that need no conversion beyond a path, a
choice or a small number); anything else — help, completion, a plan file, `--inventory`, metrics,
a value typer would refuse, a FUNOPS_* variable that is not a plain path or choice — returns None,
and the app parses it as ever, so errors and help read as they always did.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# Option → (parameter, kind) for each command; kinds: "path", "str", "list", "flag", and the checks below.
_COMMON = {
    "-C": ("repo", "path"),
    "--repo": ("repo", "path"),
    "-r": ("revision", "str"),
    "--revision": ("revision", "str"),
    "-n": ("node", "list"),
    "--node": ("node", "list"),
    "-a": ("app", "list"),
    "--app": ("app", "list"),
    "-o": ("output", "output"),
    "--output": ("output", "output"),
    "--skip-unreachable": ("skip_unreachable", "flag"),
    "--diff-context": ("diff_context", "context"),
    "--no-diff": ("no_diff", "flag"),
}
_OPTIONS: dict[str, dict[str, tuple[str, str]]] = {
    "plan": {**_COMMON, "--out": ("out", "path"), "--seal-to": ("seal_to", "path")},
    "apply": {
        **_COMMON,
        "--auto-approve": ("auto_approve", "flag"),
        "-p": ("parallel", "parallel"),
        "--parallel": ("parallel", "parallel"),
        "--resume": ("resume", "flag"),
        "--allow-dirty": ("allow_dirty", "flag"),
        "--force": ("force", "flag"),
    },
}
_OUTPUTS = {"plan": ("text", "json", "markdown"), "apply": ("text", "json")}
# Variables of options this module leaves to typer (lists, booleans and numbers it would convert).
_LEFT_TO_TYPER = (
    "FUNOPS_INVENTORY",
    "FUNOPS_SKIP_UNREACHABLE",
    "FUNOPS_AUTO_APPROVE",
    "FUNOPS_PARALLEL",
    "FUNOPS_METRICS_PUSH",
    "FUNOPS_LOG",
    "_FUNOPS_COMPLETE",
)
_NUMBER = re.compile(r"[0-9]{1,4}")


def command(argv: list[str], environ: Mapping[str, str]) -> Callable[[], None] | None:
    """What runs `argv` without the app, or None (the app does)."""
    where: str | None = None
    while argv[:1] in (["-C"], ["--repo"]) and len(argv) > 1:  # as cli/main.leading_options
        where, argv = argv[1], argv[2:]
    if not argv or argv[0] not in _OPTIONS or any(environ.get(v) for v in _LEFT_TO_TYPER):
        return None
    name, options = argv[0], _OPTIONS[argv[0]]
    kwargs: dict[str, Any] = {}
    args = argv[1:]
    i = 0
    while i < len(args):
        word = args[i]
        option, eq, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if option not in options:
            return None  # a plan file, --help, an unknown option, a short option with its value attached
        param, kind = options[option]
        if kind == "flag":
            if eq:
                return None
            kwargs[param] = True
            i += 1
            continue
        if not eq:
            if i + 1 >= len(args):
                return None
            value, i = args[i + 1], i + 1
        if value.startswith("-") or not value:
            return None  # typer decides what such a word means
        converted = _convert(name, kind, value)
        if converted is None:
            return None
        if kind == "list":
            kwargs.setdefault(param, []).append(converted)
        else:
            kwargs[param] = converted
        i += 1
    for var, param, kind in (("FUNOPS_REPO", "repo", "path"), ("FUNOPS_OUTPUT", "output", "output")):
        if environ.get(var) and param not in kwargs:
            converted = _convert(name, kind, environ[var])
            if converted is None:
                return None
            kwargs[param] = converted
    if where is not None and not os.path.isdir(where):
        return None  # the app says why
    return lambda: _run(name, where, kwargs)


def _convert(command_name: str, kind: str, value: str) -> Any:
    if kind == "path":
        return Path(value)
    if kind in ("str", "list"):
        return value
    if kind == "output":
        from .output import Output

        return Output(value) if value in _OUTPUTS[command_name] else None
    if _NUMBER.fullmatch(value) is None:
        return None
    number = int(value)
    if kind == "context":
        return number if number <= 1000 else None
    return number if number >= 1 else None  # parallel


def function_of(name: str) -> Callable[..., None]:
    """The command's function, as the app registers it."""
    if name == "plan":
        from .plan import plan

        return plan
    from .apply import apply

    return apply


def _run(name: str, where: str | None, kwargs: dict[str, Any]) -> None:
    """The command as `cli/main.run` and typer run it: in `where`, its errors and exit codes theirs."""
    import gc

    from typer import Abort, Exit
    from typer._click.exceptions import ClickException, UsageError

    from .debug import configure_logging
    from .output import EXIT_ERROR, running

    if where is not None:
        os.chdir(where)
    running.command = name
    configure_logging()
    function = function_of(name)
    try:
        try:
            function(**kwargs)
            raise SystemExit(0)
        except EOFError as exc:  # what typer's main does with what escapes a command
            print(file=sys.stderr)
            raise Abort() from exc
        except KeyboardInterrupt as exc:
            raise Exit(130) from exc
        except ClickException as exc:
            from typer import rich_utils

            if isinstance(exc, UsageError):
                exc.exit_code = EXIT_ERROR  # as cli/main's _Commands
            rich_utils.rich_format_error(exc)
            raise SystemExit(exc.exit_code) from None
        except OSError as exc:
            import errno

            if exc.errno != errno.EPIPE:
                raise
            from typer._click.utils import PacifyFlushWrapper

            sys.stdout = PacifyFlushWrapper(sys.stdout)  # type: ignore[assignment]
            sys.stderr = PacifyFlushWrapper(sys.stderr)  # type: ignore[assignment]
            raise SystemExit(1) from None
    except Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except Abort:
        from typer import rich_utils

        rich_utils.rich_abort_error()
        raise SystemExit(1) from None
    finally:
        gc.freeze()  # as cli/main.run
