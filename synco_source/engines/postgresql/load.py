"""The load side: fill ``<db>__synco_new``, then swap it in with two ALTER DATABASE … RENAME in one
transaction, keeping the replaced database as ``<db>__synco_prev``.

Sessions connected to the target database are never killed: the swap refuses to run while there
are any, naming them, so nothing changes. The renames commit together or not at all, so a kill at
any instant leaves the old database or the new one with the old one kept; what a killed run can
leave is its shadow database, which the next run (holding the target's run lock, an advisory
lock) drops and says so.
"""

from __future__ import annotations

import time

import psycopg

from ...dburl import DatabaseUrl
from ...errors import DatabaseError
from ..common import PREV, SHADOW, fault_point, no_previous_copy, no_sigint
from . import post
from .lanes import LANES, Lanes
from .sql import (check_name, connect, connect_maintenance, copy_from, error_text, failing, qi, ql, query,
                  set_encoding)

# synchronous_commit off: each chunk's COPY commits without waiting for its WAL flush. Safe here:
# nothing reads the shadow database before the swap, and the swap's own (synchronous) commit
# flushes all WAL before it. maintenance_work_mem speeds the index builds after the data.
LOAD_SETTINGS = ("SET check_function_bodies = false", "SET client_min_messages = warning",
                 "SET synchronous_commit = off", "SET maintenance_work_mem = '256MB'")


