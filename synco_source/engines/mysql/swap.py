"""The swap of MySQL/MariaDB, safe against kill -9, Ctrl-C and other connections' locks.

MySQL cannot rename a database, and views and triggers cannot move with RENAME TABLE, so a swap
is several statements. It is made safe by a journal: before the first change to the target, the
whole plan (the tables to move, the CREATE text and sql_mode of every old and new view, trigger
and routine, the character sets) is committed into ``<db>__synco_new.__synco_journal``. One
``RENAME TABLE`` statement, atomic on the server, moves all tables and also renames the marker
table ``__synco_pending`` to ``__synco_renamed`` in the journal's database, so whoever comes later
knows for sure which side of the rename a swap stopped on:

- marker still ``__synco_pending``: roll back (re-create the old triggers the swap had dropped,
  drop what it had created); the target is as before;
- marker ``__synco_renamed``: finish (create the new objects in the target, the old ones in the
  previous copy); should that fail, rename everything back and roll back.

Every step reads what is there and does only what is missing, so the next run (``recover``) can
repeat any of them after a crash at any instant. The journal's database is dropped last: while it
exists the swap is not over. See docs/mysql.md, "Shadow database and swap".
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterator
from typing import NamedTuple

import pymysql

from ...dburl import DatabaseUrl
from ...errors import DatabaseError
from ..common import fault_point, no_sigint
from . import catalog, compat, locks
from .sql import connect, error_text, qi, qs, query

JOURNAL, PENDING, DONE = "__synco_journal", "__synco_pending", "__synco_renamed"
_HINTS = {1205: locks.HINT}


def exists(conn, db: str) -> bool:
    return bool(query(conn, "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (db,)))


def has_table(conn, db: str, table: str) -> bool:
    return bool(query(conn, "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                            "AND TABLE_NAME = %s", (db, table)))


def charset(conn, db: str) -> list[str]:
    return list(query(conn, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
                            "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (db,))[0])


def charset_sql(cs) -> str:
    return f"CHARACTER SET {cs[0]} COLLATE {cs[1]}"


def plan_download(conn, target: str, shadow: str, prev: str, new_objects: list[dict],
                  new_charset) -> dict:
    """Shadow ``shadow`` becomes ``target``; the target's tables and objects go to ``prev``."""
    existed = exists(conn, target)
    old_objects = catalog.objects(conn, target) if existed else []
    old_tables = catalog.base_tables(conn, target, strict=False) if existed else []
    new_tables = catalog.base_tables(conn, shadow, strict=False)
    return dict(kind="download", target=target, journal=shadow, incoming=shadow, keep=prev,
                existed=existed, keeping=bool(old_tables or old_objects), old_tables=old_tables,
                new_tables=new_tables, old_objects=old_objects,
                new_objects=new_objects, incoming_objects=[],
                old_charset=charset(conn, target) if existed else list(new_charset),
                new_charset=list(new_charset),
                defaults=catalog.sequence_defaults(conn, shadow, new_tables, [shadow], target))


def plan_restore(conn, target: str, prev: str, tmp: str) -> dict:
    """``prev`` and ``target`` trade places (their tables pass through ``tmp``)."""
    existed = exists(conn, target)
    objs = catalog.objects(conn, prev)
    new_tables = catalog.base_tables(conn, prev, strict=False)
    return dict(kind="restore", target=target, journal=tmp, incoming=prev, keep=prev,
                existed=existed, keeping=True,
                old_tables=catalog.base_tables(conn, target, strict=False) if existed else [],
                new_tables=new_tables,
                defaults=catalog.sequence_defaults(conn, prev, new_tables, [prev, tmp], target),
                old_objects=catalog.objects(conn, target) if existed else [], new_objects=objs,
                incoming_objects=objs,
                old_charset=charset(conn, target) if existed else charset(conn, prev),
                new_charset=charset(conn, prev))


def moves(plan: dict) -> list[tuple[str, str]]:
    """The RENAME TABLE pairs, the marker last."""
    t, i, k, j = plan["target"], plan["incoming"], plan["keep"], plan["journal"]

    def q(db: str, name: str) -> str:
        return f"{qi(db)}.{qi(name)}"

    old, new = plan["old_tables"], plan["new_tables"]
    if i != k:
        pairs = [(q(t, n), q(k, n)) for n in old] + [(q(i, n), q(t, n)) for n in new]
    else:  # restore: the target's tables wait in the journal's database while prev's move out
        pairs = ([(q(t, n), q(j, n)) for n in old] + [(q(i, n), q(t, n)) for n in new]
                 + [(q(j, n), q(k, n)) for n in old])
    return pairs + [(q(j, PENDING), q(j, DONE))]


