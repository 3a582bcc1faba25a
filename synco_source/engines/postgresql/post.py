"""After the rows: the schema's ``post`` statements, with the index builds of different tables on
several connections at once, and each table's fingerprint (fingerprint.py) taken meanwhile.

Run one after another, the index builds and then the fingerprint that ``synco verify`` records
keep one core busy at the end of an import, after the transfer is over (about 2 s of 9 for the
200 MB bench database, bench/RESULTS.md). Here:

- a **build** is a key constraint (``ALTER TABLE ONLY t ADD CONSTRAINT … PRIMARY KEY``,
  ``UNIQUE`` or ``EXCLUDE``) or an index (``CREATE [UNIQUE] INDEX … ON t``) of a table whose rows
  were loaded and that is no partition: it locks its own table only, and nothing but other
  statements of its table depends on it. The builds of one table run in the dump's order, its key
  constraints first (a primary key takes the table's ACCESS EXCLUSIVE lock; the indexes after it
  may run side by side); different tables' builds run on different connections, the largest
  table first;
- once a table's key constraints exist, its row hashes are taken on a free connection (a read:
  it waits for no index build and none waits for it);
- every other statement (foreign keys, triggers, views, sequence values, comments, the attach of
  partitions' indexes…) then runs on the loader's own connection, in the dump's order, after all
  the builds: exactly what ran before, minus the builds, in the same order;
- last, the column definitions of every table complete the fingerprints (a primary key makes its
  columns NOT NULL, so they are read after everything).

The fingerprint of the shadow database is that of the target after the swap (a rename changes no
row), and nothing else connects to the shadow database, so it is what the import produced. A
fingerprint that cannot be taken costs only the fingerprint (None: the caller takes it later);
a statement that fails fails the import, as before.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable

from ...errors import DatabaseError
from .fingerprint import columns, combine, row_hashes, table_oids
from .sql import failing, query

_KEY = re.compile(r'ALTER TABLE ONLY (?P<table>.+?) ADD CONSTRAINT "(?:[^"]|"")+" '
                  r'(?:PRIMARY KEY|UNIQUE|EXCLUDE)\b', re.S)
_INDEX = re.compile(r'CREATE (?:UNIQUE )?INDEX (?:"(?:[^"]|"")+"|\S+) ON (?P<table>.+?) USING ', re.S)


def connections() -> int:
    """How many connections build at once: one per core of this machine (the target is a local
    server, download.py's guard), at least 2, at most 4."""
    return max(2, min(4, os.cpu_count() or 2))


def build_table(obj: dict, tables: set[str]) -> tuple[str, bool] | None:
    """``(table, is_key)`` when ``obj`` is a build of one of ``tables``, else None."""
    if obj.get("kind") == "constraint":
        found, key = _KEY.match(obj["sql"]), True
    elif obj.get("kind") == "index":
        found, key = _INDEX.match(obj["sql"]), False
    else:
        return None
    if found is None or found.group("table") not in tables:
        return None
    return found.group("table"), key


def plan(statements: list[dict], loaded: list[str], partitions: set[str]) -> tuple[dict, list[dict]]:
    """``({table: (keys, indexes)}, rest)``: the builds of each loaded table that is no partition,
    and the other statements in their order."""
    tables = set(loaded) - partitions
    builds: dict[str, tuple[list[dict], list[dict]]] = {}
    rest = []
    for obj in statements:
        found = build_table(obj, tables)
        if found is None:
            rest.append(obj)
            continue
        table, key = found
        keys, indexes = builds.setdefault(table, ([], []))
        (keys if key else indexes).append(obj)
    return builds, rest


class _Work:
    """The tasks and their order: ``(size, kind, table, obj)``; a table's indexes and row hashes
    become ready once its key constraints are built."""

    def __init__(self, builds: dict, hashed: list[str], sizes: dict[str, int]) -> None:
        self.lock = threading.Condition()
        self.sizes = sizes
        self.ready: list[tuple] = []
        self.waiting: dict[str, list[tuple]] = {}
        self.running = 0
        self.error: BaseException | None = None
        for table in set(builds) | set(hashed):
            keys, indexes = builds.get(table, ([], []))
            later = [("index", table, obj) for obj in indexes]
            later += [("hash", table, None)] if table in hashed else []
            if keys:
                self.ready.append(("keys", table, keys))
                self.waiting[table] = later
            else:
                self.ready += later

    def take(self):
        """The next task (largest table first), or None when all are done or one failed."""
        with self.lock:
            while True:
                if self.error is not None:
                    return None
                if self.ready:
                    self.ready.sort(key=lambda t: (self.sizes.get(t[1], 0), t[0] != "hash"))
                    self.running += 1
                    return self.ready.pop()
                if not self.running:
                    return None
                self.lock.wait()

    def done(self, task: tuple, error: BaseException | None = None) -> None:
        with self.lock:
            self.running -= 1
            if error is not None and self.error is None:
                self.error = error
            if task[0] == "keys":
                self.ready += self.waiting.pop(task[1], [])
            self.lock.notify_all()


def run(statements: list[dict], loaded: list[str], partitions: set[str], main,
        connect: Callable[[], object], execute: Callable[[object, dict], None],
        workers: int | None = None) -> dict | None:
    """Run the post ``statements`` in the shadow database: the builds of the ``loaded`` tables
    (``partitions`` excepted) and the row hashes on ``workers`` connections made by
    ``connect()``, then the rest on ``main`` with ``execute(conn, obj)`` (which raises the
    error for a statement that fails). Returns the fingerprint of the tables, or None when it
    could not be taken."""
    builds, rest = plan(statements, loaded, partitions)
    with failing("cannot list the tables of the shadow database"):
        hashed = table_oids(main)
        sizes = dict(query(main, "SELECT c.oid::pg_catalog.regclass::text, pg_catalog.pg_table_size(c.oid) "
                                 "FROM pg_catalog.pg_class c WHERE c.relkind = 'r'"))
    work = _Work(builds, list(hashed), sizes)
    hashes: dict[str, tuple] = {}
    missed: list[str] = []
    count = min(workers or connections(), max(1, len(work.ready) + len(work.waiting)))
    conns = []
    try:
        for _ in range(count):
            conns.append(connect())
        threads = [threading.Thread(target=_worker, args=(conn, work, execute, hashes, missed),
                                    name="post", daemon=True) for conn in conns]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join()
        except BaseException:  # Ctrl-C: stop the statements running, then wait for the threads
            with work.lock:
                work.error = work.error or DatabaseError("stopped")
                work.lock.notify_all()
            for conn in conns:
                _cancel(conn)
            for thread in threads:
                thread.join(10)
            raise
    finally:
        for conn in conns:
            conn.close()
    if work.error is not None:
        raise work.error
    for obj in rest:
        execute(main, obj)
    if missed:
        return None
    try:
        with failing("cannot read the column definitions"):
            return {name: combine(columns(main, oid), hashes[name])
                    for name, oid in hashed.items()}
    except DatabaseError:
        return None


def _worker(conn, work: _Work, execute, hashes: dict, missed: list) -> None:
    while (task := work.take()) is not None:
        kind, table, what = task
        error = None
        try:
            if kind == "keys":
                for obj in what:
                    execute(conn, obj)
            elif kind == "index":
                execute(conn, what)
            else:
                try:
                    hashes[table] = row_hashes(conn, table)
                except Exception:  # only the fingerprint is lost: synco verify takes it later
                    missed.append(table)
        except BaseException as exc:
            error = exc
        work.done(task, error)


def _cancel(conn) -> None:
    try:
        getattr(conn, "cancel_safe", conn.cancel)()
    except Exception:  # a broken or closed connection: nothing runs on it
        pass
