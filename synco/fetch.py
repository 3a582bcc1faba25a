"""Fetching a session's objects over HTTP: pooled, parallel, retried, in order.

``Remote.get(path)`` returns an object's bytes, retrying network errors and 5xx answers with
backoff; a 404 means the session is gone. ``ordered(items, work)`` runs ``work`` on a few threads
and yields the results in the order of ``items`` with a bounded number in flight, so memory stays
flat however many objects there are.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import httpx

from synco_source.errors import ServerUnreachable, SessionNotFound

T = TypeVar("T")
R = TypeVar("R")
# Test hooks (documented in docs/DEVELOPING.md): fewer retries and a shorter backoff make the
# failure tests fast; users have no reason to set them.
RETRIES = int(os.environ.get("SYNCO_HTTP_RETRIES", "5"))
BACKOFF = float(os.environ.get("SYNCO_HTTP_BACKOFF", "0.5"))
WORKERS = 8
WINDOW = 8


class Remote:
    def __init__(self, base_url: str, *, transport: httpx.BaseTransport | None = None,
                 retries: int = RETRIES, backoff: float = BACKOFF) -> None:
        self.base_url = base_url
        self.retries = retries
        self.backoff = backoff
        self.client = httpx.Client(
            base_url=base_url, transport=transport, follow_redirects=True,
            timeout=httpx.Timeout(30.0, connect=10.0),
            limits=httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS),
            headers={"User-Agent": "synco"})

    def get(self, path: str) -> bytes:
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                response = self.client.get(path)
            except httpx.TransportError as exc:
                problem = str(exc) or type(exc).__name__
            else:
                if response.status_code == 200:
                    return response.content
                if response.status_code in (404, 410):
                    raise SessionNotFound(url=self.base_url)
                problem = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    break
            if attempt < self.retries:
                time.sleep(delay)
                delay = min(delay * 2, 8.0)
        raise ServerUnreachable(problem, url=self.base_url)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "Remote":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
