"""The client of the pipe transport (docs/FORMAT.md §8): a session fetched over a child process's
stdin/stdout, e.g. ``ssh host synco-source serve --stdio``.

``PipeSource`` has the contract of ``fetch.Remote`` (``get(path)`` returns an object's bytes or
raises ``SessionNotFound`` / ``ServerUnreachable``; ``close()``), so ``Download`` runs over either.
Any number of threads may call ``get`` at once: each request gets an id, at most the server's
window of them are in flight, and one reader thread hands every answer to the thread waiting for
it. The child's stderr is read by another thread, forwarded line by line and its last lines kept,
so that an error can say what the other side said before it went away.
"""

from __future__ import annotations

import itertools
import shlex
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable

from synco_source import format
from synco_source import pipe as proto
from synco_source.errors import ServerUnreachable, SessionNotFound, UnsupportedFormat

MAX_OBJECT = 1 << 30       # an answer larger than this is not a synco object
TAIL_LINES = 20


class _Reply:
    __slots__ = ("parts", "size", "done", "data", "error")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.done = threading.Event()
        self.data: bytes | None = None
        self.error: Exception | None = None


def _print_stderr(line: str) -> None:
    print(f"remote: {line}", file=sys.stderr, flush=True)


class PipeSource:
    """A running ``synco-source serve --stdio`` (locally or at the end of ssh) and its session.

    ``hello`` is the server's hello: ``session`` (hex), and ``key`` (hex) only when the server
    was not given a recipient; see ``open_session``."""

    def __init__(self, argv: list[str], env: dict | None = None, *,
                 on_stderr: Callable[[str], None] | None = _print_stderr,
                 name: str | None = None, timeout: float = 120.0,
                 hello_timeout: float | None = None) -> None:
        self.name = name or _short(argv)
        self.timeout = timeout
        self.on_stderr = on_stderr
        self.stderr_tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.hello: dict = {}
        self.version = 0
        self.max_in_flight = 0
        self.received = 0  # bytes of objects received (what the server's log line counts too)
        self._in_flight = 0
        self._pending: dict[int, _Reply] = {}
        self._ids = itertools.count(1)
        self._issued = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._hello_seen = threading.Event()
        self._dead: Exception | None = None
        self._closed = False
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=env, bufsize=0)
        except OSError as exc:
            raise ServerUnreachable(f"cannot start {argv[0]}: {exc.strerror}",
                                    url=self.name) from None
        self._stderr_thread = threading.Thread(target=self._read_stderr, name="pipe-stderr",
                                               daemon=True)
        self._stderr_thread.start()
        self._reader = threading.Thread(target=self._read, name="pipe-reader", daemon=True)
        self._reader.start()
        try:
            self._send(0, proto.HELLO, proto.hello_body())
        except ServerUnreachable:
            pass  # the reader reports why the process went away
        if not self._hello_seen.wait(hello_timeout):
            self.close(wait=1.0)
            raise ServerUnreachable(f"no answer within {hello_timeout:.0f} s", url=self.name)
        if self._dead is not None:
            self.close(wait=1.0)
            raise self._dead
        window = self.hello.get("window")
        window = window if type(window) is int else 1
        self._slots = threading.BoundedSemaphore(max(1, min(window, proto.WINDOW)))

    # ------------------------------------------------------------ reading

    def _read_stderr(self) -> None:
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not line.strip():
                continue
            self.stderr_tail.append(line)
            if self.on_stderr is not None:
                try:
                    self.on_stderr(line)
                except Exception:  # noqa: BLE001 - a broken callback must not stop the reading
                    pass

    def _read(self) -> None:
        try:
            first = proto.read_frame(self.proc.stdout)
            if first is None:
                return self._die(None)
            rid, kind, body = first
            if kind == proto.ERROR:
                raise proto.ProtocolError(body.decode("utf-8", "replace"))
            if kind != proto.HELLO:
                raise proto.ProtocolError(f"the first frame is {proto.KINDS[kind]}, not HELLO")
            self.version, self.hello = proto.parse_hello(body)
            self._hello_seen.set()
            while True:
                frame = proto.read_frame(self.proc.stdout)
                if frame is None:
                    return self._die(None)
                self._dispatch(*frame)
        except proto.VersionMismatch as exc:
            self._die(str(exc), UnsupportedFormat)
        except proto.ProtocolError as exc:
            self._die(f"it does not speak the synco pipe protocol: {exc}"
                      if not self._hello_seen.is_set() else f"protocol error: {exc}")
        except (OSError, ValueError) as exc:
            self._die(str(exc))

    def _dispatch(self, rid: int, kind: int, body: bytes) -> None:
        if rid == 0:
            if kind == proto.ERROR:
                raise proto.ProtocolError(f"the server says: {body.decode('utf-8', 'replace')}")
            raise proto.ProtocolError(f"unexpected {proto.KINDS[kind]} frame for request 0")
        with self._lock:
            reply = self._pending.get(rid)
            issued = self._issued
        if reply is None:
            if rid <= issued:
                return  # the late answer to a request that timed out: nobody waits for it
            raise proto.ProtocolError(f"an answer to request {rid}, which was not asked")
        if kind == proto.DATA:
            if not body:
                raise proto.ProtocolError("a DATA frame without flags")
            reply.parts.append(body[1:])
            reply.size += len(body) - 1
            if reply.size > MAX_OBJECT:
                raise proto.ProtocolError(f"an answer of more than {MAX_OBJECT} bytes")
            if body[0] & proto.LAST:
                reply.data = b"".join(reply.parts)
                reply.parts = []
                self._finish(rid, reply)
        elif kind == proto.NOT_FOUND:
            reply.error = SessionNotFound(url=self.name)
            self._finish(rid, reply)
        elif kind == proto.ERROR:
            reply.error = ServerUnreachable(body.decode("utf-8", "replace"), url=self.name)
            self._finish(rid, reply)
        else:
            raise proto.ProtocolError(f"unexpected {proto.KINDS[kind]} frame from the server")

    def _finish(self, rid: int, reply: _Reply) -> None:
        with self._lock:
            self._pending.pop(rid, None)
        reply.done.set()

    def _die(self, problem: str | None, error_class: type = ServerUnreachable) -> None:
        """The channel is gone: every waiting and future request fails with what we know."""
        if self._dead is None:
            try:
                code = self.proc.wait(timeout=3 if problem is None else 0.5)
            except subprocess.TimeoutExpired:
                code = None
            self._stderr_thread.join(2)
            if problem is None:
                problem = ("it ended" if code is None else f"it exited with code {code}")
                if self._closed:
                    problem = "the connection was closed"
            last = self.stderr_tail[-1] if self.stderr_tail else ""
            if last:
                problem += f"; its last message: {last}"
            self._dead = (ServerUnreachable(problem, url=self.name)
                          if error_class is ServerUnreachable else error_class(problem))
        with self._lock:
            pending, self._pending = self._pending, {}
        for reply in pending.values():
            reply.error = self._dead
            reply.done.set()
        self._hello_seen.set()

    # ------------------------------------------------------------ requests

    def _send(self, rid: int, kind: int, body: bytes) -> None:
        frame = proto.encode_frame(rid, kind, body)
        with self._write_lock:
            try:
                self.proc.stdin.write(frame)
                self.proc.stdin.flush()
            except (OSError, ValueError):
                raise self._dead or ServerUnreachable("its input is closed",
                                                      url=self.name) from None

    def get(self, path: str, offset: int = 0) -> bytes:
        """The object at ``path`` (``meta``, ``key`` or ``o/<64 hex>``) from byte ``offset`` on."""
        if not proto.PATH_RE.match(path):
            raise ValueError(f"not an object path: {path!r}")
        if self._dead is not None:
            raise self._dead
        if not self._slots.acquire(timeout=self.timeout):
            raise ServerUnreachable(f"no free request slot within {self.timeout:.0f} s",
                                    url=self.name)
        try:
            reply = _Reply()
            with self._lock:
                if self._dead is not None:
                    raise self._dead
                rid = self._issued = next(self._ids)
                self._pending[rid] = reply
                self._in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self._in_flight)
            try:
                self._send(rid, proto.GET, proto.encode_get(path, offset))
                if not reply.done.wait(self.timeout):
                    raise ServerUnreachable(f"no answer for {path} within {self.timeout:.0f} s",
                                            url=self.name)
            finally:
                with self._lock:
                    self._in_flight -= 1
                    self._pending.pop(rid, None)
            if reply.error is not None:
                raise reply.error
            with self._lock:
                self.received += len(reply.data)
            return reply.data
        finally:
            self._slots.release()

    # ------------------------------------------------------------ ending

    def close(self, wait: float = 5.0) -> int | None:
        """End the session: close the child's stdin (it removes what it published and exits),
        wait a little, then terminate and finally kill it. Returns its exit code."""
        if self._closed:
            return self.proc.returncode
        self._closed = True
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(wait)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        self._stderr_thread.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass
        return self.proc.returncode

    def __enter__(self) -> "PipeSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _short(argv: list[str]) -> str:
    text = shlex.join(argv)
    return text if len(text) <= 80 else text[:77] + "..."


def open_session(source: PipeSource, identity=None) -> format.SessionCrypto:
    """The keys of the session behind ``source``: from its hello when the server was started
    without a recipient, else unwrapped from its ``key`` object with ``identity``
    (a ``synco.keys.Identity``, e.g. the ephemeral one whose public key was passed)."""
    try:
        sid = bytes.fromhex(source.hello.get("session", ""))
    except (TypeError, ValueError):
        sid = b""
    if len(sid) != 16:
        raise UnsupportedFormat("the pipe's hello names no session")
    if "key" in source.hello:
        try:
            key = bytes.fromhex(source.hello["key"])
        except (TypeError, ValueError):
            key = b""
        if len(key) != 32:
            raise UnsupportedFormat("the pipe's hello has a malformed session key")
        return format.SessionCrypto(key, sid)
    if identity is None:
        raise UnsupportedFormat("the session's key is wrapped to a recipient, and no identity "
                                "was given to unwrap it")
    return format.SessionCrypto(identity.unwrap(source.get(format.KEY_PATH), sid), sid)
