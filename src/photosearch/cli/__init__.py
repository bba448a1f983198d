"""The `photosearch` command: a thin Typer shell over the services.

Errors the user can act on print one line (cli/errors.py): exit 2 for usage, 1 otherwise; `--debug` shows
the traceback of unexpected ones.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from photosearch import __version__
from photosearch.cli._common import CliError, State, err_console
from photosearch.cli.accounts import libraries_app, users_app
from photosearch.cli.db import db_app
from photosearch.cli.duplicates import duplicates_cmd
from photosearch.cli.index import errors_cmd, index_cmd  # also adds `libraries scan`
from photosearch.cli.models import models_app
from photosearch.cli.search import search_cmd
from photosearch.cli.serve import serve

app = typer.Typer(
    name="photosearch",
    help="Semantic photo search: index folders of photos, then find them by text, by example or by metadata.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(libraries_app, name="libraries")
# Sub-commands added by other modules register here (one line each).
app.add_typer(models_app, name="models")
app.command("index")(index_cmd)
app.command("errors")(errors_cmd)
app.command("serve")(serve)
app.command("search")(search_cmd)
app.command("duplicates")(duplicates_cmd)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"photosearch {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", envvar="PHOTOSEARCH_DATA_DIR", help="Data directory.")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    overrides = {"data_dir": data_dir} if data_dir else {}
    st = State(json=json_output, debug=debug, overrides=overrides)
    ctx.obj = st
    ctx.call_on_close(st.close)
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _known_errors() -> tuple[type[BaseException], ...]:
    from pydantic import ValidationError

    from photosearch.db.accounts import Conflict, NotFound
    from photosearch.db.server import DatabaseError

    errs: list[type[BaseException]] = [CliError, DatabaseError, NotFound, Conflict, ValidationError]
    try:
        from photosearch.models.errors import ModelError

        errs.append(ModelError)
    except ImportError:
        pass
    try:
        from photosearch.search.query import SearchError

        errs.append(SearchError)
    except ImportError:
        pass
    return tuple(errs)


def _classify(exc: BaseException) -> tuple[str, str, int]:
    """(kind, one-line message, exit code) for an error that reached the top."""
    from pydantic import ValidationError
    from typer._click.exceptions import ClickException

    from photosearch.cli.errors import USAGE_EXIT, UsageError, click_message, validation_message

    if isinstance(exc, ClickException):
        return "usage", click_message(exc), USAGE_EXIT
    if isinstance(exc, UsageError):
        return "usage", str(exc), USAGE_EXIT
    if isinstance(exc, ValidationError):
        return "usage", validation_message(exc), USAGE_EXIT
    msg = str(exc).strip() or type(exc).__name__
    if isinstance(exc, _known_errors()):
        return "error", msg, 1
    return "bug", f"({type(exc).__name__}) {msg}", 1


def main() -> None:
    from photosearch.cli.errors import hoist_global_flags, report

    argv = hoist_global_flags(sys.argv[1:])
    debug, as_json = "--debug" in argv, "--json" in argv
    try:
        app(argv, prog_name="photosearch", standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into a clean line
        if type(exc).__name__ == "NoArgsIsHelpError":  # `photosearch` alone: the help was shown, nothing to add
            sys.exit(2)
        kind, msg, code = _classify(exc)
        if debug and kind == "bug":
            raise
        report(msg, kind=kind, as_json=as_json)
        sys.exit(code)
