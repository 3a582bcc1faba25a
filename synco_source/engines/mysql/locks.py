"""Other connections that could make the swap wait, and the named lock of one synco run per target.

MySQL has no "who holds a metadata lock" view by default (performance_schema and MariaDB's
metadata_lock_info plugin are usually off), so the check before a swap looks at what can hold
one: another connection running a statement in the target (or its previous copy), or sitting in
an open transaction there (information_schema.INNODB_TRX). A connection elsewhere that holds a
lock anyway is caught by the bounded wait (``lock_wait_timeout``), whose error names the
connections that have a transaction open.
"""

from __future__ import annotations

import time

import pymysql

from ...errors import DatabaseError
from .sql import failing, query

# Seconds a swap statement may wait for another connection's lock before the swap is rolled back.
LOCK_WAIT = 10
# Seconds to wait for the named lock: a killed run's connection may still be ending a statement.
RUN_LOCK_WAIT = LOCK_WAIT + 5
# Seconds before looking again at connections that seemed to have just begun a statement.
RECHECK = 0.2

HINT = ("commit or close that connection (the application, an IDE, a mysql prompt) and run again; "
        "synco does not kill other connections")


def _sessions(conn) -> list[tuple]:
    """(id, user, host, db, command, time, info, in_transaction) of every other client connection."""
    # INFO as bytes: another client's statement may hold bytes that are not UTF-8 (a binary
    # literal), and the driver would fail decoding them (leaving the connection unusable)
    rows = query(conn, "SELECT ID, USER, HOST, DB, COMMAND, TIME, CAST(LEFT(INFO, 200) AS BINARY) "
                       "FROM information_schema.PROCESSLIST "
                       "WHERE ID <> CONNECTION_ID() AND COMMAND NOT IN ('Daemon', 'Binlog Dump') "
                       "AND USER <> 'system user' ORDER BY ID")
    rows = [(*r[:6], (r[6] or b"").decode("utf-8", "replace")) for r in rows]
    try:
        open_trx = {r[0] for r in query(conn, "SELECT trx_mysql_thread_id FROM information_schema.INNODB_TRX")}
    except pymysql.err.Error:  # no PROCESS privilege: transactions unknown
        open_trx = set()
    return [(*row, row[0] in open_trx) for row in rows]


def describe(row: tuple) -> str:
    cid, user, host, db, command, seconds, info, in_trx = row
    where = f"in database {db!r}" if db else "no default database"
    if command == "Query":
        what = f"running {' '.join((info or '').split())[:60]!r} for {seconds} s"
    elif in_trx:
        what = f"idle for {seconds} s inside an open transaction"
    else:
        what = f"{command.lower()} for {seconds} s"
    host = host.rsplit(':', 1)[0] if host.count(':') == 1 or host.startswith('[') else host
    return f"connection {cid} ({user}@{host}, {where}, {what})"


def busy(conn, databases: list[str]) -> list[tuple]:
    """Connections that are using one of ``databases``: a statement running there, or an open
    transaction there. An idle connection without a transaction holds no lock and does not count."""
    return [r for r in _sessions(conn) if r[3] in databases and (r[4] != "Sleep" or r[7])]


def refuse_if_busy(conn, databases: list[str], target: str) -> None:
    with failing(f"cannot inspect the connections to {target!r}"):
        rows = busy(conn, databases)
        if rows and all(r[4] == "Query" and not r[5] for r in rows):
            # a statement that has just answered can still be listed as running for a moment
            # (as the same client's own closed connection, a moment ago): look once more
            time.sleep(RECHECK)
            rows = busy(conn, databases)
    if rows:
        more = f" and {len(rows) - 1} more" if len(rows) > 1 else ""
        raise DatabaseError(f"database {target!r} is in use by {describe(rows[0])}{more}; "
                            "nothing was changed", hint=HINT)


def timed_out(conn, databases: list[str], target: str, what: str) -> DatabaseError:
    """The error for a lock wait that ran out: the likely holders, those in the target first."""
    try:
        rows = _sessions(conn)
    except pymysql.err.Error:
        rows = []
    # idle inside a transaction is what holds a lock for long (an IDE, a forgotten prompt)
    suspects = ([r for r in rows if r[3] in databases and (r[4] != "Sleep" or r[7])]
                or sorted((r for r in rows if r[7]), key=lambda r: (r[4] != "Sleep", -r[5]))
                or [r for r in rows if r[4] == "Query"])
    who = " or ".join(describe(r) for r in suspects[:3]) or "another connection"
    more = f" (or one of {len(suspects) - 3} more)" if len(suspects) > 3 else ""
    return DatabaseError(f"{what}: waited {LOCK_WAIT} s for a lock on {target!r} held by "
                         f"{who}{more}", hint=HINT)


def run_lock_name(target: str) -> str:
    return f"synco:{target}"


def take_run_lock(conn, target: str) -> None:
    """One synco run per target at a time: a named lock held by the loader's connection (the server
    releases it when the connection ends, also when the client was killed). Whoever holds it may
    treat leftovers of earlier runs as abandoned."""
    name = run_lock_name(target)
    with failing(f"cannot take the lock of {target!r}"):
        got = query(conn, "SELECT GET_LOCK(%s, %s)", (name, RUN_LOCK_WAIT))[0][0]
        holder = query(conn, "SELECT IS_USED_LOCK(%s)", (name,))[0][0] if got != 1 else None
    if got != 1:
        raise DatabaseError(f"another synco run (connection {holder}) is importing into or restoring "
                            f"{target!r}; nothing was changed",
                            hint="wait for it to finish, or stop it, and run again")
