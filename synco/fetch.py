"""Fetching a session's objects over HTTP: pooled, parallel, retried, in order.

``Remote.get(path, offset)`` returns an object's bytes from ``offset`` on, retrying network
errors and 5xx answers with backoff; a retry after a broken transfer asks only for the rest
(``Range``), and so can a later run that kept the start of an object (``offset``). A 404 means
the session (or that object) is gone. A response longer than the caller's ``limit`` is refused
(a source cannot make the client read without end), and redirects are followed only within the
server's own scheme, host and port. A session in an S3 bucket (docs/FORMAT.md §12) has a token
URL that is its index's presigned URL: each path then becomes the presigned URL the index gives
(fetched again when it lacks a path), with the SSE-C headers once ``unlock`` knows the session
key. ``ordered(items, work)`` runs ``work`` on a few threads and
yields the results in the order of ``items`` with a bounded number in flight, so memory stays
flat however many objects there are.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import httpx

from synco_source.errors import IntegrityError, ServerUnreachable, SessionNotFound, TokenError
from synco_source.s3 import INDEX_PATH, IndexError_, IndexUrls, sse_c_key

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)  # the CLI shows these lines (ui.library_messages)
# Test hooks (documented in docs/DEVELOPING.md): fewer retries and a shorter backoff make the
# failure tests fast; users have no reason to set them.
RETRIES = int(os.environ.get("SYNCO_HTTP_RETRIES", "5"))
BACKOFF = float(os.environ.get("SYNCO_HTTP_BACKOFF", "0.5"))
WORKERS = 8
WINDOW = 8
MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
META_LIMIT = 4 << 20        # a meta is a few hundred bytes; its progress and set list stay small
MANIFEST_LIMIT = 256 << 20  # sealed, compressed: a file set of about a million files
INDEX_LIMIT = 64 << 20      # an S3 session's index: 135 bytes an object, some 500,000 objects


def chunk_limit(size: int) -> int:
    """The most bytes a sealed chunk of ``size`` plaintext bytes can have: the header, the
    plaintext itself (a chunk that does not shrink is stored uncompressed) and a tag per segment
    (docs/FORMAT.md §3)."""
    return 24 + size + 16 * (size // 65536 + 2)


class Remote:
    def __init__(self, base_url: str, *, transport: httpx.BaseTransport | None = None,
                 retries: int = RETRIES, backoff: float = BACKOFF) -> None:
        self.index = None  # a session in a bucket: its presigned URLs (FORMAT.md §12)
        if IndexUrls.is_index_url(base_url):
            try:
                self.index = IndexUrls(base_url)
            except IndexError_ as exc:
                raise TokenError(f"its URL is not a session index's presigned URL ({exc})") from None
            base_url = self.index.folder  # what messages show: never the signed query
            self._index_lock = threading.Lock()
            self._index_loads = 0
        self.base_url = base_url
        self.retries = retries
        self.backoff = backoff
        self._said = 0  # the retry number said last: parallel requests failing together say it once
        self.received = 0  # bytes of response bodies kept (what the server's log line counts too)
        self._said_lock = threading.Lock()
        self.client = httpx.Client(
            base_url=base_url, transport=transport, follow_redirects=False,
            timeout=httpx.Timeout(30.0, connect=10.0),
            limits=httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS),
            # identity: byte ranges then count the object's own bytes
            headers={"User-Agent": "synco", "Accept-Encoding": "identity"})

    def get(self, path: str, offset: int = 0, *, limit: int | None = None,
            sink: Callable[[bytes], None] | None = None) -> bytes:
        """The bytes of ``path`` from ``offset`` on. ``limit``: the most bytes the whole object
        may have; ``sink`` sees every piece as it arrives (to keep the start of a large object
        across runs). A server that ignores ``Range`` (200) is read from the start and the bytes
        before ``offset`` are skipped; a ``416`` means there is nothing after ``offset``."""
        delay = self.backoff
        got = bytearray()
        problem = ""
        for attempt in range(self.retries + 1):
            try:
                data = self._attempt(path, offset, got, limit, sink)
                self._said = 0
                with self._said_lock:
                    self.received += len(data)
                return data
            except _Retry as exc:
                problem = str(exc)
                if exc.final:
                    break
                what = f"server answered {problem}"
            except httpx.TransportError as exc:
                problem = str(exc) or type(exc).__name__
                what = f"server not answering ({problem})"
            if attempt < self.retries:
                self._say_retry(what, attempt + 1, delay)
                time.sleep(delay)
                delay = min(delay * 2, 8.0)
        raise ServerUnreachable(problem, url=self.base_url)

    @property
    def presigned(self) -> bool:
        return self.index is not None

    def unlock(self, session_key: bytes, session_id: bytes) -> None:
        """The session key is known: an SSE-C session's objects can be asked for."""
        if self.index is not None:
            self.index.sse_key = sse_c_key(session_key, session_id)

    def _presigned(self, path: str) -> tuple[str, dict[str, str]]:
        """The URL and headers of ``path`` in a bucket session; the index is fetched again when
        it lacks the path (an object newer than the index we have); still missing: a 404."""
        loads = self._index_loads
        url = self.index.url(path)
        if url is None:
            with self._index_lock:
                if loads == self._index_loads:
                    self._load_index()
                url = self.index.url(path)
        if url is None:
            raise SessionNotFound(url=self.base_url)
        try:
            return url, self.index.headers(path)
        except IndexError_ as exc:
            raise IntegrityError(str(exc)) from None

    def _load_index(self) -> None:
        body = self.get(INDEX_PATH, limit=INDEX_LIMIT)
        try:
            self.index.load(body)
        except IndexError_ as exc:
            raise IntegrityError(f"the session's index: {exc}") from None
        self._index_loads += 1

    def _say_retry(self, what: str, number: int, delay: float) -> None:
        """"server not answering (...), retry 2 of 5 in 2 s", once per retry number however many
        requests in flight fail at the same time."""
        with self._said_lock:
            if number <= self._said:
                return
            self._said = number
        log.info("%s, retry %d of %d in %s s", what, number, self.retries, f"{delay:g}")

    def _attempt(self, path: str, offset: int, got: bytearray, limit: int | None,
                 sink: Callable[[bytes], None] | None) -> bytes:
        start = offset + len(got)
        url, extra = path, {}
        if self.index is not None:
            url, extra = ((self.index.index_url, {}) if path == INDEX_PATH
                          else self._presigned(path))
        for _ in range(MAX_REDIRECTS + 1):
            headers = {"Range": f"bytes={start}-"} if start else {}
            with self.client.stream("GET", url, headers={**headers, **extra}) as response:
                status = response.status_code
                if status in REDIRECTS:
                    url = self._same_server(response)
                    continue
                if status in (404, 410):
                    raise SessionNotFound(url=self.base_url)
                if status == 403 and self.index is not None and time.time() > self.index.expires:
                    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.index.expires))
                    raise SessionNotFound(f"its links expired at {when}", url=self.base_url)
                if status == 416 and start:
                    return bytes(got)
                if status == 206 and start:
                    skip = 0
                    if not response.headers.get("content-range", "").startswith(f"bytes {start}-"):
                        raise _Retry(f"the server answered another range than bytes={start}-")
                elif status == 200:
                    skip = start
                else:
                    raise _Retry(f"HTTP {status}", final=status < 500 and status != 429)
                length = response.headers.get("content-length", "")
                if limit is not None and length.isdigit() and start - skip + int(length) > limit:
                    raise _too_large(path, limit)
                for piece in response.iter_bytes():
                    if skip:
                        dropped = min(skip, len(piece))
                        piece, skip = piece[dropped:], skip - dropped
                        if not piece:
                            continue
                    got += piece
                    if limit is not None and offset + len(got) > limit:
                        raise _too_large(path, limit)
                    if sink is not None:
                        sink(piece)
                return bytes(got)
        raise _Retry(f"more than {MAX_REDIRECTS} redirects", final=True)

    def _same_server(self, response: httpx.Response) -> str:
        """Where a redirect points, if it stays on this server (same scheme, host and port, or
        the same host upgraded from http to https); anything else is refused (a redirect must
        not send the client, or what it fetches, to another host)."""
        location = response.headers.get("location", "")
        target = response.url.join(location)
        here = response.url
        same = (target.scheme, target.port) == (here.scheme, here.port)
        upgrade = here.scheme == "http" and target.scheme == "https"
        if not location or target.host != here.host or not (same or upgrade):
            raise _Retry(f"it redirects to another server ({target.scheme}://{target.host}); "
                         f"synco follows redirects only within {here.scheme}://{here.host}",
                         final=True)
        return str(target)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "Remote":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Retry(Exception):
    """A failed attempt; ``final`` when trying again cannot help (a 4xx, a foreign redirect)."""

    def __init__(self, problem: str, final: bool = False) -> None:
        super().__init__(problem)
        self.final = final


def _too_large(path: str, limit: int) -> IntegrityError:
    return IntegrityError(f"the server sent more than {limit:,} bytes for {path}, more than "
                          f"the object can have")


def ordered(items: Iterable[T], work: Callable[[T], R], *, workers: int = WORKERS,
            window: int = WINDOW) -> Iterator[tuple[T, R]]:
    """Yield ``(item, work(item))`` in the order of ``items``, computing ahead on threads."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch")
    pending: deque[tuple[T, Future]] = deque()
    try:
        for item in items:
            if len(pending) >= window:
                done, future = pending.popleft()
                yield done, future.result()
            pending.append((item, pool.submit(work, item)))
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
    finally:
        for _, future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
