"""synco-source: the command line of the server side (argparse; thin over session/produce).

Data goes to stdout (exactly one ``synco download <token>`` line from ``serve``); every message goes
to stderr as ``synco-source: ...``, errors as ``synco-source: error: ...`` plus a hint line.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from pathlib import Path

from . import __version__
from .errors import EXIT_BUG, EXIT_INTERRUPTED, SyncoError, UsageError

PROG = "synco-source"
QUIET = False  # --quiet: only errors (and their hints) reach stderr


def say(message: str) -> None:
    if QUIET and not message.startswith(("error:", "hint:")):
        return
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


IGNORED_SIGNALS_VAR = "SYNCO_IGNORED_SIGNALS"


def adopt_ignored_signals() -> None:
    """Ignore the signals that were ignored when this program was started (nohup, a script's
    background job). Python keeps an inherited SIG_IGN by itself, but in the release binary the
    PyInstaller stage between the launcher and Python installs handlers for every signal; the
    launcher names them in SYNCO_IGNORED_SIGNALS (like HUP,INT). Done first thing in main(), so
    a hang-up while the framework is detected is ignored too; the variable goes no further."""
    for name in filter(None, os.environ.pop(IGNORED_SIGNALS_VAR, "").split(",")):
        try:
            signal.signal(signal.Signals["SIG" + name.strip()], signal.SIG_IGN)
        except (KeyError, ValueError, OSError):
            continue


class StopSignals:
    """SIGINT, SIGTERM and SIGHUP set an event the main thread waits on. The handler never raises:
    an exception raised from a signal handler can land anywhere (even in a weakref callback, where
    it is swallowed), and a terminal's Ctrl-C can arrive twice through the one-file binary's
    launchers; neither may stop the cleanup."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.name = ""
        for signum in STOP_SIGNALS:
            # ignored by whoever started us (see adopt_ignored_signals): stays ignored
            if signal.getsignal(signum) != signal.SIG_IGN:
                signal.signal(signum, self._handle)

    def _handle(self, signum, frame) -> None:
        self.name = self.name or signal.Signals(signum).name
        self.event.set()

    def wait(self, timeout: float) -> bool:
        return self.event.wait(max(0.0, timeout))


def parse_duration(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise UsageError(f"bad duration {text!r}", hint="write it like 90s, 30m, 3h or 1d")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"bad --listen address {text!r}", hint="write it like 0.0.0.0:8765")
    return host.strip("[]") or "0.0.0.0", int(port)


class Parser(argparse.ArgumentParser):
    """argparse with synco's errors: a bad command line is one ``synco-source: error: ...`` line
    and a hint naming the help to read (exit 2), not a usage dump."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(**kwargs)

    def parse_args(self, args=None, namespace=None):
        known, extra = self.parse_known_args(args, namespace)
        if extra:  # said here, where the command is known, so the hint names its help
            command = getattr(known, "command", None)
            raise UsageError(f"unrecognized arguments: {' '.join(extra)}",
                             hint=f"see '{self.prog}{' ' + command if command else ''} --help'")
        return known

    def error(self, message: str):
        if "required: COMMAND" in message:
            raise UsageError("no command given", hint=f"{PROG} serve (publish), {PROG} detect "
                             f"(show what would be published) or {PROG} version; "
                             f"{PROG} --help for more")
        raise UsageError(message, hint=f"see '{self.prog} --help'")


def _common(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """--debug and --quiet, accepted before and after the command (a command's copy sets them
    only when given, so it never undoes the one before the command)."""
    default = {} if top else {"default": argparse.SUPPRESS}
    parser.add_argument("--debug", action="store_true", help="show tracebacks", **default)
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors (the "
                        "token line of serve still goes to stdout)", **default)


def _files_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--files", action="append", default=[], metavar="NAME=PATH",
                        help="a folder to publish as file set NAME (repeatable)")
    # the client's older name for the same thing, kept working here too
    parser.add_argument("--files-dir", dest="files", action="append", help=argparse.SUPPRESS)


SERVE_EXAMPLES = f"""\
examples:
  in a Neos/Flow or Symfony application's folder (settings read from the project):
    {PROG} serve
  anywhere, saying what to publish (the password stays out of ps in the environment):
    SYNCO_DB_URL='mysql://app:secret@127.0.0.1:3306/shop' \\
      {PROG} serve --files uploads=public/uploads --listen 0.0.0.0:8765
  only behind an ssh tunnel (ssh -L 8765:127.0.0.1:8765 server), stop after one download:
    {PROG} serve --listen 127.0.0.1:8765 --once
  into a folder the application's web server already serves:
    {PROG} serve --publish-dir /var/www/shop/public --base-url https://shop.example.com/
  only the file sets, for the key of one laptop (from 'synco keygen' there):
    {PROG} serve --no-db --files media=/srv/media --recipient syncopk1...

