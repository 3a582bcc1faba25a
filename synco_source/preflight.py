"""Checks before the token: what would fail a session in its first minute, found in seconds.

``synco-source serve`` runs them before it prints the token (with ``--stdio``: before its first
frame, so the error is the remote side's last line for ``synco pull``). The database must answer
within ``CONNECT_WAIT`` seconds, let the URL's user in, hold the named database, and let that user
read every table whose rows will be dumped; every file set's folder must be a folder this user may
list. A failure is one ``DatabaseError`` or ``UsageError`` with a hint, the same words the dump
would use, and nothing has been published yet.

The database is opened through the engines' ``Dumper`` (the very connection and snapshot the dump
makes), on a thread: a server that accepts the connection and then says nothing would otherwise
hold the check for the driver's own, much longer, time limit.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from . import engines
from .dburl import DatabaseUrl
from .errors import DatabaseError, UsageError

CONNECT_WAIT = 5.0  # seconds the database has to answer and let us in


def check_database(url: DatabaseUrl, dumps_rows: Callable[[str], bool],
                   wait: float = CONNECT_WAIT) -> int:
    """Connect as the dump will, then read zero rows of every table ``dumps_rows`` names;
    returns how many tables were checked. Raises DatabaseError (what failed, with a hint)."""
    where = engines.resolve(url).redacted
    connected, done = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            with engines.dumper(url) as dumper:
                connected.set()
                outcome["tables"] = _check_tables(dumper, url, dumps_rows)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread as it is
            outcome["error"] = exc
        finally:
            connected.set()
            done.set()

    threading.Thread(target=work, name="preflight", daemon=True).start()
    if not connected.wait(wait):
        raise DatabaseError(f"cannot connect to {where}: no answer within {wait:.0f} s",
                            hint="check the host and port, that the database server is running, "
                                 "and that no firewall stands between it and this machine")
    while not done.wait(0.2):  # one cheap query per table: no time limit, but Ctrl-C works
        pass
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["tables"]  # type: ignore[return-value]


def _check_tables(dumper, url: DatabaseUrl, dumps_rows: Callable[[str], bool]) -> int:
    checked = 0
    for name in dumper.tables():
        if not dumps_rows(name):
            continue
        try:
            dumper.select(f"SELECT * FROM {_quoted(url.engine, name)} WHERE 1 = 0")
        except DatabaseError as exc:
            detail = str(exc).removeprefix(f"cannot query {dumper.url.redacted}: ")
            who = f"user {url.user!r}" if url.user else "the user"
            raise DatabaseError(f"{who} may not read table {name} of {url.redacted}: {detail}",
                                hint="grant that user SELECT on every table of the database, or "
                                     "use a user who has it") from None
        checked += 1
    return checked


def _quoted(engine: str, name: str) -> str:
    """A table name as the engine's ``tables()`` gives it, ready for a query: MySQL's are bare
    names, PostgreSQL's are already schema-qualified and quoted."""
    if engine == "mysql":
        return "`" + name.replace("`", "``") + "`"
    return name


def check_folders(file_sets: dict[str, Path]) -> None:
    """Every file set's folder exists, is a folder, and this user may list it."""
    for name, root in file_sets.items():
        hint = (f"check the path of file set {name} (--files {name}=PATH, synco.yaml or the "
                f"project's configuration)")
        if not root.exists():
            raise UsageError(f"file set {name}: folder {root} does not exist", hint=hint)
        if not root.is_dir():
            raise UsageError(f"file set {name}: {root} is not a folder", hint=hint)
        try:
            with os.scandir(root) as entries:
                next(entries, None)
        except OSError as exc:
            raise UsageError(f"file set {name}: cannot read folder {root}: "
                             f"{exc.strerror or exc}",
                             hint="run synco-source as a user who may read it, or leave the set "
                                  "out") from None
