"""SIGTERM and SIGHUP stop the client the way Ctrl-C does.

Without this, a ``kill``, a closed terminal or a dropped ssh session ends the client at once:
the shadow database and the staging folder (plaintext files) stay behind. Here both signals raise
:class:`Stopped`, a KeyboardInterrupt, in the main thread, so every ``finally`` and ``except
BaseException`` that cleans up after Ctrl-C runs for them too, and the CLI's edge reports them
like Ctrl-C (exit code 130).

The swap of a database must not stop half-way, and the engines guard it through SIGINT's
disposition, so a stop signal follows whatever Ctrl-C does at that moment:

* inside ``synco_source.engines.common.no_sigint`` (SIGINT is ``SIG_IGN``: past the point of no
  return) it is held back and delivered again as soon as SIGINT is no longer ignored;
* while the MySQL swap's own SIGINT handler is installed (``swap.Interrupts``: noted, the running
  statement killed, rolled back at a safe point) that handler gets it, as if Ctrl-C was pressed. A Ctrl-C ignored from the start (a background job of a shell script) stays ignored, but
through a handler that does nothing, so that ``SIG_IGN`` keeps meaning "inside the swap"; a stop
signal ignored from the start (``nohup``) stays ignored.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
RETRY = 0.05  # seconds between looks for the end of a swap, for a held-back signal


class Stopped(KeyboardInterrupt):
    """A stop signal other than Ctrl-C (SIGTERM, SIGHUP)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(self.name)


def _ignored_from_start(signum, frame) -> None:
    """Ctrl-C was ignored when the client started: it stays ignored."""


def shielded() -> bool:
    """Whether the main thread is inside ``no_sigint`` (a swap that must finish)."""
    return signal.getsignal(signal.SIGINT) is signal.SIG_IGN


class _Handler:
    def __init__(self) -> None:
        self.held: set[int] = set()
        self.lock = threading.Lock()

    def __call__(self, signum, frame) -> None:
        if shielded():
            self._hold(signum)
            return
        current = signal.getsignal(signal.SIGINT)
        if callable(current) and current not in (signal.default_int_handler, _ignored_from_start):
            current(signal.SIGINT, frame)  # a swap taking Ctrl-C its own way takes this stop too
            return
        raise Stopped(signum)

    def _hold(self, signum: int) -> None:
        with self.lock:
            if signum in self.held:
                return
            self.held.add(signum)
        threading.Thread(target=self._deliver_later, args=(signum,), daemon=True,
                         name=f"synco-held-{signum}").start()

    def _deliver_later(self, signum: int) -> None:
        while shielded():
            time.sleep(RETRY)
        with self.lock:
            self.held.discard(signum)
        os.kill(os.getpid(), signum)


@contextlib.contextmanager
def stop_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise Stopped in the main thread (see above)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {}
    handler = _Handler()
    for signum in STOP_SIGNALS:
        old = signal.getsignal(signum)
        if old is signal.SIG_IGN:
            continue
        saved[signum] = old
        signal.signal(signum, handler)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        saved[signal.SIGINT] = signal.SIG_IGN
        signal.signal(signal.SIGINT, _ignored_from_start)
    try:
        yield
    finally:
        for signum, old in saved.items():
            signal.signal(signum, old)