Before the token, it connects to the database, checks that the user may read every table
whose rows it dumps and that every file set's folder can be read; any failure is one error
line. --once: a download is complete when one client (an IP address) has fetched in full
every object of the ready session (the wrapped key, each set's manifest and every chunk
they name), or has sent its final request (the meta with ?done); one line per download
(client, sets, objects, bytes) goes to stderr either way.
"""

DETECT_EXAMPLES = f"""\
examples:
  {PROG} detect
  {PROG} detect --db-url postgresql://app@127.0.0.1/shop --files media=var/media
"""

TOP_EXAMPLES = f"""\
examples:
  {PROG} serve                 publish this application, print 'synco download <token>'
  {PROG} serve --help          every option of serve, with examples
  {PROG} detect                what serve would publish from this folder
  {PROG} --version

--debug and --quiet go before or after the command.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description="Publish this application's database "
                    "and files, encrypted, for 'synco download'.", epilog=TOP_EXAMPLES)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="dump, encrypt and publish; print the download command",
                           description="Dump the database and index the file sets, encrypted "
                           "with a fresh key, publish them\nand print 'synco download <token>' "
                           "(the only line on stdout).", epilog=SERVE_EXAMPLES)
    serve.add_argument("--db-url", help="database URL (default: $SYNCO_DB_URL), "
                       "e.g. mysql://user:password@127.0.0.1:3306/name")
    serve.add_argument("--no-db", action="store_true", help="publish file sets only")
    _files_option(serve)
    serve.add_argument("--listen", default=None, metavar="HOST:PORT",
                       help="serve with the built-in HTTP server on this address (port 0 picks one). "
                       "The default: into the framework's web folder when its URL is known, "
                       "else a server on 0.0.0.0:8765")
    serve.add_argument("--url", help="base URL the laptop uses to reach --listen "
                       "(default: http://<this host name>:<port>/)")
    serve.add_argument("--publish-dir", type=Path, metavar="DIR",
                       help="write into this folder of a web server instead of listening")
    serve.add_argument("--base-url", help="public URL of --publish-dir; without --publish-dir: "
                       "publish into the framework's web folder, served at this URL")
    serve.add_argument("--publish-s3", metavar="S3URL", help="upload into this bucket and prefix "
                       "(s3://BUCKET/PREFIX/) instead of listening; the token carries presigned "
                       "links, so the laptop needs no credentials (docs/s3.md); credentials from "
                       "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE")
    serve.add_argument("--s3-endpoint", metavar="URL", help="S3-compatible endpoint for "
                       "--publish-s3, e.g. https://s3.example.net (default: $AWS_ENDPOINT_URL, "
                       "else AWS); path-style addressing")
    serve.add_argument("--sse-c", action="store_true", help="with --publish-s3: have the store "
                       "encrypt the objects at rest with a key derived from the session key "
                       "(SSE-C)")
    serve.add_argument("--stdio", action="store_true", help="serve on stdin/stdout (the pipe "
                       "protocol of 'synco pull', e.g. over ssh) instead of listening; ends at "
                       "the end of stdin")
    serve.add_argument("--recipient", metavar="KEY", help="wrap the session key to this public "
                       "key (from 'synco keygen'): the token then holds no key and is useless "
                       "without the matching private key")
    serve.add_argument("--ttl", default="3h", help="remove everything after this long (default 3h)")
    serve.add_argument("--once", action="store_true", help="stop (and remove everything, as on "
                       "Ctrl-C) after the first complete download (see below); with the "
                       "built-in listener or --stdio")
    serve.add_argument("--keep", action="store_true", help="do not remove what was published on exit "
                       "(a later run here removes it once --ttl has passed)")
    serve.add_argument("--all", action="store_true", help="publish everything: no smart exclusions "
                       "(e.g. Neos event log and thumbnail rows)")
    serve.add_argument("--no-presets", action="store_true", help="no framework privacy presets "
                       "(synco.yaml's tables: and columns: still apply; docs/privacy.md)")
    _common(serve)
    serve.set_defaults(func=cmd_serve)
    detect = sub.add_parser("detect", help="show what would be published from this folder "
                            "(no passwords)", description="Show the database and file sets "
                            "'serve' would publish from this folder,\nand where the settings "
                            "came from (no passwords).", epilog=DETECT_EXAMPLES)
    detect.add_argument("--db-url", help="database URL, overriding what is detected")
    detect.add_argument("--no-db", action="store_true", help="file sets only")
    _files_option(detect)
    detect.add_argument("--all", action="store_true", help="no smart exclusions")
    detect.add_argument("--no-presets", action="store_true", help="no framework privacy presets")
    _common(detect)
    detect.set_defaults(func=cmd_detect)
    cleanup = sub.add_parser("cleanup", help="remove sessions of killed runs from a bucket",
                             description="Remove the sessions under --publish-s3 whose time limit "
                             "has passed (or whose process on\nthis host is gone), with their "
                             "unfinished uploads; 'serve --publish-s3' does the\nsame before it "
                             "publishes (docs/s3.md).", epilog=f"example:\n  {PROG} cleanup "
                             "--publish-s3 s3://acme-transfer/synco/\n")
    cleanup.add_argument("--publish-s3", metavar="S3URL", required=True,
                         help="the bucket and prefix (s3://BUCKET/PREFIX/)")
    cleanup.add_argument("--s3-endpoint", metavar="URL", help="S3-compatible endpoint "
                         "(default: $AWS_ENDPOINT_URL, else AWS)")
    _common(cleanup)
    cleanup.set_defaults(func=cmd_cleanup)
    version = sub.add_parser("version", help="print the version", description="Print the "
                             f"version (the same as {PROG} --version).",
                             epilog=f"example:\n  {PROG} version\n")
    _common(version)
    version.set_defaults(func=lambda args: print(f"{PROG} {__version__}") or 0)
    return parser


