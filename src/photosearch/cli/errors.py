"""Errors in the user's words: one line naming the flag as typed, exit 2 for usage, JSON with `--json`.

Typer validates options with pydantic and raises click-style exceptions whose messages speak of
"Input" and "Value error"; these helpers turn them (and pydantic errors of our own models) into lines
such as `-k/--size must be between 1 and 1000`. Only real bugs say "unexpected error".
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

USAGE_EXIT = 2

_DATE_HINT = "a date like 2024-05-31 or 2024-05-31T14:30"


class UsageError(Exception):
    """Bad input on the command line: one line, exit code 2."""


def flag_of(param: Any) -> str:
    """How the user types a parameter: `-k/--size` for options, `EMAIL` for arguments."""
    opts = [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]
    if opts and opts[0].startswith("-"):
        return "/".join(opts)
    return (getattr(param, "name", None) or "value").upper()


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _bounds(param: Any) -> str | None:
    lo, hi = getattr(param, "min", None), getattr(param, "max", None)
    if lo is not None and hi is not None:
        return f"must be between {_num(lo)} and {_num(hi)}"
    if lo is not None:
        return f"must be at least {_num(lo)}"
    if hi is not None:
        return f"must be at most {_num(hi)}"
    return None


def problem_text(msg: str) -> str:
    """A pydantic/typer message as the end of a sentence about a flag: "must be a whole number"."""
    msg = re.sub(r"^Value error, ", "", msg.strip()).rstrip(".")
    if "does not match the format" in msg:
        return f"must be {_DATE_HINT}"
    if m := re.search(r"is not one of (.+)$", msg):
        return f"must be one of {m.group(1)}"
    if "valid integer" in msg:
        return "must be a whole number"
    if "valid number" in msg:
        return "must be a number"
    if "valid boolean" in msg:
        return "must be true or false"
    if m := re.match(r"(?:Input|String|List|Value) should (.+)$", msg):
        return "must " + m.group(1).replace("greater than or equal to", "be at least").replace(
            "less than or equal to", "be at most"
        ).removeprefix("be be ")
    return msg[:1].lower() + msg[1:]


def click_message(exc: Exception) -> str:
    """One line for a typer/click usage exception."""
    from typer._click import exceptions as ce

    cmd = getattr(getattr(exc, "ctx", None), "command_path", None) or "photosearch"
    if isinstance(exc, ce.NoSuchOption):
        near = list(getattr(exc, "possibilities", None) or [])[:3]
        hint = f" (did you mean {' or '.join(near)}?)" if near else f"; see `{cmd} --help`"
        return f"`{cmd}` has no option {exc.option_name}{hint}"
    param = getattr(exc, "param", None)
    if isinstance(exc, ce.MissingParameter) and param is not None:
        kind = "option" if flag_of(param).startswith("-") else "argument"
        return f"`{cmd}` needs the {kind} {flag_of(param)}; see `{cmd} --help`"
    msg = str(getattr(exc, "message", "") or exc)
    if isinstance(exc, ce.BadParameter):
        hint = param and flag_of(param) or getattr(exc, "param_hint", None) or "a value"
        if isinstance(hint, list | tuple):
            hint = "/".join(hint)
        hint = str(hint).strip("'\"")
        if param is not None and re.search(r"should be (greater|less) than", msg):
            return f"{hint} {_bounds(param) or problem_text(msg)}"
        return f"{hint} {problem_text(msg)}"
    if m := re.match(r"No such command '(.+)'", msg):
        group = getattr(getattr(exc, "ctx", None), "command", None)
        names = sorted(group.list_commands(exc.ctx)) if group is not None and hasattr(group, "list_commands") else []
        listed = f" (commands: {', '.join(names)})" if names else ""
        return f"`{cmd}` has no command {m.group(1)!r}{listed}"
    if m := re.match(r"Option '(.+)' requires an argument", msg):
        return f"{m.group(1)} needs a value"
    if m := re.match(r"Got unexpected extra arguments? \((.+)\)", msg):
        return f"`{cmd}` got unexpected extra arguments: {m.group(1)}; see `{cmd} --help`"
    return msg.rstrip(".")


def validation_message(exc: Any, flags: dict[str, str] | None = None) -> str:
    """A pydantic ValidationError as one line, fields named by their CLI flag (or plainly)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        field = str(err["loc"][0]) if err.get("loc") else ""
        name = (flags or {}).get(field, field)
        text = problem_text(err.get("msg", "invalid value"))
        parts.append(f"{name} {text}" if name else text)
    return "; ".join(parts) or "invalid input"


def report(message: str, *, kind: str, as_json: bool) -> None:
    """Print an error on stderr: a JSON object with --json, else one line."""
    if as_json:
        sys.stderr.write(json.dumps({"error": {"kind": kind, "message": message}}) + "\n")
        return
    from rich.markup import escape

    from photosearch.cli._common import err_console

    prefix = "unexpected error" if kind == "bug" else "error"
    # soft_wrap: an error stays one line however long its paths are (scripts and tests match on it)
    err_console.print(f"[bold red]{prefix}:[/bold red] {escape(message)}", highlight=False, soft_wrap=True)
    if kind == "bug":
        err_console.print("[dim]run with --debug for the traceback[/dim]")


GLOBAL_FLAGS = ("--json", "--debug")


def hoist_global_flags(argv: list[str]) -> list[str]:
    """Accept `--json`/`--debug` anywhere on the line (`search x --json`): move them before the sub-command.
    Nothing after a `--` separator is touched."""
    end = argv.index("--") if "--" in argv else len(argv)
    found = [a for a in argv[:end] if a in GLOBAL_FLAGS]
    rest = [a for a in argv[:end] if a not in GLOBAL_FLAGS]
    return list(dict.fromkeys(found)) + rest + argv[end:]