def exists(conn, name: str) -> bool:
    return bool(query(conn, "SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (name,)))


# Seconds the swap's renames may wait for a lock before they give up (nothing changes then).
LOCK_WAIT = 10
RUN_LOCK_WAIT = 3.0


def _session_text(pid, user, addr, app, state) -> str:
    where = addr or "local socket"
    return f"pid {pid}: {user}@{where}, {app or 'unnamed application'}, {state or 'connected'}"


def refuse_if_in_use(conn, name: str, grace: float = 3.0) -> None:
    """Fail when other sessions are connected to database ``name`` (they are not disconnected),
    naming them (pid, user, client address, application, state). A session that was just closed
    (such as our own look at the target a moment ago) stays in pg_stat_activity for a little
    while, so only sessions still there after ``grace`` count."""
    deadline = time.monotonic() + grace
    while True:
        rows = query(conn, "SELECT pid, usename, host(client_addr), application_name, state "
                           "FROM pg_catalog.pg_stat_activity WHERE datname = %s "
                           "AND pid <> pg_catalog.pg_backend_pid() ORDER BY backend_start", (name,))
        if not rows or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    if rows:
        named = "; ".join(_session_text(*r) for r in rows[:3]) + ("; …" if len(rows) > 3 else "")
        raise DatabaseError(f"database {name!r} is in use by {len(rows)} other session(s) ({named}); "
                            "synco does not disconnect them; nothing was changed",
                            hint="stop the application and close other connections (psql, IDE) to it, "
                                 "then run again")


def take_run_lock(conn, target: str) -> None:
    """One synco run per target: a session advisory lock on the maintenance connection (gone with
    the connection, also when the client was killed). Its holder may drop an earlier run's shadow."""
    deadline = time.monotonic() + RUN_LOCK_WAIT
    with failing(f"cannot take the lock of {target!r}"):
        while not query(conn, "SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtextextended(%s, 0))",
                        (f"synco:{target}",))[0][0]:
            if time.monotonic() >= deadline:
                raise DatabaseError(f"another synco run is importing into or restoring {target!r}; "
                                    "nothing was changed",
                                    hint="wait for it to finish, or stop it, and run again")
            time.sleep(0.1)


def drop_stale(conn, shadow: str) -> list[str]:
    """Drop the shadow database a killed run left (the caller holds the run lock); what was done."""
    if not exists(conn, shadow):
        return []
    drop(conn, shadow, force=True)
    return [f"removed {shadow!r}, left by an earlier run that was stopped before its swap"]


def rename(conn, old: str, new: str) -> None:
    conn.execute(f"ALTER DATABASE {qi(old)} RENAME TO {qi(new)}")


def drop(conn, name: str, force: bool = False) -> None:
    """Drop a database; ``force`` (our own shadow only) ends the sessions still connected."""
    with failing(f"cannot drop database {name!r}", hint="close the sessions connected to it"):
        conn.execute(f"DROP DATABASE IF EXISTS {qi(name)}" + (" WITH (FORCE)" if force else ""))


def not_loadable(obj: dict, exc: psycopg.Error) -> DatabaseError:
    """A schema statement the local server refused: which object, which statement, and that it is
    a difference between the servers, not a connection problem (the shadow database is dropped
    by abort(), so the target is as it was)."""
    statement = " ".join(obj["sql"].split())
    statement = statement if len(statement) <= 160 else statement[:157] + "..."
    advice = ("create that role here first (CREATE ROLE name NOLOGIN), then run again; "
              if isinstance(exc, psycopg.errors.UndefinedObject) and "role" in str(exc) else "")
    return DatabaseError(f"cannot create {obj['kind']} {obj['name']}: {error_text(exc)}",
                         hint=f"{advice}this server cannot run the statement {statement!r}: a "
                              "difference between the source and this server (version, extension, "
                              "locale or role), not a connection problem; the local database was "
                              "left unchanged")


def execute(conn, obj: dict) -> None:
    """Run one schema statement; a refusal names the object and the statement (not_loadable)."""
    try:
        conn.execute(obj["sql"])
    except psycopg.Error as exc:
        raise not_loadable(obj, exc) from None


class Loader:
    """Loads chunks into ``<db>__synco_new``; commit() swaps it in, keeping ``<db>__synco_prev``.
    After commit(), ``fingerprint`` is that of the tables (fingerprint.py), taken in the shadow
    database while the indexes were built (post.py), or None when it could not be taken."""

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self.target = check_name(url.database)
        self.shadow = check_name(url.database + SHADOW)
        self.prev = check_name(url.database + PREV)
        self.admin = connect_maintenance(url)
        self.conn = None
        self.schema: dict | None = None
        self._copy_sql: dict[str, str] = {}
        self._lanes: Lanes | None = None
        self.notes: list[str] | None = None
        self.fingerprint: dict | None = None

    def recover(self) -> list[str]:
        """Take the target's run lock and drop an earlier, killed run's shadow database; what was
        done, one line each (also in ``notes``). describe_target() and begin() run it first."""
        if self.notes is None:
            take_run_lock(self.admin, self.target)
            with failing(f"cannot inspect {self.url.redacted}"):
                self.notes = drop_stale(self.admin, self.shadow)
        return self.notes

    def describe_target(self) -> int:
        self.recover()
        with failing(f"cannot inspect {self.url.redacted}"):
            if not exists(self.admin, self.target):
                return 0
        conn = connect(self.url)
        try:
            with failing(f"cannot inspect {self.url.redacted}"):
                return query(conn, "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                                   "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
                                   "AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'")[0][0]
        finally:
            conn.close()

    def begin(self, schema: dict) -> None:
        if schema.get("engine") != "postgresql":
            raise DatabaseError(f"cannot load a {schema.get('engine')!r} dump into PostgreSQL",
                                hint="download into a database of the same kind as the source")
        self.recover()
        self.schema = schema
        with failing(f"cannot inspect {self.url.redacted}"):
            refuse_if_in_use(self.admin, self.target)
        drop(self.admin, self.shadow)
        with failing(f"cannot create the shadow database {self.shadow!r}",
                     hint="the user needs the CREATEDB right, and the source's locale must exist here"):
            self.admin.execute(f"CREATE DATABASE {qi(self.shadow)} TEMPLATE template0 ENCODING "
                               f"{ql(schema['encoding'])} LC_COLLATE {ql(schema['collate'])} "
                               f"LC_CTYPE {ql(schema['ctype'])}")
        self.conn = self._session("UTF8")
        self._run(schema["pre"])
        for table in schema["tables"]:
            self._copy_sql[table["name"]] = copy_from(table["name"], table["columns"])
        self._lanes = Lanes([self._session(schema["encoding"]) for _ in range(LANES)],
                            self._copy_sql)

    def _session(self, encoding: str):
        conn = connect(self.url, self.shadow)
        with failing("cannot set up the shadow database session"):
            for stmt in LOAD_SETTINGS:
                conn.execute(stmt)
            set_encoding(conn, encoding)
        return conn

    def _run(self, statements: list[dict]) -> None:
        for obj in statements:
            execute(self.conn, obj)

    def load(self, table: str, chunk: bytes) -> None:
        if table not in self._copy_sql:
            raise DatabaseError(f"table {table} is not in the dump's schema")
        self._lanes.load(table, chunk)

    def _close_lanes(self) -> None:
        if self._lanes is not None:
            for lane in self._lanes.lanes:
                lane.conn.close()
            self._lanes = None

    def commit(self) -> None:
        schema = self.schema
        if schema is None:
            raise DatabaseError("commit() called before begin()")
        self._lanes.finish()
        self._close_lanes()
        # in order, each table's fingerprint taken meanwhile on other connections (post.py)
        self.fingerprint = post.run(schema["post"], self.conn, lambda: self._session("UTF8"), execute)
        self.conn.close()
        self.conn = None
        with failing(f"cannot swap {self.shadow!r} in as {self.target!r}; nothing was changed"):
            refuse_if_in_use(self.admin, self.target)
            refuse_if_in_use(self.admin, self.prev, grace=0)
        # Ctrl-C is honoured until here; the rest takes well under a second, and its only point
        # of no return is the commit of the renames (a kill before it changes nothing but the
        # old previous copy, already dropped)
        with no_sigint():
            with failing(f"cannot swap {self.shadow!r} in as {self.target!r}; nothing was changed"):
                drop(self.admin, self.prev)
                fault_point("pg-prev-dropped")
                with self.admin.transaction():
                    self.admin.execute(f"SET LOCAL lock_timeout = '{int(LOCK_WAIT)}s'")
                    if exists(self.admin, self.target):
                        rename(self.admin, self.target, self.prev)
                    rename(self.admin, self.shadow, self.target)
                    fault_point("pg-renamed-uncommitted")
                fault_point("pg-renamed")
        self.close()

    def abort(self) -> None:
        try:
            if self._lanes is not None:
                self._lanes.stop()
            if not self.admin.closed:
                drop(self.admin, self.shadow, force=True)
            self._close_lanes()
            if self.conn is not None:
                self.conn.close()
                self.conn = None
        finally:
            self.close()

    def close(self) -> None:
        for conn in (self.conn, self.admin):
            if conn is not None and not conn.closed:
                conn.close()


def restore(url: DatabaseUrl) -> str:
    """Swap ``<db>__synco_prev`` back in; the current database becomes the previous one."""
    target = check_name(url.database)
    prev, tmp = check_name(target + PREV), check_name(target + SHADOW)
    conn = connect_maintenance(url)
    try:
        take_run_lock(conn, target)
        with failing(f"cannot inspect {url.redacted}"):
            notes = drop_stale(conn, tmp)
            if not exists(conn, prev):
                raise no_previous_copy(target, prev)
            refuse_if_in_use(conn, target)
            refuse_if_in_use(conn, prev)
        with no_sigint(), failing(f"cannot swap {prev!r} back in as {target!r}; nothing was changed"):
            with conn.transaction():
                conn.execute(f"SET LOCAL lock_timeout = '{int(LOCK_WAIT)}s'")
                if exists(conn, target):
                    rename(conn, target, tmp)
                    rename(conn, prev, target)
                    rename(conn, tmp, prev)
                else:
                    rename(conn, prev, target)
        return "; ".join(notes + [f"restored the previous copy of {target!r}; the replaced one is now {prev!r}"])
    finally:
        conn.close()