def ask_base_url(folder: Path) -> str:
    """The public URL of a --publish-dir that the configuration does not give: asked for on a
    terminal, else an error saying to pass --base-url."""
    hint = ("pass --base-url (the application's base URL is not configured, or the folder is "
            "outside its web root)")
    if not sys.stdin.isatty():
        raise UsageError(f"--publish-dir needs --base-url here: no public URL known for {folder}",
                         hint=hint)
    print(f"{PROG}: public URL of {folder}: ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip()
    if not re.match(r"^https?://[^/\s]+", answer):
        raise UsageError(f"{answer!r} is not an http(s) URL", hint=hint)
    return answer if answer.endswith("/") else answer + "/"


def find_project(args: argparse.Namespace):
    """The application in this folder: detected, with the command line's options winning."""
    from synco_frameworks import detect

    project = detect.resolve(Path.cwd(), side="source", db_url=args.db_url, file_specs=args.files,
                             need_db=not args.no_db, all_data=args.all)
    if not args.no_db:
        detect.require_database(project)
    return project


def cmd_cleanup(args: argparse.Namespace) -> int:
    """Sweep a bucket prefix of the sessions of dead runs (what serve --publish-s3 does first)."""
    from .s3 import Target

    target = Target(args.publish_s3, endpoint=args.s3_endpoint)
    target.check(say)
    removed = target.sweep(say)
    say(f"{removed} session{'s' if removed != 1 else ''} of earlier runs removed from {target.url}")
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    from synco_frameworks.detect import describe

    project = find_project(args)
    for line in describe(project):
        print(line)
    for line in privacy_lines(project, privacy_rules(project, args)):
        print(line)
    return 0


def with_row_filters(rules, project):
    """The framework's smart exclusions of rows (WordPress's transients) as table rules after
    synco.yaml's, which win for the same table (the first rule that matches applies)."""
    if not getattr(project, "row_filters", None):
        return rules
    from synco_source import anonymize

    rules = rules if rules is not None else anonymize.Rules()
    rules.tables = list(rules.tables) + [
        anonymize.TableRule(pattern, where=cond, origin=f"{project.framework} smart exclusion",
                            optional=True, needs=tuple(needs))
        for pattern, cond, *needs in project.row_filters]
    return rules


def privacy_rules(project, args: argparse.Namespace):
    """synco.yaml's tables:/columns: rules over the framework's presets (docs/privacy.md)."""
    from synco_frameworks import detect

    return with_row_filters(detect.privacy(project, presets=not args.no_presets), project)


def privacy_lines(project, rules) -> list[str]:
    """detect's privacy lines: the rules, and with a database where each one applies."""
    from . import anonymize, engines
    from .errors import DatabaseError
    from .produce import bare_name

    if not rules.active():
        return []
    if project.database is None:
        return anonymize.describe(rules, None, bare_name)
    skip = project.skips_table
    try:
        with engines.dumper(project.database) as dumper:
            resolved = anonymize.listing(rules, dumper, project.database.engine, project.database.database,
                                         lambda t: skip(t) or skip(bare_name(t)))
    except DatabaseError as exc:  # the rules as written, and why not where they apply
        return anonymize.describe(rules, None, bare_name) + [f"privacy rules not checked: {exc}"]
    return anonymize.describe(rules, resolved, bare_name)


DEFAULT_LISTEN = "0.0.0.0:8765"


def web_folder(project, base_url: str | None) -> tuple[Path | None, str | None]:
    """Where serve publishes when no target was named: the framework's web folder when its URL
    is known (``base_url`` from --base-url, else the project's), as a --publish-dir; else
    (None, None): the built-in listener. --base-url without a web folder is an error."""
    root = project.web_root
    if root is None or not root.is_dir():
        if base_url:
            raise UsageError("--base-url needs --publish-dir: no web folder is known for this "
                             "project", hint="give --publish-dir DIR (served at --base-url), or "
                             "web_root: in synco.yaml")
        return None, None
    url = base_url or project.public_url(root)
    if not url:
        return None, None
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    if not base_url and (host == "localhost" or host.endswith(".localhost")):
        # Symfony's DEFAULT_URI and Laravel's APP_URL ship as http://localhost
        say(f"the web folder's URL {url} names the server itself, not a URL the laptop can reach: "
            f"serving on a port instead (--base-url URL publishes into the web folder)")
        return None, None
    if not os.access(root, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write into the web folder {root}", hint="run as a user who may "
                         "write there, or serve on a port with --listen HOST:PORT")
    say(f"publishing into the web folder {root}, served at {url} (--listen HOST:PORT opens a port "
        f"instead)")
    return root, url


def cmd_serve(args: argparse.Namespace) -> int:
    from .http import SessionServer
    from .produce import Plan
    from .session import Session

    ttl = parse_duration(args.ttl)
    host, port = parse_listen(args.listen or DEFAULT_LISTEN)
    recipient = None
    if args.recipient:
        from .format import parse_public_key

        recipient = parse_public_key(args.recipient)
    if args.publish_dir and not args.publish_dir.is_dir():
        raise UsageError(f"--publish-dir {args.publish_dir} is not a folder")
    if args.base_url and not re.match(r"^https?://[^/\s]+", args.base_url):
        raise UsageError(f"--base-url {args.base_url!r} is not an http(s) URL")
    s3_target = _s3_target(args)
    project = find_project(args)
    if project.database is None and not project.file_sets:
        raise UsageError("nothing to publish", hint="give a database URL or --files NAME=PATH")
    for note in project.notes:
        say(note)
    if not (args.publish_dir or args.stdio or s3_target or args.listen or args.once):
        args.publish_dir, args.base_url = web_folder(project, args.base_url)
    if args.base_url and not args.publish_dir:
        raise UsageError("--base-url is the URL of --publish-dir (or of the framework's web folder)",
                         hint="give --publish-dir DIR with it, or leave it out")
    if args.stdio:
        if args.publish_dir:
            raise UsageError("--stdio and --publish-dir exclude each other")
        if os.isatty(1):
            raise UsageError("--stdio speaks a binary protocol on stdout, not to a terminal",
                             hint="it is what 'synco pull' runs; to serve by hand, leave it out")
    if args.once and args.publish_dir:
        raise UsageError("--once needs the built-in listener (or --stdio): with --publish-dir "
                         "the web server answers the downloads", hint="leave out --once and "
                         "stop synco-source with Ctrl-C after the download, or use --ttl")
    privacy = privacy_rules(project, args)
    check_before_token(project, privacy)
    if s3_target is not None:
        s3_target.check(say)  # endpoint, bucket, credentials, clock, region: before the token
    server = private = pipe = None
    stop = StopSignals()
    downloads = None
    if not args.publish_dir and s3_target is None:
        from .downloads import Downloads

        downloads = Downloads(say, on_complete=_once(stop) if args.once else None)
    if args.stdio:
        from . import pipe as pipes

        # from here on, stdin and stdout carry only frames
        channel = pipes.take_stdio()
        base_url = "http://stdio.invalid/"  # the session has no URL: the pipe is its address
        private = parent = Path(tempfile.mkdtemp(prefix="synco-source-"))
    elif args.publish_dir:
        base_url = (args.base_url or project.public_url(args.publish_dir)
                    or ask_base_url(args.publish_dir))
        parent = args.publish_dir
    elif s3_target is not None:
        parent = base_url = None
    else:
        try:
            server = SessionServer((host, port), Path(), "")
            server.downloads = downloads
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}",
                             hint="choose another port with --listen HOST:PORT") from None
        port = server.server_address[1]
        if host in ("0.0.0.0", "::", ""):
            say(f"listening on every network interface (port {port}, plain HTTP): the data is "
                f"sealed, but anyone on the way sees URLs and sizes; --listen 127.0.0.1:{port} "
                f"behind an ssh tunnel, or --publish-dir behind HTTPS, keeps them private")
        public = host if host not in ("0.0.0.0", "::", "") else socket.gethostname()
        base_url = args.url or f"http://{public}:{port}/"
        private = parent = Path(tempfile.mkdtemp(prefix="synco-source-"))
    from .session import sweep

    sweep(args.publish_dir, say)  # sessions of earlier runs that were killed or have expired
    if s3_target is not None:
        s3_target.sweep(say)
    session = None
    try:
        if s3_target is not None:
            session = s3_target.session(ttl, recipient, say)
            say(f"publishing into {session.folder} (presigned links valid "
                f"{(session.expires - session.created) / 3600:g} h)")
        else:
            session = Session(parent, base_url, ttl, recipient=recipient)
        session.publish_meta("created")
        if server is not None:
            server.folder, server.session_hex = session.folder, session.id_hex
            server.start()
            say(f"serving on port {server.server_address[1]}; the token points at {session.token.url}")
        if args.stdio:
            pipe = _start_pipe(pipes, channel, session, stop, downloads)
        else:
            print(token_line(session.token.encode(), sys.stdout), flush=True)
        plan = Plan(database=project.database, file_sets=project.file_sets,
                    skip_table_data=project.skips_table, file_selectors=project.file_selectors,
                    privacy=privacy)
        code = _run(session, plan, stop, debug=getattr(args, "debug", False), downloads=downloads)
        if pipe is not None and pipe.error:
            say(f"error: {pipe.error}")
            return UsageError.exit_code
        return code
    finally:
        if session is not None:
            session.closed = True
        if pipe is not None:
            pipe.close()
        if server is not None:
            server.shutdown()
            server.server_close()
        if downloads is not None:
            downloads.close()
        if session is not None and not args.keep:
            if session.remove():
                say("removed everything published")
            else:
                left = session.leftovers()
                say(f"error: could not remove everything published: {len(left)} left in "
                    f"{session.folder} ({', '.join(left[:3])}{', ...' if len(left) > 3 else ''})")
                say("hint: delete that folder by hand; it is removed by the next synco-source run "
                    "here once its time limit has passed")
        elif session is not None:
            session.mark_kept()
            say(f"kept {session.folder}")
        if private is not None and not args.keep:
            shutil.rmtree(private, ignore_errors=True)


