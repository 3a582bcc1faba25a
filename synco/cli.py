"""synco: the command line of the client (typer; each command a thin coat over one library call)."""

from __future__ import annotations

import dataclasses
import os
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

from synco_source import __version__, dburl, engines
from synco_source.errors import EXIT_BUG, EXIT_INTERRUPTED, SyncoError, UsageError

from . import guard
from .signals import Stopped, stop_as_interrupt
from .ui import UI

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Get a live copy of a server's database and files, encrypted end to end.")
state = {"debug": False}


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks.")) -> None:
    state["debug"] = debug


@contextmanager
def edge(ui: UI):
    """Turn errors into one message line, a hint line and the documented exit code. SIGTERM and
    SIGHUP stop a command as Ctrl-C does (signals.py). After a partial change (the database
    replaced, the files not yet) the message says what was changed and what not (ui.aftermath)."""
    try:
        with stop_as_interrupt():
            yield
    except SyncoError as exc:
        if state["debug"]:
            traceback.print_exc()
        ui.error(str(exc), ui.aftermath() or exc.hint)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt as exc:
        how = f"interrupted by {exc.name}" if isinstance(exc, Stopped) else "interrupted"
        after = ui.aftermath()
        try:  # after SIGHUP the terminal may be gone
            ui.error(f"{how} after {after}" if after else f"{how}; nothing was changed")
        except OSError:
            pass
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


def _local_project(db_url: Optional[str], files_dir: list[str], need_db: bool):
    """The local instance: detected from the project in this folder (options win), or given by
    the options alone where this folder is no project."""
    from synco_frameworks import detect, generic

    root = Path.cwd()
    if detect.detectable(root):
        return detect.resolve(root, side="local", db_url=db_url, file_specs=files_dir,
                              need_db=need_db)
    project = generic.project(root, None, files_dir, need_db=False)
    project.database = _local_db(db_url, False) if need_db else None
    return project


def _local_password(project, value: Optional[str], prompt: bool, ui: UI) -> None:
    """Warn about a password in --db-url (other users see it in ps); with --password-prompt ask
    for the local database's password (on the terminal, else one line of standard input)."""
    if value and dburl.parse(value).password:
        ui.warn("the password in --db-url can be seen by other users of this machine (ps) and "
                "stays in the shell history; use SYNCO_DB_URL, the project's settings or "
                "--password-prompt")
    if not prompt:
        return
    url = project.database
    if url is None:
        raise UsageError("--password-prompt: no local database to ask the password for",
                         hint="pass --db-url (without the password) or set SYNCO_DB_URL")
    if sys.stdin.isatty():
        password = ui.secret(f"password of {url.user or 'the user'} for {url.redacted}")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    project.database = dataclasses.replace(url, password=password)


def _after_import(project, ui: UI) -> None:
    """Run the framework's post-import commands, or say which to run."""
    import subprocess

    if not project.post_import:
        return
    if not project.post_import_runnable:
        for line in project.post_import_lines():
            ui.info(f"now run: {line}")
        return
    for argv, line in zip(project.post_import, project.post_import_lines()):
        ui.info(f"running {line}")
        run = subprocess.run(argv, cwd=project.root)
        if run.returncode:
            ui.warn(f"{line} exited with {run.returncode}; run it again by hand")


NO_CACHE_HELP = "Fetch every chunk; neither read nor write the local chunk cache."
CACHE_SIZE_HELP = ("Largest size of the chunk cache, e.g. 5G (default: $SYNCO_CACHE_SIZE, the "
                   "config, else 3 copies of the largest database pulled, at least 2G).")


def cache_options(no_cache: bool, cache_size: Optional[str]) -> dict:
    """The DownloadOptions fields of --no-cache and --cache-size (download and pull share them)."""
    from .cache import configured_size, parse_size

    return {"no_cache": no_cache,
            "cache_size": parse_size(cache_size) if cache_size else configured_size()}


cache_app = typer.Typer(help="The local chunk cache: what a later pull need not fetch again.",
                        invoke_without_command=True)
app.add_typer(cache_app, name="cache")


@cache_app.callback()
def cache_show(ctx: typer.Context) -> None:
    """Show the cache's location, size and number of entries."""
    if ctx.invoked_subcommand:
        return
    from .cache import ChunkCache, configured_size

    ui = UI()
    with edge(ui):
        stats = ChunkCache(max_size=configured_size()).stats()
        typer.echo(f"location: {stats.root}")
        typer.echo(f"entries:  {stats.entries:,}")
        typer.echo(f"size:     {stats.size / 1e6:,.1f} MB of at most {stats.limit / 1e6:,.0f} MB")
        if stats.partial:
            typer.echo(f"partial:  {stats.partial / 1e6:,.1f} MB of interrupted transfers")


