"""The load side: fill a shadow database, then swap it in (swap.py: one RENAME TABLE statement
under a journal, so that a kill at any instant leaves something the next run can finish or roll
back). Before anything, the loader takes the target's run lock and deals with what an earlier,
stopped run left (``recover``)."""

from __future__ import annotations

import re

from ...dburl import DatabaseUrl
from ...errors import DatabaseError
from ..common import PREV, SHADOW, no_previous_copy, no_sigint  # noqa: F401 (no_sigint: tests)
from . import catalog, compat, locks, swap
from .sql import check_name, connect, failing, qi, query, resolve_localhost

SESSION = ("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'", "SET SESSION time_zone = '+00:00'",
           "SET SESSION foreign_key_checks = 0", "SET SESSION unique_checks = 0")
_AUTO_INCREMENT = re.compile(r"\) ENGINE=.*? AUTO_INCREMENT=(\d+)", re.S)


def _charset_sql(charset) -> str:
    return f"CHARACTER SET {charset[0]} COLLATE {charset[1]}"


class Loader:
    """Loads chunks into ``<db>__synco_new``; commit() swaps it in, keeping ``<db>__synco_prev``."""

    def __init__(self, url: DatabaseUrl) -> None:
        url = resolve_localhost(url)
        self.url = url
        self.target = check_name(url.database)
        self.shadow = check_name(url.database + SHADOW)
        self.prev = check_name(url.database + PREV)
        self.conn = connect(url)
        self.schema: dict | None = None
        self.notes: list[str] | None = None

    def recover(self) -> list[str]:
        """Take the target's run lock, then finish or roll back an earlier run's unfinished swap
        and drop its stale shadow database. Returns what was done, one line each (also kept in
        ``notes``); runs once per loader, and describe_target() and begin() run it first."""
        if self.notes is None:
            locks.take_run_lock(self.conn, self.target)
            with failing(f"cannot check {self.url.redacted} for an earlier run's leftovers"):
                done = swap.recover(self.conn, self.target, self.shadow)
            self.notes = [done.message] if done else []
        return self.notes

    def describe_target(self) -> int:
        self.recover()
        with failing(f"cannot inspect {self.url.redacted}"):
            return query(self.conn, "SELECT COUNT(*) FROM information_schema.TABLES "
                                    "WHERE TABLE_SCHEMA = %s AND TABLE_TYPE <> 'VIEW'",
                         (self.target,))[0][0]

    def begin(self, schema: dict) -> None:
        if schema.get("engine") != "mysql":
            raise DatabaseError(f"cannot load a {schema.get('engine')!r} dump into MySQL/MariaDB",
                                hint="download into a database of the same kind as the source")
        self.recover()
        # fail now rather than after the whole download: the swap would wait for these
        locks.refuse_if_busy(self.conn, [self.target, self.prev], self.target)
        self.schema = schema
        conn, shadow = self.conn, qi(self.shadow)
        with failing(f"cannot create the shadow database {self.shadow!r}"):
            query(conn, f"DROP DATABASE IF EXISTS {shadow}")
            query(conn, f"CREATE DATABASE {shadow} {_charset_sql((schema['charset'], schema['collation']))}")
            query(conn, f"USE {shadow}")
            for stmt in SESSION:
                query(conn, stmt)
        # sequences first: a table's default may call one (it is checked when the table is made)
        for seq in schema.get("sequences", []):
            self._create_sequence(seq)
        for table in schema["tables"]:
            with compat.executing(f"cannot create table {table['name']!r}", table["create"], self.target):
                query(conn, table["create"])

    def _create_sequence(self, seq: dict) -> None:
        what = f"cannot create sequence {seq['name']!r}"
        for stmt in [seq["create"]] + catalog.sequence_value_sql(seq):
            with compat.executing(what, stmt, self.target):
                query(self.conn, stmt)
        with failing(what):
            have = query(self.conn, f"SELECT next_not_cached_value, cycle_count FROM {qi(seq['name'])}")[0]
        if list(have) != [seq["next"], seq["round"]]:
            raise DatabaseError(f"{what}: it continues at {have[0]} (cycle {have[1]}) instead of "
                                f"{seq['next']} (cycle {seq['round']})", hint=compat.hint(self.target))

    def load(self, table: str, chunk: bytes) -> None:
        try:
            with failing(f"cannot load rows into table {table!r}"):
                with self.conn.cursor() as cur:
                    for stmt in chunk.split(b";\n"):
                        if stmt:
                            with compat.executing(f"cannot load rows into table {table!r}", stmt, self.target):
                                cur.execute(stmt)
                self.conn.commit()
        except BaseException:
            # Interrupted or failed mid-statement, the connection may hold unread results: drop
            # it (the server rolls the open transaction back) rather than talk on it again.
            self._drop_connection()
            raise

    def _drop_connection(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                self.conn._force_close()
            self.conn = None

    def _rollback(self) -> None:
        """End the open transaction so it holds no locks on the shadow tables."""
        try:
            self.conn.rollback()
        except Exception:  # the connection may be gone; abort() reports that
            pass

    def commit(self) -> None:
        schema = self.schema
        if schema is None:
            raise DatabaseError("commit() called before begin()")
        try:
            self._keep_auto_increments(schema)
            new_objects = schema["routines"] + schema["views"] + schema["triggers"] + schema.get("events", [])
            locks.refuse_if_busy(self.conn, [self.target, self.prev], self.target)
            with failing(f"cannot inspect {self.url.redacted}"):
                plan = swap.plan_download(self.conn, self.target, self.shadow, self.prev, new_objects,
                                          (schema["charset"], schema["collation"]))
        except KeyboardInterrupt:
            self._drop_connection()  # perhaps mid-statement (nothing changed yet); abort() reconnects
            raise
        # from here Ctrl-C is the swap's to handle: it rolls back cleanly or is past its point
        # of no return
        swap.Swap(self.conn, plan, self.url).run()
        self.close()

    def _keep_auto_increments(self, schema: dict) -> None:
        """Make each table's AUTO_INCREMENT counter what the source had (the RENAME keeps it)."""
        with failing(f"cannot use the shadow database {self.shadow!r}"):
            query(self.conn, f"USE {qi(self.shadow)}")
        for table in schema["tables"]:
            want = _AUTO_INCREMENT.search(table["create"])
            if not want:
                continue
            with failing(f"cannot check the AUTO_INCREMENT counter of table {table['name']!r}"):
                have = _AUTO_INCREMENT.search(catalog.show_create_table(self.conn, table["name"]))
                if not have or have.group(1) != want.group(1):
                    query(self.conn, f"ALTER TABLE {qi(table['name'])} AUTO_INCREMENT = {int(want.group(1))}")

    def abort(self) -> None:
        try:
            try:
                self._drop_shadow()
            except DatabaseError:
                # the connection may be unusable after what made us abort: once more on a new one
                self._drop_connection()
                self._drop_shadow()
        finally:
            self.close()

    def _drop_shadow(self) -> None:
        with failing(f"cannot drop the shadow database {self.shadow!r}"):
            if self.conn is None or not self.conn.open:
                self.conn = connect(self.url)
            self._rollback()
            # a swap that could not be rolled back keeps its journal there for the next run
            if not swap.pending(self.conn, self.shadow):
                query(self.conn, f"DROP DATABASE IF EXISTS {qi(self.shadow)}")

    def close(self) -> None:
        if self.conn is not None and self.conn.open:
            self.conn.close()
        self.conn = None


def restore(url: DatabaseUrl) -> str:
    """Swap ``<db>__synco_prev`` back in; the current database becomes the previous one. An
    earlier run's unfinished swap is finished or rolled back first."""
    url = resolve_localhost(url)
    target = check_name(url.database)
    prev, tmp = check_name(target + PREV), check_name(target + SHADOW)
    conn = connect(url)
    try:
        locks.take_run_lock(conn, target)
        with failing(f"cannot check {url.redacted} for an earlier run's leftovers"):
            done = swap.recover(conn, target, tmp)
        if done and done.kind == "restore" and done.finished:
            return done.message  # that was the restore asked for again
        note = f"{done.message}; " if done else ""
        with failing(f"cannot inspect {url.redacted}"):
            if not swap.exists(conn, prev):
                if done:
                    return done.message
                raise no_previous_copy(target, prev)
        locks.refuse_if_busy(conn, [target, prev], target)
        with failing(f"cannot inspect {url.redacted}"):
            plan = swap.plan_restore(conn, target, prev, tmp)
        swap.Swap(conn, plan, url).run()
        return (f"{note}restored the previous copy of {target!r} ({len(plan['new_tables'])} tables); "
                f"the replaced one is now {prev!r}")
    finally:
        conn.close()