def _s3_target(args: argparse.Namespace):
    """The bucket of --publish-s3 with its credentials (read from the environment and the AWS
    files, never from the command line), or None; the options it excludes are refused here."""
    if not args.publish_s3:
        if args.s3_endpoint or args.sse_c:
            raise UsageError(f"{'--s3-endpoint' if args.s3_endpoint else '--sse-c'} needs "
                             f"--publish-s3", hint="give --publish-s3 s3://BUCKET/PREFIX/")
        return None
    for other, given in (("--publish-dir", args.publish_dir), ("--stdio", args.stdio),
                         ("--base-url", args.base_url), ("--url", args.url),
                         ("--once", args.once)):
        if given:
            raise UsageError(f"--publish-s3 and {other} exclude each other",
                             hint="--once needs the built-in listener" if other == "--once"
                             else "the bucket is where the laptop downloads from")
    from .s3 import Target, check_ttl

    check_ttl(parse_duration(args.ttl))
    return Target(args.publish_s3, endpoint=args.s3_endpoint, sse_c=args.sse_c)


def check_before_token(project, privacy=None) -> None:
    """What would fail the session in its first minute, found before the token is printed
    (preflight.py): every file set's folder, the database and the right to read its tables;
    the privacy rules (a rule naming nothing, a fake that does not fit, an invalid WHERE, a
    missing secret, strict mode's refusal)."""
    from . import preflight
    from .produce import bare_name

    preflight.check_folders(project.file_sets)
    if project.database is not None:
        skip = project.skips_table
        count = preflight.check_database(project.database,
                                         lambda t: not (skip(t) or skip(bare_name(t))))
        say(f"database {project.database.database}: connected; the user may read the {count} "
            f"tables whose rows are dumped")
        if privacy is not None and privacy.active():
            from . import anonymize, engines

            with engines.dumper(project.database) as dumper:
                anonymize.checked(privacy, dumper, project.database.engine, project.database.database,
                                  lambda t: skip(t) or skip(bare_name(t)))


