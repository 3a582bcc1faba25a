"""After the rows: the schema's ``post`` statements, with each table's fingerprint (fingerprint.py)
taken meanwhile on other connections.

Run one after the other, the index builds and then the fingerprint that ``synco verify`` records
kept one core busy at the end of an import, after the transfer was over (about 2 s of 9 for the
200 MB bench database, bench/RESULTS.md). Here the statements still run one after the other on
the loader's connection, in the dump's order: the copy's objects then get their OIDs in the
source's order, which is what lets the dumper read the copy back with exactly the source's schema
(tests/test_unchanged.py; building different tables' indexes at once on several connections
reorders them). Meanwhile, as soon as a table's key constraints exist (``ALTER TABLE ONLY t ADD
CONSTRAINT … PRIMARY KEY``, ``UNIQUE`` or ``EXCLUDE``: they take the table's ACCESS EXCLUSIVE
lock, which a read would hold up), its row hashes are taken on another connection: a read, which
the index builds after the keys do not wait for. Last, the column definitions of every table
complete the fingerprints (a primary key makes its columns NOT NULL, so they are read after
everything).

The fingerprint of the shadow database is that of the target after the swap (a rename changes no
row), and nothing else connects to the shadow database, so it is what the import produced. A
fingerprint that cannot be taken costs only the fingerprint (None: the caller takes it later);
a statement that fails fails the import, as before.
"""

from __future__ import annotations

import os
import queue
import re
import threading
from collections.abc import Callable

from .fingerprint import columns, combine, row_hashes, table_oids
from .sql import failing

_KEY = re.compile(r'ALTER TABLE ONLY (?P<table>.+?) ADD CONSTRAINT "(?:[^"]|"")+" '
                  r'(?:PRIMARY KEY|UNIQUE|EXCLUDE)\b', re.S)


def connections() -> int:
    """How many connections take row hashes beside the one running the statements: one per
    further core of this machine (the target is a local server, download.py's guard), 1 to 3."""
    return max(1, min(3, (os.cpu_count() or 2) - 1))


def last_keys(statements: list[dict], tables) -> dict[str, int]:
    """``{table: index of its last key constraint in statements}`` for those of ``tables`` that
    have one; the others may be read from the start."""
    found = {}
    for i, obj in enumerate(statements):
        if obj.get("kind") == "constraint" and (m := _KEY.match(obj["sql"])) and m.group("table") in tables:
            found[m.group("table")] = i
    return found


def run(statements: list[dict], main, connect: Callable[[], object],
        execute: Callable[[object, dict], None], workers: int | None = None) -> dict | None:
    """Run the post ``statements`` on ``main`` in their order with ``execute(conn, obj)`` (which
    raises the error for a statement that fails), taking the tables' row hashes meanwhile on
    ``workers`` connections made by ``connect()``. Returns the fingerprint of the tables, or None
    when it could not be taken."""
    with failing("cannot list the tables of the shadow database"):
        oids = table_oids(main)
    keyed = last_keys(statements, oids)
    after: dict[int, list[str]] = {}
    for table, i in keyed.items():
        after.setdefault(i, []).append(table)
    tasks: queue.Queue = queue.Queue()
    for table in oids:
        if table not in keyed:
            tasks.put(table)
    hashes: dict[str, tuple] = {}
    missed: list[str] = []
    conns, threads = [], []
    try:
        try:
            for _ in range(min(workers or connections(), max(1, len(oids)))):
                conns.append(connect())
        except Exception:  # noqa: BLE001 - without a connection of its own: no fingerprint here
            missed.append("")
        for conn in conns:
            thread = threading.Thread(target=_hash, args=(conn, tasks, hashes, missed),
                                      name="post-hash", daemon=True)
            thread.start()
            threads.append(thread)
        for i, obj in enumerate(statements):
            execute(main, obj)
            for table in after.get(i, []):
                tasks.put(table)
        for _ in threads:
            tasks.put(None)
        for thread in threads:
            thread.join()
    except BaseException:  # a statement failed, or Ctrl-C: stop the reads, then the threads
        while True:
            try:
                tasks.get_nowait()
            except queue.Empty:
                break
        for conn in conns:
            _cancel(conn)
        for _ in threads:
            tasks.put(None)
        for thread in threads:
            thread.join(10)
        raise
    finally:
        for conn in conns:
            conn.close()
    if missed or not threads and oids:
        return None
    try:
        with failing("cannot read the column definitions"):
            return {name: combine(columns(main, oid), hashes[name]) for name, oid in oids.items()}
    except Exception:  # noqa: BLE001 - only the fingerprint is lost: synco verify takes it later
        return None


def _hash(conn, tasks: queue.Queue, hashes: dict, missed: list) -> None:
    while (table := tasks.get()) is not None:
        try:
            hashes[table] = row_hashes(conn, table)
        except Exception:  # noqa: BLE001 - only the fingerprint is lost: synco verify takes it later
            missed.append(table)


def _cancel(conn) -> None:
    try:
        getattr(conn, "cancel_safe", conn.cancel)()
    except Exception:  # noqa: BLE001 - a broken or closed connection: nothing runs on it
        pass