def rename_sql(pairs: list[tuple[str, str]]) -> str:
    return "RENAME TABLE " + ", ".join(f"{a} TO {b}" for a, b in pairs)


def _as_database_error(exc: BaseException, what: str) -> DatabaseError:
    return exc if isinstance(exc, DatabaseError) else DatabaseError(f"{what}: {error_text(exc)}")


def _triggers(objs: list[dict]) -> list[dict]:
    return [o for o in objs if o["kind"] == "trigger"]


class Interrupts:
    """Ctrl-C until the point of no return: the press is noted, the statement running on the
    server is stopped with KILL QUERY from a second connection (so a wait for a lock ends at
    once), and the swap rolls back when that statement has answered, never in the middle of one.
    Once ``past`` is set, presses are ignored."""

    def __init__(self, conn, url: DatabaseUrl | None) -> None:
        self.url, self.conn_id = url, conn.thread_id()
        self.pressed = self.busy = self.past = False
        self._old = None

    def __enter__(self) -> "Interrupts":
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None

    def _handler(self, signum, frame) -> None:
        if self.past:
            return
        self.pressed = True
        if self.busy and self.url is not None:
            try:
                other = connect(self.url)
                try:
                    query(other, f"KILL QUERY {int(self.conn_id)}")
                finally:
                    other.close()
            except Exception:  # the statement then ends by itself (lock_wait_timeout bounds it)
                pass

    def check(self) -> None:
        if self.pressed and not self.past:
            raise KeyboardInterrupt