def token_line(token: str, stream) -> str:
    """``synco download <token>``: bold green on a terminal (unless NO_COLOR is set), so it
    stands out among the messages; exactly that plain line anywhere else."""
    line = f"synco download {token}"
    if stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb":
        return f"\033[1;32m{line}\033[0m"
    return line


ONCE = "--once"
ONCE_GRACE = 1.0  # seconds between the last byte of the first complete download and the stop


def _once(stop: StopSignals):
    """on_complete of --once: stop as a signal would, a moment after the last answer went out
    (so it is not cut off by the listener's shutdown)."""
    def complete(client: str) -> None:
        def fire() -> None:
            stop.name = stop.name or ONCE
            stop.event.set()
        threading.Timer(ONCE_GRACE, fire).start()
    return complete


def _start_pipe(pipes, channel, session, stop: StopSignals, downloads=None):
    """Serve the session on stdin/stdout; the end of stdin (or a protocol error) stops the
    program as a stop signal would. The hello frame carries the session id, and the session key
    only where there is no recipient to wrap it to."""
    hello = {"session": session.id_hex, "synco": __version__}
    if getattr(session, "recipient", None) is None:
        hello["key"] = session.key.hex()

    def ended(reason: str, error: str | None) -> None:
        server.error = error
        stop.name = stop.name or reason
        stop.event.set()

    server = pipes.PipeServer(*channel, session.folder, hello, ended)
    server.error = None
    if downloads is not None:
        peer = pipe_peer()
        server.on_served = lambda path, start, end, size: downloads.served(peer, path, start,
                                                                           end, size)
    server.start()
    say("serving on stdin/stdout")
    return server