@cache_app.command("clear")
def cache_clear() -> None:
    """Empty the cache."""
    from .cache import ChunkCache

    ui = UI()
    with edge(ui):
        before = ChunkCache().clear()
        ui.info(f"removed {before.entries:,} entries ({(before.size + before.partial) / 1e6:,.1f} MB) "
                f"from {before.root}")


VERIFY_HELP = "Then check that the local database holds what was imported (as synco verify)."


# the local side's options, the same for download and pull
DB_URL = typer.Option(None, "--db-url", help="Local database URL (default: $SYNCO_DB_URL), e.g. "
                      "mysql://root@127.0.0.1/shop_dev.")
PASSWORD_PROMPT = typer.Option(False, "--password-prompt", help="Ask for the local database's "
                               "password (keeps it out of ps and the history).")
ALLOW_REMOTE_TARGET = typer.Option(False, "--allow-remote-target", help="Replace a database on a "
                                   "host that is not this machine.")
FILES_DIR = typer.Option([], "--files-dir", metavar="NAME=PATH",
                         help="Local folder for file set NAME (repeatable).")
ONLY = typer.Option([], "--only", help="Sync only 'db', 'files' or a file set name (repeatable).")
OUTPUT = typer.Option(None, "--output", "-o", help="Write the database as a SQL file instead of "
                      "importing.")
YES = typer.Option(False, "--yes", "-y", help="Replace a non-empty database without asking.")
QUIET = typer.Option(False, "--quiet", "-q", help="Only errors.")
NO_CACHE = typer.Option(False, "--no-cache", help=NO_CACHE_HELP)
CACHE_SIZE = typer.Option(None, "--cache-size", metavar="SIZE", help=CACHE_SIZE_HELP)
VERIFY = typer.Option(False, "--verify", help=VERIFY_HELP)


def _local_target(ui: UI, db_url, password_prompt, allow_remote_target, files_dir, only, output,
                  no_cache, cache_size):
    """The local project and the DownloadOptions that ``download`` and ``pull`` share."""
    from .download import DownloadOptions

    project = _local_project(db_url, files_dir, need_db=output is None)
    if project.framework != "generic":
        ui.info(f"local {project.framework} project in {project.root}")
    _local_password(project, db_url, password_prompt, ui)
    opts = DownloadOptions(db_url=project.database, file_dirs=project.file_sets, only=only,
                           output=output, allow_remote_target=allow_remote_target,
                           local_hosts=guard.project_hosts(project.root),
                           **cache_options(no_cache, cache_size))
    return project, opts




def _verify(url, ui: UI) -> None:
    """Compare the local database with what the last import put there; differences raise
    LocalCopyDiffers (its own exit code), naming each table."""
    from synco_source.errors import LocalCopyDiffers

    from .verify import check

    result = check(url)
    if result is None:
        ui.info(f"no record of an import into {url.redacted}: nothing to compare with "
                f"(synco download or pull records one)")
        return
    if result.identical:
        ui.info(f"database {url.database}: all {result.tables} tables are as the last import "
                f"left them (checked in {result.seconds:.1f} s)")
        return
    for line in result.lines():
        ui.info(line)
    count = len(result.changed) + len(result.added) + len(result.dropped)
    raise LocalCopyDiffers(f"database {url.database} differs from the last import in {count} "
                           f"table{'s' if count != 1 else ''}: "
                           + ", ".join(result.changed + result.added + result.dropped))


def _report(summary, project, output, ui: UI, verb: str, verify_url=None) -> None:
    """What a download or pull did, then the check of --verify (given the local database's URL)
    and the framework's post-import steps."""
    if summary.tables:
        ui.info(f"database {summary.database}: {summary.tables} tables, {summary.rows} rows"
                + (f"; previous kept as {summary.previous}" if summary.previous else ""))
    if summary.files_written or summary.files_present:
        ui.info(f"files: {summary.files_written} written, {summary.files_present} already "
                f"up to date")
    ui.info(f"done, {summary.bytes_fetched / 1e6:.1f} MB {verb}"
            + (f" ({summary.chunks_fetched} chunks fetched, {summary.chunks_cached} from the "
               f"cache)" if summary.chunks_cached else ""))
    if summary.tables and output is None:
        if verify_url:
            _verify(verify_url, ui)
        _after_import(project, ui)


@app.command()
def download(
    token: str = typer.Argument(..., help="The token printed by synco-source."),
    db_url: Optional[str] = DB_URL,
    password_prompt: bool = PASSWORD_PROMPT,
    allow_remote_target: bool = ALLOW_REMOTE_TARGET,
    files_dir: list[str] = FILES_DIR,
    only: list[str] = ONLY,
    output: Optional[Path] = OUTPUT,
    yes: bool = YES,
    quiet: bool = QUIET,
    no_cache: bool = NO_CACHE,
    cache_size: Optional[str] = CACHE_SIZE,
    verify: bool = VERIFY,
) -> None:
    """Download a session published by synco-source and import it locally."""
    from .download import download as run_download

    ui = UI(assume_yes=yes, quiet=quiet)
    with edge(ui):
        project, opts = _local_target(ui, db_url, password_prompt, allow_remote_target, files_dir,
                                      only, output, no_cache, cache_size)
        opts.token = token
        _report(run_download(opts, ui), project, output, ui, "downloaded",
                verify and opts.db_url)


