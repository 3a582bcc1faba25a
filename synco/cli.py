"""synco: the command line of the client (typer; each command a thin coat over one library call)."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import os
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
import typer.core

from synco_source import __version__, dburl, engines
from synco_source.errors import (EXIT_BUG, EXIT_INTERRUPTED, Aborted, SyncoError, TokenError,
                                 UsageError)

from . import guard
from .after import After, after_import, before_import
from .signals import Stopped, stop_as_interrupt
from .ui import UI

# typer 0.29 carries its own copy of click as typer._click (pyproject.toml pins typer to the
# tested range); a typer that uses click again would raise click's own exceptions
try:
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException


class Command(typer.core.TyperCommand):
    """A command whose help names each argument by its metavar alone (typer would add a type
    name such as ``<list[str]>``; every option here has a metavar or is a flag)."""

    def format_options(self, ctx, formatter) -> None:
        args, opts = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                args.append((param.metavar or param.name.upper(), record[1]))
            else:
                opts.append(record)
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


# Plain help (rich_markup_mode=None), as synco-source's argparse prints it: no boxes, no type
# names; -h as well as --help everywhere; completion for bash, zsh, fish and PowerShell.
CONTEXT = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(no_args_is_help=True, context_settings=CONTEXT, rich_markup_mode=None,
                  help="Get a live copy of a server's database and files, encrypted end to end.",
                  epilog="\b\nExamples:\n"
                         "  synco download TOKEN             the line synco-source printed\n"
                         "  synco pull ssh://deploy@shop.example.com/var/www/shop\n"
                         "  synco detect --json\n"
                         "  synco --install-completion       then open a new shell")
state = {"debug": False, "quiet": False}

DEBUG = typer.Option(False, "--debug", help="Show tracebacks (anywhere on the line).")
QUIET = typer.Option(False, "--quiet", "-q", help="Only errors (anywhere on the line).")
JSON = typer.Option(False, "--json", help="Print the result as one JSON object on stdout "
                    "(its keys are listed in the README).")


def common(func):
    """Add --debug and --quiet to a command: accepted before the command's name (the main
    callback) and after it (here) alike."""
    signature = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(*args, debug: bool = False, quiet: bool = False, **kwargs):
        state["debug"] = state["debug"] or debug
        state["quiet"] = state["quiet"] or quiet
        return func(*args, **kwargs)

    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=bool)
             for name, default in (("debug", DEBUG), ("quiet", QUIET))]
    wrapper.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *extra])
    wrapper.__annotations__ = {**func.__annotations__, "debug": bool, "quiet": bool}
    return wrapper


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"synco {__version__}")
        raise typer.Exit()


@app.callback()
def main(debug: bool = DEBUG, quiet: bool = QUIET,
         version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                      help="Print the version and exit.")) -> None:
    # runs first on every command line: the options given after the command add to these
    state["debug"], state["quiet"] = debug, quiet


def ui_for(*, assume_yes: bool = False) -> UI:
    """The UI of a command, quiet when --quiet was given anywhere on the line."""
    return UI(assume_yes=assume_yes, quiet=state["quiet"])


@contextmanager
def edge(ui: UI):
    """Turn errors into one message line, a hint line and the documented exit code. SIGTERM and
    SIGHUP stop a command as Ctrl-C does (signals.py). After a partial change (the database
    replaced, the files not yet) the message says what was changed and what not (ui.aftermath)."""
    try:
        with stop_as_interrupt(), ui.library_messages():
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


NO_CACHE_HELP = "Fetch every chunk; neither read nor write the local chunk cache."
CACHE_SIZE_HELP = ("Largest size of the chunk cache, e.g. 5G (default: $SYNCO_CACHE_SIZE, the "
                   "config, else 3 copies of the largest database pulled, at least 2G).")


def cache_options(no_cache: bool, cache_size: Optional[str]) -> dict:
    """The DownloadOptions fields of --no-cache and --cache-size (download and pull share them)."""
    from .cache import configured_size, parse_size

    return {"no_cache": no_cache,
            "cache_size": parse_size(cache_size) if cache_size else configured_size()}


cache_app = typer.Typer(invoke_without_command=True, context_settings=CONTEXT,
                        rich_markup_mode=None)
app.add_typer(cache_app, name="cache")


@cache_app.callback(epilog="\b\nExamples:\n  synco cache\n  synco cache --json\n"
                           "  synco cache clear")
@common
def cache_show(ctx: typer.Context, as_json: bool = JSON) -> None:
    """The local chunk cache (what a later pull need not fetch again): its location, size and
    number of entries."""
    if ctx.invoked_subcommand:
        return
    from .cache import ChunkCache, configured_size

    ui = ui_for()
    with edge(ui):
        stats = ChunkCache(max_size=configured_size()).stats()
        if as_json:
            _print_json({"location": str(stats.root), "entries": stats.entries,
                         "bytes": stats.size, "limit_bytes": stats.limit,
                         "partial_bytes": stats.partial})
            return
        typer.echo(f"location: {stats.root}")
        typer.echo(f"entries:  {stats.entries:,}")
        typer.echo(f"size:     {stats.size / 1e6:,.1f} MB of at most {stats.limit / 1e6:,.0f} MB")
        if stats.partial:
            typer.echo(f"partial:  {stats.partial / 1e6:,.1f} MB of interrupted transfers")


@cache_app.command("clear", cls=Command, epilog="\b\nExample:\n  synco cache clear")
@common
def cache_clear() -> None:
    """Empty the cache."""
    from .cache import ChunkCache

    ui = ui_for()
    with edge(ui):
        before = ChunkCache().clear()
        ui.info(f"removed {before.entries:,} entries ({(before.size + before.partial) / 1e6:,.1f} MB) "
                f"from {before.root}")


VERIFY_HELP = "Then check that the local database holds what was imported (as synco verify)."


# the local side's options, the same for download and pull
DB_URL = typer.Option(None, "--db-url", metavar="URL", help="Local database URL (default: "
                      "$SYNCO_DB_URL), e.g. mysql://root@127.0.0.1/shop_dev.")
PASSWORD_PROMPT = typer.Option(False, "--password-prompt", help="Ask for the local database's "
                               "password (keeps it out of ps and the history).")
ALLOW_REMOTE_TARGET = typer.Option(False, "--allow-remote-target", help="Replace a database on a "
                                   "host that is not this machine.")
FILES_DIR = typer.Option([], "--files-dir", metavar="NAME=PATH",
                         help="Local folder for file set NAME (repeatable).")
ONLY = typer.Option([], "--only", metavar="PART", help="Sync only 'db', 'files' or a file set name "
                    "(repeatable).")
OUTPUT = typer.Option(None, "--output", "-o", metavar="FILE", help="Write the database as a SQL "
                      "script instead of importing ('-': to stdout, once it is complete).")
YES = typer.Option(False, "--yes", "-y", help="Replace a non-empty database without asking.")
NO_CACHE = typer.Option(False, "--no-cache", help=NO_CACHE_HELP)
CACHE_SIZE = typer.Option(None, "--cache-size", metavar="SIZE", help=CACHE_SIZE_HELP)
VERIFY = typer.Option(False, "--verify", help=VERIFY_HELP)
NO_AFTER = typer.Option(False, "--no-after", help="Skip the steps after the import (the "
                        "framework's and synco.yaml's after_import).")
LOCAL_URL = typer.Option(None, "--local-url", metavar="URL", help="WordPress: the local site's URL "
                         "the server's is rewritten to (default: the local WP_HOME, else the local "
                         "database's before the import).")
RELOAD = typer.Option(False, "--reload", help="Import the database even when neither the server's "
                      "nor the local copy changed since the last pull (by default that imports "
                      "nothing: docs/verify.md).")


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


def _print_json(data: dict) -> None:
    """One JSON object on one line of stdout (the keys are documented in the README)."""
    typer.echo(json.dumps(data, ensure_ascii=False))


def _summary_json(summary, output, verb: str, verified: bool | None) -> dict:
    """The --json summary of a download or pull: stable keys, documented in the README."""
    return {"command": verb, "database": None if output is not None else summary.database or None,
            "output": None if output is None else str(output),
            "tables": summary.tables, "rows": summary.rows,
            "unchanged": summary.unchanged, "previous": summary.previous or None,
            "files_written": summary.files_written, "files_present": summary.files_present,
            "bytes_fetched": summary.bytes_fetched, "chunks_fetched": summary.chunks_fetched,
            "chunks_cached": summary.chunks_cached, "verified": verified}


def _report(summary, project, output, ui: UI, verb: str, verify_url=None,
            as_json: bool = False, after: Optional[After] = None) -> None:
    """What a download or pull did, then the check of --verify (given the local database's URL)
    and the framework's post-import steps; with ``as_json`` the summary as JSON on stdout."""
    if summary.tables:
        where = ("SQL script on stdout" if _to_stdout(output)
                 else f"SQL script {output}" if output is not None else f"database {summary.database}")
        ui.info(f"{where}: {summary.tables} tables, {summary.rows} rows")
    if summary.previous:
        ui.info(f"previous copy kept as {summary.previous}; 'synco restore' brings it back")
    if summary.files_written or summary.files_present:
        ui.info(f"files: {summary.files_written} written, {summary.files_present} already "
                f"up to date")
    ui.info(f"done, {_received(summary.bytes_fetched)} {verb} (compressed and encrypted)"
            + (f" ({summary.chunks_fetched} chunks fetched, {summary.chunks_cached} from the "
               f"cache)" if summary.chunks_cached else ""))
    verified, failed = None, []
    if summary.tables and output is None:
        if verify_url:
            _verify(verify_url, ui)
            verified = True
        failed = after_import(project, ui, after)
    if as_json:
        _print_json(_summary_json(summary, output, verb, verified))
    if failed:
        raise SyncoError(f"{len(failed)} step{'s' if len(failed) > 1 else ''} after the import "
                         f"failed: {'; '.join(failed)}",
                         hint="the import itself is complete; run the step by hand, or skip the "
                              "steps with --no-after")


def _received(count: int) -> str:
    """Bytes as the server's log line writes them (exact) while small, else in MB."""
    return f"{count:,} bytes" if count < 10_000_000 else f"{count / 1e6:,.1f} MB"


def _to_stdout(output: Optional[Path]) -> bool:
    return output is not None and str(output) == "-"


def _check_stdout(output: Optional[Path], as_json: bool) -> None:
    if as_json and _to_stdout(output):
        raise UsageError("--json and --output - both want stdout",
                         hint="write the script to a file (--output FILE), or leave out --json")


# characters a token never has that a copy and paste may bring along (quotes of a chat or a
# word processor); they are taken for spaces
QUOTES = "'\"`\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a"
TOKEN_HINT = ("pass the token printed by synco-source, '-' to read it from standard input, or set "
              "SYNCO_TOKEN")


def clean_token(text: str) -> str:
    """The token in pasted text: stray quotes and whitespace, the words 'synco download' of the
    line synco-source prints, and a doubled paste (the same token twice, with or without a space
    between) are tolerated. What remains is checked by ``format.Token.decode``."""
    for quote in QUOTES:
        text = text.replace(quote, " ")
    # "synco download" cannot be part of a token (no spaces in one): a doubled line pasted
    # without a break, "...TOKENsynco download TOKEN", comes apart here
    text = text.replace("synco download", " ")
    words = list(dict.fromkeys(w for w in text.split() if w not in ("synco", "download")))
    if not words:
        raise TokenError("it is empty", hint=TOKEN_HINT)
    if len(words) > 1:
        raise TokenError(f"{len(words)} different words were given where one token belongs")
    word = words[0]
    half = len(word) // 2
    if len(word) % 2 == 0 and word[:half] == word[half:]:
        return word[:half]
    return word


def _token(words: list[str], ui: UI, password_prompt: bool) -> str:
    """The token: the argument's words, standard input for '-', else $SYNCO_TOKEN. With
    --password-prompt and no terminal, the token is the first line of standard input and the
    password the second."""
    if words == ["-"]:
        if sys.stdin.isatty():
            text = ui.secret("token (not shown)")
        elif password_prompt:
            text = sys.stdin.readline()
        else:
            text = sys.stdin.read(1 << 16)
        if not text.strip():
            raise TokenError("standard input held no token", hint=TOKEN_HINT)
    elif words:
        text = " ".join(words)
    else:
        text = os.environ.get("SYNCO_TOKEN", "")
        if not text.strip():
            raise UsageError("no token given", hint=TOKEN_HINT)
    return clean_token(text)


DOWNLOAD_EXAMPLES = """\b
Examples:
  synco download TOKEN
  synco download - < token.txt            the token from standard input
  SYNCO_TOKEN=TOKEN synco download        the token from the environment
  synco download TOKEN --db-url mysql://root@127.0.0.1/shop_dev --files-dir uploads=./public/uploads
  synco download TOKEN --output - | gzip > shop.sql.gz
  synco download TOKEN --yes --json"""


@app.command(cls=Command, epilog=DOWNLOAD_EXAMPLES)
@common
def download(
    token: Optional[list[str]] = typer.Argument(None, metavar="TOKEN", show_default=False,
                                                help="The token printed by synco-source; '-' "
                                                "reads it from standard input (default: "
                                                "$SYNCO_TOKEN)."),
    db_url: Optional[str] = DB_URL,
    password_prompt: bool = PASSWORD_PROMPT,
    allow_remote_target: bool = ALLOW_REMOTE_TARGET,
    files_dir: list[str] = FILES_DIR,
    only: list[str] = ONLY,
    output: Optional[Path] = OUTPUT,
    yes: bool = YES,
    no_cache: bool = NO_CACHE,
    cache_size: Optional[str] = CACHE_SIZE,
    verify: bool = VERIFY,
    reload: bool = RELOAD,
    no_after: bool = NO_AFTER,
    local_url: Optional[str] = LOCAL_URL,
    as_json: bool = JSON,
) -> None:
    """Download a session published by synco-source and import it locally."""
    from .download import download as run_download

    ui = ui_for(assume_yes=yes)
    with edge(ui):
        _check_stdout(output, as_json)
        text = _token(token or [], ui, password_prompt)
        project, opts = _local_target(ui, db_url, password_prompt, allow_remote_target, files_dir,
                                      only, output, no_cache, cache_size)
        opts.token, opts.reload = text, reload
        after = After(run=not no_after, local_url=local_url)
        before_import(project, after)
        _report(run_download(opts, ui), project, output, ui, "downloaded",
                verify and opts.db_url, as_json, after)


PULL_EXAMPLES = """\b
Examples:
  synco pull ssh://deploy@shop.example.com/var/www/shop
  synco pull kubectl://shop-prod/deploy:shop/app --container php --context prod
  synco pull docker://shop_php_1/var/www/html
  synco pull --exec 'ssh shop.example.com sudo -u www-data' /var/www/shop
  synco pull production --yes --json       a remote named in synco.yaml"""


@app.command(cls=Command, epilog=PULL_EXAMPLES)
@common
def pull(
    remote: Optional[str] = typer.Argument(None, metavar="REMOTE", show_default=False,
                                           help="ssh://[user@]host[:port]/path, "
                                           "kubectl://NAMESPACE/POD/path, docker://CONTAINER/path, "
                                           "a remote named in synco.yaml (default: its only one), "
                                           "or the folder with --exec."),
    container: Optional[str] = typer.Option(None, "--container", "-c", metavar="NAME",
                                            help="kubectl: the pod's container."),
    context: Optional[str] = typer.Option(None, "--context", metavar="NAME",
                                          help="kubectl: the context to use."),
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
    no_cache: bool = NO_CACHE,
    cache_size: Optional[str] = CACHE_SIZE,
    verify: bool = VERIFY,
    reload: bool = RELOAD,
    no_after: bool = NO_AFTER,
    local_url: Optional[str] = LOCAL_URL,
    as_json: bool = JSON,
) -> None:
    """Run synco-source on a server over ssh, kubectl or docker and import here, in one command."""
    from .pull import PullOptions, pull as run_pull

    ui = ui_for(assume_yes=yes)
    with edge(ui):
        _check_stdout(output, as_json)
        project, download_opts = _local_target(ui, db_url, password_prompt, allow_remote_target,
                                               files_dir, only, output, no_cache, cache_size)
        download_opts.reload = reload
        opts = PullOptions(
            target=remote, container=container, context=context, exec_prefix=exec_prefix,
            source_binary=source_binary, all_data=all_data, root=Path.cwd(),
            download=download_opts)
        after = After(run=not no_after, local_url=local_url)
        before_import(project, after)
        _report(run_pull(opts, ui), project, output, ui, "pulled", verify and download_opts.db_url,
                as_json, after)


@app.command("verify", cls=Command, epilog="\b\nExamples:\n  synco verify\n"
             "  synco verify --db-url mysql://root@127.0.0.1/shop_dev")
@common
def verify_cmd(
    db_url: Optional[str] = typer.Option(None, "--db-url", metavar="URL", help="Local database "
                                         "URL (default: the project's, else $SYNCO_DB_URL)."),
    password_prompt: bool = typer.Option(False, "--password-prompt", help="Ask for the local "
                                         "database's password (keeps it out of ps and the history)."),
) -> None:
    """Say whether the local database still holds what the last download or pull imported."""
    ui = ui_for()
    with edge(ui):
        project = _local_project(db_url, [], need_db=True)
        _local_password(project, db_url, password_prompt, ui)
        if project.database is None:
            raise UsageError("no local database to verify",
                             hint="pass --db-url or set SYNCO_DB_URL")
        _verify(project.database, ui)


@app.command(cls=Command, epilog="\b\nExample:\n  synco remotes")
@common
def remotes() -> None:
    """List the remotes named in synco.yaml (for 'synco pull NAME')."""
    from .pull import describe_remotes

    ui = ui_for()
    with edge(ui):
        for line in describe_remotes(Path.cwd()):
            typer.echo(line)


def detect_json(project) -> dict:
    """``synco detect --json``: what ``describe`` says, as data (no password; keys documented
    in the README)."""
    from synco_frameworks.detect import _as_connected, folder_size

    database = None
    if project.database is not None:
        db = _as_connected(project.database)
        no_host = db.socket or db.engine == "sqlite"  # a socket, or a file (the name is its path)
        database = {"engine": db.engine, "name": db.database, "host": None if no_host else db.host,
                    "port": None if no_host else db.port, "socket": db.socket or None,
                    "user": db.user or None}
    sets = []
    for name, path in project.file_sets.items():
        files, size = folder_size(path) if path.is_dir() else (0, 0)
        sets.append({"name": name, "path": str(path), "exists": path.is_dir(), "files": files,
                     "bytes": size, "public": project.is_public(name)})
    return {"framework": project.framework, "context": project.context or None,
            "folder": str(project.root), "database": database, "base_url": project.base_url,
            "file_sets": sets, "rows_left_out": list(project.skip_table_data),
            "after_import": project.post_import_lines(),
            "after_import_runs": bool(project.post_import and project.post_import_runnable),
            "notes": list(project.notes)}


@app.command(cls=Command, epilog="\b\nExamples:\n  synco detect\n  synco detect --json\n"
             "  synco detect --db-url mysql://root@127.0.0.1/shop_dev --files-dir uploads=./uploads")
@common
def detect(
    db_url: Optional[str] = typer.Option(None, "--db-url", metavar="URL", help="Local database "
                                         "URL, overriding what is detected."),
    files_dir: list[str] = typer.Option([], "--files-dir", metavar="NAME=PATH",
                                        help="Local folder for file set NAME (repeatable)."),
    as_json: bool = JSON,
) -> None:
    """Show what synco finds in the project in this folder (no passwords)."""
    from synco_frameworks.detect import describe

    ui = ui_for()
    with edge(ui):
        project = _local_project(db_url, files_dir, need_db=True)
        if as_json:
            _print_json(detect_json(project))
            return
        for line in describe(project):
            typer.echo(line)


@app.command(cls=Command, epilog="\b\nExamples:\n"
             "  synco restore --db-url mysql://root@127.0.0.1/shop_dev\n"
             "  SYNCO_DB_URL=mysql://root@127.0.0.1/shop_dev synco restore --yes")
@common
def restore(
    db_url: Optional[str] = typer.Option(None, "--db-url", metavar="URL", help="Local database "
                                         "URL (default: $SYNCO_DB_URL)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
) -> None:
    """Put back the database that the last import replaced (the two swap places)."""
    ui = ui_for(assume_yes=yes)
    with edge(ui):
        url = _local_db(db_url, True)
        ui.confirm(f"swap database {url.database} with the one the last import replaced?",
                   "pass --yes to restore without asking")
        ui.info(engines.restore(url))


@app.command(cls=Command, epilog="\b\nExamples:\n  synco keygen\n"
             "  synco-source serve --recipient syncopk1...   on the server, with the key printed here")
@common
def keygen(
    new: bool = typer.Option(False, "--new", help="Replace the key pair with a new one (sessions "
                             "made for the old key can no longer be read)."),
) -> None:
    """Print this machine's public key, for 'synco-source serve --recipient KEY' (made once)."""
    from .keys import Identity, default_path

    ui = ui_for()
    with edge(ui):
        path = default_path()
        if path.exists() and not new:
            identity = Identity.load(path)
        else:
            identity = Identity.generate()
            identity.save(path)
            ui.info(f"new key pair; the private key is in {path}")
        typer.echo(identity.public_text)


@app.command(cls=Command, epilog="\b\nExamples:\n  synco version\n  synco --version")
@common
def version() -> None:
    """Print the version."""
    typer.echo(f"synco {__version__}")


def _usage_error(exc: ClickException, command_path: str) -> tuple[str, str]:
    """A usage error of the command line as synco words every error: one lowercase line, and a
    hint with the usage and where the help is (instead of typer's boxed panel)."""
    message = exc.format_message().strip()
    hint = ""
    close = sorted(getattr(exc, "possibilities", None) or [])  # an unknown option's near names
    if close:
        message = exc.message
        hint = f"did you mean {' or '.join(close)}? "
    message = message.strip().rstrip(".")
    message = message[:1].lower() + message[1:]
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        usage = ctx.get_usage().replace("Usage: ", "usage: ", 1)
        hint += f"{' '.join(usage.split())}; see '{ctx.command_path} --help'"
    else:  # click's parser gives no context for a missing value: the command from the line
        hint += f"see '{command_path} --help'"
    if hint.startswith("did you mean"):
        hint = hint.replace("? ", "? (", 1) + ")"
    return message, hint


def run(argv: Optional[list[str]] = None) -> None:
    """The console script. Errors of the command line itself (an unknown option, a missing
    value) are worded like every other error and exit with UsageError's code, 2."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="synco", standalone_mode=False)
    except ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # 'synco' alone: its help, on stderr
            typer.echo(exc.format_message(), err=True)
            sys.exit(UsageError.exit_code)
        words = sys.argv[1:] if argv is None else argv
        named = [w for w in words if w in getattr(command, "commands", {})][:1]
        message, hint = _usage_error(exc, " ".join(["synco", *named]))
        UI().error(message, hint)
        sys.exit(UsageError.exit_code)
    except typer.Abort:
        UI().error("stopped; nothing was changed")
        sys.exit(Aborted.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