def pipe_peer() -> str:
    """Who is at the other end of --stdio, for the download lines: the ssh client's address when
    ssh started us, else just the pipe."""
    client = os.environ.get("SSH_CLIENT", "").split()
    return f"{client[0]} (over ssh)" if client else "the pipe"


def _stopped(stop: StopSignals) -> int:
    """Ctrl-C exits 130 as shells expect; SIGTERM and SIGHUP are how a service manager or a closed
    terminal ends a server normally, so they exit 0; so does --once after its download."""
    if stop.name == ONCE:
        say("one download complete; stopping (--once)")
        return 0
    say(f"stopped by {stop.name}")
    return EXIT_INTERRUPTED if stop.name == "SIGINT" else 0


FAILED_GRACE = 60.0  # seconds a failed session stays up, so the laptop can read why


def _run(session, plan, stop: StopSignals, debug: bool = False, downloads=None) -> int:
    """Produce the session on a worker thread, then serve until the time limit (a failed session
    only a minute, so the client can see why); a stop signal ends either at once. Any exception
    in the producer fails the session with its message: a synco error as itself, anything else as
    "unexpected <type>: <message>" (a bug, exit 70), never a vanished session that the laptop
    would take for an expired token."""
    from .produce import produce

    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            sets = produce(session, plan, say)
            if downloads is not None:
                downloads.expect(session.required_objects(sets))
        except Exception as exc:  # noqa: BLE001 - every failure is published as what it is
            bug = not isinstance(exc, SyncoError)
            message = f"unexpected {type(exc).__name__}: {exc}" if bug else str(exc)
            if session.closed:
                return
            outcome["failed"] = exc
            outcome["code"] = EXIT_BUG if bug else exc.exit_code
            try:
                session.publish_meta("failed", message=message)
            except SyncoError as meta_exc:
                say(f"could not publish the failure: {meta_exc}")
            if bug and debug:
                traceback.print_exception(exc)
            say(f"error: {message}")
            if bug:
                say("hint: run again with --debug and report the traceback")
            elif exc.hint:
                say(f"hint: {exc.hint}")

    worker = threading.Thread(target=work, name="produce", daemon=True)
    worker.start()
    while worker.is_alive():
        if stop.wait(0.2):
            return _stopped(stop)
    failed = outcome.get("failed")
    deadline = session.expires if failed is None else min(session.expires,
                                                          time.time() + FAILED_GRACE)
    if failed is None:
        say(f"waiting for downloads; stop with Ctrl-C (time limit in "
            f"{(deadline - time.time()) / 60:.0f} min)")
    if stop.wait(deadline - time.time()):
        code = _stopped(stop)
        return outcome["code"] if failed is not None else code
    if failed is not None:
        return outcome["code"]
    say("time limit reached")
    return 0


def main(argv: list[str] | None = None) -> int:
    global QUIET
    adopt_ignored_signals()
    args = argparse.Namespace(debug=False, quiet=False)
    QUIET = False
    try:
        args = build_parser().parse_args(argv)
        QUIET = args.quiet
        return args.func(args)
    except SyncoError as exc:
        if args.debug:
            traceback.print_exc()
        say(f"error: {exc}")
        if exc.hint:
            say(f"hint: {exc.hint}")
        return exc.exit_code
    except KeyboardInterrupt:
        say("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: say so, with the traceback on --debug
        if args.debug:
            traceback.print_exc()
        say(f"error: unexpected {type(exc).__name__}: {exc}")
        say("hint: run again with --debug and report the traceback")
        return EXIT_BUG


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    run()
