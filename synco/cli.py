"""synco: the command line of the client (typer; each command a thin coat over one library call)."""

from __future__ import annotations

import os
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

from synco_source import __version__, dburl, engines
from synco_source.errors import EXIT_BUG, EXIT_INTERRUPTED, SyncoError

from .ui import UI

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Get a live copy of a server's database and files, encrypted end to end.")
state = {"debug": False}


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks.")) -> None:
    state["debug"] = debug


@contextmanager
def edge(ui: UI):
    """Turn errors into one message line, a hint line and the documented exit code."""
    try:
        yield
    except SyncoError as exc:
        if state["debug"]:
            traceback.print_exc()
        ui.error(str(exc), exc.hint)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        ui.error("interrupted; nothing was changed")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:  # a bug
        if state["debug"]:
            traceback.print_exc()
        ui.error(f"unexpected {type(exc).__name__}: {exc}",
                 "run again with --debug and report the traceback")
        raise typer.Exit(EXIT_BUG) from None


def _local_db(value: Optional[str], required: bool) -> Optional[dburl.DatabaseUrl]:
    if value or os.environ.get("SYNCO_DB_URL") or required:
        return dburl.from_option(value)
    return None


@app.command()
def download(
    token: str = typer.Argument(..., help="The token printed by synco-source."),
    db_url: Optional[str] = typer.Option(None, "--db-url", help="Local database URL "
                                         "(default: $SYNCO_DB_URL), e.g. mysql://root@127.0.0.1/shop_dev."),
    files_dir: list[str] = typer.Option([], "--files-dir", metavar="NAME=PATH",
                                        help="Local folder for file set NAME (repeatable)."),
    only: list[str] = typer.Option([], "--only", help="Sync only 'db', 'files' or a file set name "
                                   "(repeatable)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Write the database as a SQL file instead of importing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Replace a non-empty database without asking."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors."),
) -> None:
    """Download a session published by synco-source and import it locally."""
    from synco_frameworks.generic import parse_file_sets

    from .download import DownloadOptions, download as run_download

    ui = UI(assume_yes=yes, quiet=quiet)
    with edge(ui):
        opts = DownloadOptions(token=token, db_url=None if output else _local_db(db_url, False),
                               file_dirs=parse_file_sets(files_dir, Path.cwd()),
                               only=only, output=output)
        summary = run_download(opts, ui)
        if summary.tables:
            ui.info(f"database {summary.database}: {summary.tables} tables, {summary.rows} rows"
                    + (f"; previous kept as {summary.previous}" if summary.previous else ""))
        if summary.files_written or summary.files_present:
            ui.info(f"files: {summary.files_written} written, {summary.files_present} already "
                    f"up to date")
        ui.info(f"done, {summary.bytes_fetched / 1e6:.1f} MB downloaded")


@app.command()
def restore(
    db_url: Optional[str] = typer.Option(None, "--db-url", help="Local database URL "
                                         "(default: $SYNCO_DB_URL)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
) -> None:
    """Put back the database that the last import replaced (the two swap places)."""
    ui = UI(assume_yes=yes)
    with edge(ui):
        url = _local_db(db_url, True)
        ui.confirm(f"swap database {url.database} with the one the last import replaced?",
                   "pass --yes to restore without asking")
        ui.info(engines.restore(url))


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(f"synco {__version__}")


def run() -> None:
    app(prog_name="synco")