class Swap:
    """Runs a plan (``run``), or continues one found in a journal (``recover``)."""

    def __init__(self, conn, plan: dict, url: DatabaseUrl | None = None) -> None:
        self.conn, self.plan = conn, plan
        self.guard = Interrupts(conn, url)
        self.lock_dbs = [plan["target"]] + ([plan["keep"]] if plan["keeping"] else [])
        with self._failing("cannot set lock_wait_timeout"):
            query(conn, f"SET SESSION lock_wait_timeout = {int(locks.LOCK_WAIT)}")

    # -- statements -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _failing(self, what: str, statement: str | None = None) -> Iterator[None]:
        try:
            yield
        except pymysql.err.Error as exc:
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            if code == 1205:
                raise locks.timed_out(self.conn, self.lock_dbs, self.plan["target"], what) from None
            if statement is not None:  # one of the copy's own definitions
                raise compat.error(exc, what, statement, self.plan["target"]) from None
            raise DatabaseError(f"{what}: {error_text(exc)}", hint=_HINTS.get(code)) from None
        except OSError as exc:
            raise DatabaseError(f"{what}: {exc}") from None

    def q(self, what: str, sql: str, args=None, *, definition: bool = False) -> list[tuple]:
        """Run ``sql``; ``definition``: it is an object's own CREATE or ALTER, whose failure is
        named with the statement as a compatibility problem."""
        self.guard.busy = True
        try:
            with self._failing(what, sql if definition else None):
                return query(self.conn, sql, args)
        finally:
            self.guard.busy = False
            self.guard.check()

    def _create(self, db: str, objs: list[dict]) -> None:
        if not objs:
            return
        self.q(f"cannot use {db!r}", f"USE {qi(db)}")
        mode, zone = self.q("cannot read sql_mode", "SELECT @@SESSION.sql_mode, @@SESSION.time_zone")[0]
        try:
            for obj in objs:
                for stmt in catalog.session_sql(obj):
                    self.q(f"cannot set the sql_mode and time zone of {obj['kind']} {obj['name']!r}", stmt,
                           definition=True)
                self.q(f"cannot create {obj['kind']} {obj['name']!r} in {db!r}", obj["create"],
                       definition=True)
        finally:
            with contextlib.suppress(pymysql.err.Error):  # a broken connection fails the next step
                query(self.conn, f"SET SESSION sql_mode = {qs(mode)}, time_zone = {qs(zone)}")

    def _drop(self, db: str, objs: list[dict]) -> None:
        if not objs:
            return
        self.q(f"cannot use {db!r}", f"USE {qi(db)}")
        for obj in reversed(objs):
            self.q(f"cannot drop {obj['kind']} {obj['name']!r} in {db!r}", catalog.drop_sql(obj))

    def _replace(self, db: str, objs: list[dict]) -> None:
        """Make ``db``'s views, triggers and routines exactly ``objs`` (whatever it had before)."""
        self._drop(db, catalog.present(self.conn, db))
        self._create(db, objs)

    def _db(self, what: str, sql: str) -> None:
        self.q(what, sql)

    def renamed(self) -> bool:
        return has_table(self.conn, self.plan["journal"], DONE)

    # -- the live swap ----------------------------------------------------------------------

    def run(self) -> None:
        """Prepare, rename, finish. Before the rename succeeds, any failure or Ctrl-C rolls back
        (the target as it was); after it, the swap finishes with Ctrl-C ignored."""
        try:
            with self.guard:
                self._prepare()
                self._rename()
                self.guard.past = True
        except BaseException as exc:
            self._after_failure(exc, self._rollback_quietly)
        fault_point("renamed")
        with no_sigint():
            try:
                self.finish()
            except (DatabaseError, pymysql.err.Error) as exc:
                self._after_failure(_as_database_error(exc, "cannot finish the swap"), self._undo_quietly)

    def _after_failure(self, exc: BaseException, back) -> None:
        interrupted = self.guard.pressed or isinstance(exc, KeyboardInterrupt)
        # The way back. It can wait for a lock too (re-creating a trigger); a further Ctrl-C stops
        # it where it is, and the journal keeps the rest for the next run.
        self.guard.pressed = self.guard.past = False
        try:
            with self.guard:
                problems = back()
        except KeyboardInterrupt:
            problems = ["interrupted again"]
        self.guard.past = True
        if problems:
            note = (f"; it could not be rolled back ({'; '.join(problems)}): the next 'synco download' "
                    "or 'synco restore' finishes or rolls it back")
        else:
            note = "; nothing was changed"
        if interrupted:
            if problems:
                raise DatabaseError(f"interrupted during the swap{note}") from None
            raise KeyboardInterrupt
        if isinstance(exc, DatabaseError):
            compatible = exc.fields.get("compatibility", False)
            # the hint of a definition's failure says the target was left unchanged: only if so
            hint = "run again once the cause is fixed" if problems and compatible else exc.hint
            raise DatabaseError(f"{exc}{note}", hint=hint, compatibility=compatible) from None
        raise exc

    def _prepare(self) -> None:
        p = self.plan
        t, j, k = p["target"], p["journal"], p["keep"]
        if p["kind"] == "restore":
            self._db(f"cannot drop the temporary database {j!r}", f"DROP DATABASE IF EXISTS {qi(j)}")
            self._db(f"cannot create the temporary database {j!r}",
                     f"CREATE DATABASE {qi(j)} {charset_sql(p['old_charset'])}")
        what = f"cannot write the swap journal into {j!r}"
        self.q(what, f"CREATE TABLE {qi(j)}.{qi(JOURNAL)} (id TINYINT PRIMARY KEY, "
                     "plan LONGTEXT NOT NULL) ENGINE=InnoDB")
        self.q(what, f"CREATE TABLE {qi(j)}.{qi(PENDING)} (id TINYINT) ENGINE=InnoDB")
        self.q(what, f"INSERT INTO {qi(j)}.{qi(JOURNAL)} VALUES (1, %s)", (json.dumps(p),))
        with self._failing(what):
            self.conn.commit()
        fault_point("journal")
        if p["kind"] == "download":
            self._db(f"cannot drop the old previous copy {k!r}", f"DROP DATABASE IF EXISTS {qi(k)}")
            if p["keeping"]:
                self._db(f"cannot create database {k!r}",
                         f"CREATE DATABASE {qi(k)} {charset_sql(p['old_charset'])}")
                # routines need no tables: the previous copy has them before the target changes
                self._create(k, [o for o in p["old_objects"] if o["kind"] == "routine"])
        fault_point("prev")
        if not p["existed"]:
            self._db(f"cannot create database {t!r}", f"CREATE DATABASE {qi(t)} {charset_sql(p['new_charset'])}")
        # triggers keep a table from moving to another database: drop them (the journal has them)
        self._drop(t, _triggers(p["old_objects"]))
        if p["kind"] == "restore":
            self._drop(k, _triggers(p["incoming_objects"]))
        fault_point("triggers")

    def _rename(self) -> None:
        try:
            self.q("cannot swap the tables in with RENAME TABLE", rename_sql(moves(self.plan)))
        except BaseException:
            # the server answered (or the connection broke): the marker says what happened
            try:
                if self.renamed():
                    return
            except Exception:
                pass
            raise

    def finish(self) -> None:
        p = self.plan
        t, j, k = p["target"], p["journal"], p["keep"]
        # a default that calls a sequence names the database it was made in: the target's own
        for table, columns in p.get("defaults", []):
            self.q(f"cannot make the defaults of table {table!r} call the sequences of {t!r}",
                   catalog.set_defaults_sql(t, table, columns), definition=True)
        self._replace(t, p["new_objects"])
        fault_point("finish-target")
        if p["keeping"]:
            self._replace(k, p["old_objects"])
        fault_point("finish-keep")
        if p["existed"] and p["old_charset"] != p["new_charset"]:
            self._db(f"cannot set the character set of {t!r}",
                     f"ALTER DATABASE {qi(t)} {charset_sql(p['new_charset'])}")
        if p["keeping"] and exists(self.conn, k):
            self._db(f"cannot set the character set of {k!r}",
                     f"ALTER DATABASE {qi(k)} {charset_sql(p['old_charset'])}")
        self._db(f"cannot drop the finished swap's journal {j!r}", f"DROP DATABASE IF EXISTS {qi(j)}")

    # -- back to the old state --------------------------------------------------------------

    def rollback(self) -> None:
        """Before the rename: put back what the swap dropped, drop what it created, journal last."""
        p = self.plan
        t, j, k = p["target"], p["journal"], p["keep"]
        if exists(self.conn, t):
            self._create(t, catalog.missing(self.conn, t, p["old_objects"]))
            if p["existed"] and charset(self.conn, t) != p["old_charset"]:
                self._db(f"cannot set the character set of {t!r}",
                         f"ALTER DATABASE {qi(t)} {charset_sql(p['old_charset'])}")
        if p["kind"] == "restore":
            self._create(k, catalog.missing(self.conn, k, p["incoming_objects"]))
            if charset(self.conn, k) != p["new_charset"]:
                self._db(f"cannot set the character set of {k!r}",
                         f"ALTER DATABASE {qi(k)} {charset_sql(p['new_charset'])}")
        else:
            self._db(f"cannot drop {k!r}", f"DROP DATABASE IF EXISTS {qi(k)}")
        if not p["existed"] and exists(self.conn, t) and not catalog.table_kinds(self.conn, t) \
                and not catalog.present(self.conn, t):
            self._db(f"cannot drop {t!r}", f"DROP DATABASE {qi(t)}")
        self._db(f"cannot drop the swap journal {j!r}", f"DROP DATABASE IF EXISTS {qi(j)}")

    def undo(self) -> None:
        """After the rename: empty both sides of objects, rename everything back, roll back."""
        p = self.plan
        self._drop(p["target"], catalog.present(self.conn, p["target"]))
        if p["keeping"] and exists(self.conn, p["keep"]):
            self._drop(p["keep"], catalog.present(self.conn, p["keep"]))
        if self.renamed():
            back = [(b, a) for a, b in reversed(moves(p))]
            self.q("cannot rename the tables back", rename_sql(back))
        fault_point("undone")
        self.rollback()

    def _quietly(self, step) -> list[str]:
        try:
            step()
            return []
        except Exception as exc:
            return [str(exc)]

    def _rollback_quietly(self) -> list[str]:
        return self._quietly(self.rollback)

    def _undo_quietly(self) -> list[str]:
        return self._quietly(self.undo)


