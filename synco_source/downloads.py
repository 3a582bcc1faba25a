"""Who downloaded what: one line per download on stderr, and the end of ``serve --once``.

A download is what one client fetches: over HTTP a client is an IP address (a download uses
several connections from several ports), over the pipe it is the pipe's peer. Its line names the
client, the sets it fetched something of, how many objects and bytes it was sent, and how long it
took, e.g.::

    synco-source: download by 192.0.2.7: db, uploads; 1065 objects, 423,118,002 bytes in 12.3 s; complete

A download is **complete** once the client has either

- fetched in full, at least once (in one request or several ranged ones), every object of the
  ready session: the wrapped key (sessions made with --recipient), the manifest of every set the
  ready meta names and every chunk those manifests name; or
- said that it is done: a request for the meta with the query ``?done``, its final request.

A client that takes chunks from its own cache, or asks for some sets only (``--only``), completes
only in the second way. A download that has not completed is logged once its client has asked for
nothing for ``IDLE`` seconds, or when the server stops, as ``incomplete``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

IDLE = 120.0  # seconds without a request after which a client's download is over
DONE_QUERY = "done"


class Visit:
    """One client's download so far."""

    def __init__(self, client: str) -> None:
        self.client = client
        self.first = self.last = time.monotonic()
        self.bytes = 0
        self.whole: set[str] = set()           # objects sent in full
        self.pieces: dict[str, list[tuple[int, int]]] = {}  # the others: byte ranges sent
        self.sent: set[str] = set()            # every object something was sent of
        self.done = False


class Downloads:
    """Counts what each client is sent; ``say`` gets the lines, ``on_complete(client)`` is
    called once, for the first download that completes."""

    def __init__(self, say: Callable[[str], None],
                 on_complete: Callable[[str], None] | None = None, idle: float = IDLE) -> None:
        self.say = say
        self.on_complete = on_complete
        self.idle = idle
        self.lock = threading.Lock()
        self.visits: dict[str, Visit] = {}
        self.required: dict[str, tuple[str, ...]] | None = None  # object -> sets, once ready
        self.completed = 0
        self.logged: set[str] = set()  # clients whose download was logged complete
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="downloads", daemon=True)
        self.thread.start()

    def expect(self, required: dict[str, tuple[str, ...]]) -> None:
        """The session is ready: ``required`` maps each object a complete download has
        fetched to the sets it belongs to (the key to none)."""
        with self.lock:
            self.required = dict(required)
            finished = [v for v in self.visits.values() if self._complete(v)]
        for visit in finished:
            self._finish(visit)

    def served(self, client: str, path: str, start: int, end: int, size: int) -> None:
        """``client`` was sent bytes ``start``..``end`` of ``path`` (``meta``, ``key`` or
        ``o/<name>``), an object of ``size`` bytes."""
        name = path[2:] if path.startswith("o/") else path
        with self.lock:
            visit = self._visit(client)
            visit.bytes += max(0, end - start)
            if name == "meta" or end <= start:
                return
            visit.sent.add(name)
            if name not in visit.whole:
                ranges = _merge(visit.pieces.get(name, []) + [(start, end)])
                if ranges[0][0] <= 0 and ranges[0][1] >= size:
                    visit.whole.add(name)
                    visit.pieces.pop(name, None)
                else:
                    visit.pieces[name] = ranges
            finished = self._complete(visit)
        if finished:
            self._finish(visit)

    def said_done(self, client: str) -> None:
        """The client's final request: its download is complete, whatever it fetched."""
        with self.lock:
            visit = self.visits.get(client)
            if visit is None:  # never seen
                return
            if not visit.sent and client in self.logged:
                # only the final meta request of a download logged already (complete by the first rule)
                del self.visits[client]
                return
            visit.done = True
        self._finish(visit)

    def close(self) -> None:
        """The server stops: every download not logged yet is logged now."""
        self.stopped.set()
        with self.lock:
            left = list(self.visits.values())
            self.visits.clear()
        for visit in left:
            self.say(self._line(visit, "incomplete"))

    # ---------------------------------------------------------------- internals

    def _visit(self, client: str) -> Visit:
        visit = self.visits.get(client)
        if visit is None:
            visit = self.visits[client] = Visit(client)
        visit.last = time.monotonic()
        return visit

    def _complete(self, visit: Visit) -> bool:
        return visit.done or (self.required is not None and bool(self.required)
                              and visit.whole.issuperset(self.required))

    def _finish(self, visit: Visit) -> None:
        with self.lock:
            if self.visits.get(visit.client) is not visit:
                return  # logged already
            del self.visits[visit.client]
            self.logged.add(visit.client)
            self.completed += 1
            first = self.completed == 1
        self.say(self._line(visit, "complete"))
        if first and self.on_complete is not None:
            self.on_complete(visit.client)

    def _line(self, visit: Visit, how: str) -> str:
        required = self.required or {}
        sets = sorted({s for name in visit.sent for s in required.get(name, ())})
        seconds = max(0.0, visit.last - visit.first)
        return (f"download by {visit.client}: {', '.join(sets) or 'no set'}; "
                f"{len(visit.sent)} objects, {visit.bytes:,} bytes in {seconds:.1f} s; {how}")

    def _watch(self) -> None:
        while not self.stopped.wait(1.0):
            now = time.monotonic()
            with self.lock:
                quiet = [v for v in self.visits.values() if now - v.last >= self.idle]
                for visit in quiet:
                    del self.visits[visit.client]
            for visit in quiet:
                self.say(self._line(visit, "incomplete"))


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