@app.command()
def pull(
    remote: Optional[str] = typer.Argument(None, help="ssh://[user@]host[:port]/path, "
                                           "kubectl://NAMESPACE/POD/path, docker://CONTAINER/path, "
                                           "a remote named in synco.yaml (default: its only one), "
                                           "or the folder with --exec."),
    container: Optional[str] = typer.Option(None, "--container", "-c",
                                            help="kubectl: the pod's container."),
    context: Optional[str] = typer.Option(None, "--context", help="kubectl: the context to use."),
    exec_prefix: Optional[str] = typer.Option(None, "--exec", metavar="'COMMAND'",
                                              help="Run synco-source through this command, e.g. "
                                              "'ssh host sudo -u www-data'; REMOTE is then the folder."),
    source_binary: Optional[Path] = typer.Option(None, "--source-binary", metavar="FILE",
                                                 help="The synco-source binary to upload when the "
                                                 "remote has none (default: $SYNCO_SOURCE_BINARY, "
                                                 "the cache, else the release)."),
    all_data: bool = typer.Option(False, "--all", help="No smart exclusions on the server "
                                  "(as synco-source serve --all)."),
    db_url: Optional[str] = DB_URL,
    password_prompt: bool = PASSWORD_PROMPT,
    allow_remote_target: bool = ALLOW_REMOTE_TARGET,
    files_dir: list[str] = FILES_DIR,
    only: list[str] = ONLY,
    output: Optional[Path] = OUTPUT,
    yes: bool = YES,
    quiet: bool = QUIET,
    no_cache: bool = NO_CACHE,
    cache_size: Optional[str] = CACHE_SIZE,
    verify: bool = VERIFY,
) -> None:
    """Run synco-source on a server over ssh, kubectl or docker and import here, in one command."""
    from .pull import PullOptions, pull as run_pull

    ui = UI(assume_yes=yes, quiet=quiet)
    with edge(ui):
        project, download_opts = _local_target(ui, db_url, password_prompt, allow_remote_target,
                                               files_dir, only, output, no_cache, cache_size)
        opts = PullOptions(
            target=remote, container=container, context=context, exec_prefix=exec_prefix,
            source_binary=source_binary, all_data=all_data, root=Path.cwd(),
            download=download_opts)
        _report(run_pull(opts, ui), project, output, ui, "pulled", verify and download_opts.db_url)


@app.command("verify")
def verify_cmd(
    db_url: Optional[str] = typer.Option(None, "--db-url", help="Local database URL "
                                         "(default: the project's, else $SYNCO_DB_URL)."),
    password_prompt: bool = typer.Option(False, "--password-prompt", help="Ask for the local "
                                         "database's password (keeps it out of ps and the history)."),
) -> None:
    """Say whether the local database still holds what the last download or pull imported."""
    ui = UI()
    with edge(ui):
        project = _local_project(db_url, [], need_db=True)
        _local_password(project, db_url, password_prompt, ui)
        if project.database is None:
            raise UsageError("no local database to verify",
                             hint="pass --db-url or set SYNCO_DB_URL")
        _verify(project.database, ui)


@app.command()
def remotes() -> None:
    """List the remotes named in synco.yaml (for 'synco pull NAME')."""
    from .pull import describe_remotes

    ui = UI()
    with edge(ui):
        for line in describe_remotes(Path.cwd()):
            typer.echo(line)


@app.command()
def detect(
    db_url: Optional[str] = typer.Option(None, "--db-url", help="Local database URL, overriding "
                                         "what is detected."),
    files_dir: list[str] = typer.Option([], "--files-dir", metavar="NAME=PATH",
                                        help="Local folder for file set NAME (repeatable)."),
) -> None:
    """Show what synco finds in the project in this folder (no passwords)."""
    from synco_frameworks.detect import describe

    ui = UI()
    with edge(ui):
        for line in describe(_local_project(db_url, files_dir, need_db=True)):
            typer.echo(line)


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
def keygen(
    new: bool = typer.Option(False, "--new", help="Replace the key pair with a new one (sessions "
                             "made for the old key can no longer be read)."),
) -> None:
    """Print this machine's public key, for 'synco-source serve --recipient KEY' (made once)."""
    from .keys import Identity, default_path

    ui = UI()
    with edge(ui):
        path = default_path()
        if path.exists() and not new:
            identity = Identity.load(path)
        else:
            identity = Identity.generate()
            identity.save(path)
            ui.info(f"new key pair; the private key is in {path}")
        typer.echo(identity.public_text)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(f"synco {__version__}")


def run() -> None:
    app(prog_name="synco")