def pending(conn, journal_db: str) -> bool:
    """Whether ``journal_db`` holds the journal of an unfinished swap."""
    return exists(conn, journal_db) and has_table(conn, journal_db, JOURNAL)


class Recovered(NamedTuple):
    message: str
    kind: str        # "download", "restore", or "" (a stale shadow database was dropped)
    finished: bool   # the swap was finished (else rolled back, or there was none)


def recover(conn, target: str, journal_db: str) -> Recovered | None:
    """Finish or roll back what an earlier run left, and say what was done (None: nothing there).
    The caller holds the run lock of ``target``, so whatever it finds belongs to a run that ended."""
    if not exists(conn, journal_db):
        return None
    rows = query(conn, f"SELECT plan FROM {qi(journal_db)}.{qi(JOURNAL)}") \
        if has_table(conn, journal_db, JOURNAL) else []
    if not rows:
        query(conn, f"DROP DATABASE IF EXISTS {qi(journal_db)}")
        return Recovered(f"removed {journal_db!r}, left by an earlier run that was stopped before "
                         "its swap", "", False)
    plan = json.loads(rows[0][0])
    swap = Swap(conn, plan)
    what = "restore" if plan["kind"] == "restore" else "swap"
    with no_sigint():
        if swap.renamed():
            try:
                try:
                    swap.finish()
                except pymysql.err.Error as exc:
                    raise _as_database_error(exc, f"cannot finish the {what}") from None
                return Recovered(f"finished the {what} that an earlier, stopped run had begun: "
                                 f"{target!r} is the new copy, the one it replaced is "
                                 f"{plan['keep']!r}", plan["kind"], True)
            except DatabaseError as exc:
                problems = swap._undo_quietly()
                if problems:
                    raise DatabaseError(f"cannot finish nor roll back the {what} that an earlier, "
                                        f"stopped run had begun: {exc}; {'; '.join(problems)}",
                                        hint="fix the cause and run again") from None
        else:
            swap.rollback()
    return Recovered(f"rolled back the {what} that an earlier, stopped run had begun: {target!r} "
                     "is as it was", plan["kind"], False)
