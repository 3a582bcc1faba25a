"""The load side: fill a shadow database, then swap it in with one RENAME TABLE statement."""

from __future__ import annotations

import re
from collections.abc import Callable

from ...dburl import DatabaseUrl
from ...errors import DatabaseError
from ..common import PREV, SHADOW, no_previous_copy, no_sigint
from . import catalog
from .sql import check_name, connect, failing, qi, query, resolve_localhost

SESSION = ("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'", "SET SESSION time_zone = '+00:00'",
           "SET SESSION foreign_key_checks = 0", "SET SESSION unique_checks = 0")
_AUTO_INCREMENT = re.compile(r"\) ENGINE=.*? AUTO_INCREMENT=(\d+)", re.S)


def _exists(conn, db: str) -> bool:
    return bool(query(conn, "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (db,)))


def _charset(conn, db: str) -> tuple[str, str]:
    return query(conn, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
                       "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (db,))[0]


def _charset_sql(charset: tuple[str, str]) -> str:
    return f"CHARACTER SET {charset[0]} COLLATE {charset[1]}"


class Swap:
    """Move ``target``'s tables to ``keep`` and ``incoming``'s tables into ``target``, atomically.

    Each step records how to undo itself; if any step fails, the undo steps run in reverse and the
    target ends as it was. Objects that cannot move with RENAME (views, triggers, routines) are
    dropped and re-created around it.
    """

    def __init__(self, conn, target: str, incoming: str, keep: str, tmp: str) -> None:
        self.conn, self.target, self.incoming, self.keep, self.tmp = conn, target, incoming, keep, tmp
        self.undo: list[Callable[[], None]] = []

    def run(self, new_objects: list[dict], incoming_objects: list[dict], charset: tuple[str, str]) -> None:
        try:
            with failing(f"cannot swap {self.incoming!r} in as {self.target!r}"):
                self._run(new_objects, incoming_objects, charset)
        except BaseException as exc:
            problems = self._rollback()
            note = f"; rollback problems: {'; '.join(problems)}" if problems else "; nothing was changed"
            if isinstance(exc, DatabaseError):
                raise DatabaseError(f"{exc}{note}", hint=exc.hint) from None
            raise

    def _step(self, what: str, sql: str, undo_sql: str | None = None) -> None:
        with failing(what):
            query(self.conn, sql)
        if undo_sql:
            self.undo.append(lambda: query(self.conn, undo_sql))

    def _objects_step(self, db: str, objs: list[dict], *, create: bool) -> None:
        if not objs:
            return
        if create:
            self.undo.append(lambda: catalog.drop_objects(self.conn, db, objs))
            catalog.create_objects(self.conn, db, objs)
        else:
            catalog.drop_objects(self.conn, db, objs)
            self.undo.append(lambda: (catalog.drop_objects(self.conn, db, objs),
                                      catalog.create_objects(self.conn, db, objs)))

    def _run(self, new_objects, incoming_objects, charset) -> None:
        conn, target, keep = self.conn, self.target, self.keep
        existed = _exists(conn, target)
        old_objects = catalog.objects(conn, target) if existed else []
        old_tables = catalog.base_tables(conn, target, strict=False) if existed else []
        new_tables = catalog.base_tables(conn, self.incoming, strict=False)
        old_charset = _charset(conn, target) if existed else tuple(charset)
        self._prepare_databases(existed, old_charset, tuple(charset), bool(old_tables or old_objects))
        moves = self._moves(old_tables, new_tables)
        if self.tmp:
            self._step(f"cannot create database {self.tmp!r}", f"CREATE DATABASE IF NOT EXISTS {qi(self.tmp)}")
        self._objects_step(self.incoming, incoming_objects, create=False)
        self._objects_step(target, old_objects, create=False)
        if moves:
            self._step("cannot swap the tables in with RENAME TABLE", _rename_sql(moves),
                       _rename_sql([(b, a) for a, b in reversed(moves)]))
        self._objects_step(target, new_objects, create=True)
        if old_tables or old_objects:
            self._objects_step(keep, old_objects, create=True)
            if keep == self.incoming and old_charset != tuple(charset):
                self._step(f"cannot set the character set of {keep!r}",
                           f"ALTER DATABASE {qi(keep)} {_charset_sql(old_charset)}")

    def _prepare_databases(self, existed: bool, old_charset: tuple, charset: tuple, keeping: bool) -> None:
        target, keep = self.target, self.keep
        if not existed:
            self._step(f"cannot create database {target!r}", f"CREATE DATABASE {qi(target)} "
                       f"{_charset_sql(charset)}", f"DROP DATABASE IF EXISTS {qi(target)}")
        elif old_charset != charset:
            self._step(f"cannot set the character set of {target!r}", f"ALTER DATABASE {qi(target)} "
                       f"{_charset_sql(charset)}", f"ALTER DATABASE {qi(target)} {_charset_sql(old_charset)}")
        if keeping and not _exists(self.conn, keep):
            self._step(f"cannot create database {keep!r}", f"CREATE DATABASE {qi(keep)} "
                       f"{_charset_sql(old_charset)}", f"DROP DATABASE IF EXISTS {qi(keep)}")

    def _moves(self, old_tables: list[str], new_tables: list[str]) -> list[tuple[str, str]]:
        t, i, k = self.target, self.incoming, self.keep
        if i != k:
            return [(f"{qi(t)}.{qi(n)}", f"{qi(k)}.{qi(n)}") for n in old_tables] + \
                   [(f"{qi(i)}.{qi(n)}", f"{qi(t)}.{qi(n)}") for n in new_tables]
        tmp = self.tmp
        return ([(f"{qi(t)}.{qi(n)}", f"{qi(tmp)}.{qi(n)}") for n in old_tables]
                + [(f"{qi(i)}.{qi(n)}", f"{qi(t)}.{qi(n)}") for n in new_tables]
                + [(f"{qi(tmp)}.{qi(n)}", f"{qi(k)}.{qi(n)}") for n in old_tables])

    def _rollback(self) -> list[str]:
        problems = []
        for undo in reversed(self.undo):
            try:
                undo()
            except Exception as exc:  # keep undoing the rest; report what could not be undone
                problems.append(str(exc))
        self.undo.clear()
        return problems


def _rename_sql(moves: list[tuple[str, str]]) -> str:
    return "RENAME TABLE " + ", ".join(f"{a} TO {b}" for a, b in moves)


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

    def describe_target(self) -> int:
        with failing(f"cannot inspect {self.url.redacted}"):
            return query(self.conn, "SELECT COUNT(*) FROM information_schema.TABLES "
                                    "WHERE TABLE_SCHEMA = %s", (self.target,))[0][0]

    def begin(self, schema: dict) -> None:
        if schema.get("engine") != "mysql":
            raise DatabaseError(f"cannot load a {schema.get('engine')!r} dump into MySQL/MariaDB",
                                hint="download into a database of the same kind as the source")
        self.schema = schema
        conn, shadow = self.conn, qi(self.shadow)
        with failing(f"cannot create the shadow database {self.shadow!r}"):
            query(conn, f"DROP DATABASE IF EXISTS {shadow}")
            query(conn, f"CREATE DATABASE {shadow} {_charset_sql((schema['charset'], schema['collation']))}")
            query(conn, f"USE {shadow}")
            for stmt in SESSION:
                query(conn, stmt)
        for table in schema["tables"]:
            with failing(f"cannot create table {table['name']!r}"):
                query(conn, table["create"])

    def load(self, table: str, chunk: bytes) -> None:
        try:
            with failing(f"cannot load rows into table {table!r}"):
                with self.conn.cursor() as cur:
                    for stmt in chunk.split(b";\n"):
                        if stmt:
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
        self._keep_auto_increments(schema)
        new_objects = schema["routines"] + schema["views"] + schema["triggers"]
        with no_sigint():
            with failing(f"cannot drop the old previous copy {self.prev!r}"):
                query(self.conn, f"DROP DATABASE IF EXISTS {qi(self.prev)}")
            Swap(self.conn, self.target, self.shadow, self.prev, "").run(
                new_objects, [], (schema["charset"], schema["collation"]))
            with failing(f"cannot drop the empty shadow database {self.shadow!r}"):
                query(self.conn, f"DROP DATABASE IF EXISTS {qi(self.shadow)}")
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
            with failing(f"cannot drop the shadow database {self.shadow!r}"):
                if self.conn is None or not self.conn.open:
                    self.conn = connect(self.url)
                self._rollback()
                query(self.conn, f"DROP DATABASE IF EXISTS {qi(self.shadow)}")
        finally:
            self.close()

    def close(self) -> None:
        if self.conn is not None and self.conn.open:
            self.conn.close()
        self.conn = None


def restore(url: DatabaseUrl) -> str:
    """Swap ``<db>__synco_prev`` back in; the current database becomes the previous one."""
    url = resolve_localhost(url)
    target = check_name(url.database)
    prev, tmp = check_name(target + PREV), check_name(target + SHADOW)
    conn = connect(url)
    try:
        with failing(f"cannot inspect {url.redacted}"):
            if not _exists(conn, prev):
                raise no_previous_copy(target, prev)
            objs = catalog.objects(conn, prev)
            count = len(catalog.base_tables(conn, prev, strict=False))
            charset = _charset(conn, prev)
            query(conn, f"DROP DATABASE IF EXISTS {qi(tmp)}")
        with no_sigint():
            Swap(conn, target, prev, prev, tmp).run(objs, objs, charset)
            with failing(f"cannot drop the temporary database {tmp!r}"):
                query(conn, f"DROP DATABASE IF EXISTS {qi(tmp)}")
        return f"restored the previous copy of {target!r} ({count} tables); the replaced one is now {prev!r}"
    finally:
        conn.close()
