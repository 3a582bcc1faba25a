"""What every engine's load side shares: the names of the shadow and previous databases, the
guard that keeps Ctrl-C out of a swap, the fault points of the swap tests, and the file writing
of the SQL script writers."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import BinaryIO

from ..errors import DatabaseError, LocalIOError

SHADOW, PREV = "__synco_new", "__synco_prev"
# A test names a point of the swap here; the process kills itself (SIGKILL) when it gets there,
# so the tests can check what the next run finds at exactly that moment.
FAULT_ENV = "SYNCO_TEST_SWAP_FAULT"


def fault_point(name: str) -> None:
    """Die at once, as under kill -9, when the swap tests ask for it at this point."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def no_previous_copy(target: str, prev: str) -> DatabaseError:
    """What ``restore`` says when no earlier download replaced the database."""
    return DatabaseError(f"there is no previous copy of {target!r} to restore (no database {prev!r})",
                         hint="restore works after a download replaced the database")


@contextlib.contextmanager
def no_sigint() -> Iterator[None]:
    """Ignore Ctrl-C inside the block (main thread only), so a swap cannot stop half-way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


class ScriptFile:
    """The output side of a SqlWriter: bytes and text into a binary file, errors as LocalIOError."""

    def __init__(self, fileobj: BinaryIO) -> None:
        self.out = fileobj

    def _write(self, data: bytes) -> None:
        try:
            self.out.write(data)
        except OSError as exc:
            raise LocalIOError(f"cannot write the SQL script: {exc}") from None

    def _flush(self) -> None:
        try:
            self.out.flush()
        except OSError as exc:
            raise LocalIOError(f"cannot write the SQL script: {exc}") from None

    def _text(self, text: str) -> None:
        self._write(text.encode("utf-8", "surrogateescape"))
