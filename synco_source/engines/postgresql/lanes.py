"""Parallel COPY into the shadow database: a few lanes, each a connection fed by its own thread.

The client hands over chunks in one stream (``Loader.load``); each chunk goes to the lane with the
fewest chunks waiting (then the fewest bytes so far), whatever its table, and a lane loads its
chunks in the order they came. The PostgreSQL server then parses and writes on several cores at
once, where one COPY at a time keeps one core busy, also while the server dumps a single large
table (its parts come one after another; chunks of one table, each its own COPY, go into it side
by side, rows in no particular order, as in any table). A lane that fails keeps its error and
drops what follows; the loader raises it at the next ``load`` or at ``commit``.
"""

from __future__ import annotations

import queue
import threading

from ...errors import DatabaseError
from .sql import error_text

LANES = 2
QUEUE_CHUNKS = 2


class Lane(threading.Thread):
    def __init__(self, conn, copy_sql: dict[str, str]) -> None:
        super().__init__(name="copy-lane", daemon=True)
        self.conn = conn
        self.copy_sql = copy_sql
        self.queue: queue.Queue = queue.Queue(maxsize=QUEUE_CHUNKS)
        self.error: DatabaseError | None = None
        self.bytes = 0
        self.stopped = False

    def run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is not None or self.stopped:
                continue
            table, chunk = item
            try:
                with self.conn.cursor() as cur, cur.copy(self.copy_sql[table]) as copy:
                    copy.write(chunk)
            except Exception as exc:
                self.error = DatabaseError(f"cannot load rows into table {table}: {error_text(exc)}")

    def put(self, table: str, chunk: bytes) -> None:
        self.bytes += len(chunk)
        self.queue.put((table, chunk))


class Lanes:
    def __init__(self, connections: list, copy_sql: dict[str, str]) -> None:
        self.lanes = [Lane(conn, copy_sql) for conn in connections]
        for lane in self.lanes:
            lane.start()

    def load(self, table: str, chunk: bytes) -> None:
        self.raise_error()
        min(self.lanes, key=lambda l: (l.queue.qsize(), l.bytes)).put(table, chunk)

    def raise_error(self) -> None:
        for lane in self.lanes:
            if lane.error is not None:
                raise lane.error

    def finish(self) -> None:
        """Wait until every lane has loaded what it was given; raise the first error."""
        for lane in self.lanes:
            lane.queue.put(None)
        for lane in self.lanes:
            lane.join()
        self.raise_error()

    def stop(self, timeout: float = 10.0) -> None:
        """Abandon the load: lanes drop what is queued; their connections are for the caller to
        close (the shadow database is dropped WITH (FORCE), which ends a COPY still running)."""
        for lane in self.lanes:
            lane.stopped = True
            try:
                lane.queue.put(None, timeout=timeout)
            except queue.Full:
                pass
        for lane in self.lanes:
            lane.join(timeout)
