"""A read-only HTTP server for one session folder (standard library only).

It answers GET and HEAD for exactly two kinds of path, ``/<session id>/meta`` and
``/<session id>/o/<64 hex>``, with the object's bytes (single byte ranges allowed, for resuming).
Everything else is a 404 with an empty body: no listings, no other files, no path handling that
could be walked out of the folder, since the object name is checked against a strict pattern, and
no symbolic link inside the session folder is followed.

It is open to a network, so what one client can cost is bounded (issue 11.8):

- one thread accepts and watches the open connections; a connection costs a thread only while
  it has a request to answer, so idle or half-open connections (a port scanner, a browser's
  spare connections, an attacker holding hundreds) do not starve a real download;
- at most ``WORKERS`` requests are answered at once, ``WAITING`` more wait for a worker, and a
  request beyond that gets ``503`` (the client retries 5xx with backoff);
- an open connection that sends nothing for ``IDLE_TIMEOUT`` is closed, and beyond
  ``MAX_IDLE`` open connections the one idle the longest goes; a request's head must arrive within
  ``HEAD_TIMEOUT`` and every read or write must progress within ``IO_TIMEOUT``;
- objects go from the file to the socket with ``sendfile`` (nothing is read into memory), so a
  hundred slow readers cost sockets, not copies of the objects.
"""

from __future__ import annotations

import errno
import hmac
import io
import os
import queue
import re
import selectors
import socket
import stat
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from . import __version__, format
from .downloads import DONE_QUERY

PATH_RE = re.compile(r"^/([0-9a-f]{32})/(meta|key|o/[0-9a-f]{64})$")  # key: FORMAT.md §9
RANGE_RE = re.compile(r"^bytes=(\d+)-(\d*)$")

WORKERS = 32
WAITING = 64
MAX_IDLE = 512
IDLE_TIMEOUT = 30.0
HEAD_TIMEOUT = 10.0
IO_TIMEOUT = 30.0

MAX_HEAD = 65536
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\n"
        b"Connection: close\r\n\r\n")
TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n"
             b"Connection: close\r\n\r\n")


class SessionServer:
    """Serves ``folder`` (a session folder) as ``/<session_hex>/...``; ``folder`` and
    ``session_hex`` may be set after construction, before ``start``."""

    def __init__(self, address: tuple[str, int], folder: Path, session_hex: str) -> None:
        self.folder = folder
        self.session_hex = session_hex
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.socket = socket.create_server(address, family=family, backlog=128)
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()[:2]
        self._ready: queue.Queue = queue.Queue(WAITING)
        self._returned: deque = deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stop = threading.Event()
        self._loop_thread: threading.Thread | None = None
        self.refused = 0  # requests answered 503 because every worker was busy
        self.downloads = None  # a downloads.Downloads told what each client is sent, if set

    def start(self) -> threading.Thread:
        for number in range(WORKERS):
            threading.Thread(target=self._work, name=f"http-{number}", daemon=True).start()
        self._loop_thread = threading.Thread(target=self._loop, name="http", daemon=True)
        self._loop_thread.start()
        return self._loop_thread

    def shutdown(self) -> None:
        """Stop accepting and close the open connections; requests being answered end with
        their worker (daemon threads, bounded by ``IO_TIMEOUT``)."""
        self._stop.set()
        self._wake()
        if self._loop_thread is not None:
            self._loop_thread.join(5)

    def server_close(self) -> None:
        self._stop.set()
        for sock in (self.socket, self._wake_r, self._wake_w):
            sock.close()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass  # already awake (buffer full) or closed

    # ---------------------------------------------------------------- accept and watch

    def _loop(self) -> None:
        """Accept connections and read request heads without blocking; a connection goes to a
        worker only with a whole head, so a slow or idle client costs no thread."""
        selector = selectors.DefaultSelector()
        selector.register(self.socket, selectors.EVENT_READ, None)
        selector.register(self._wake_r, selectors.EVENT_READ, None)
        open_: dict[socket.socket, _Conn] = {}

        def watch(state: _Conn) -> None:
            if _has_head(state.buffer):
                return dispatch(state)
            while len(open_) >= MAX_IDLE:
                drop(min(open_.values(), key=lambda c: c.since))
            open_[state.sock] = state
            selector.register(state.sock, selectors.EVENT_READ, state)

        def drop(state: _Conn) -> None:
            selector.unregister(state.sock)
            del open_[state.sock]
            _close(state.sock)

        def dispatch(state: _Conn) -> None:
            try:
                self._ready.put_nowait(state)
            except queue.Full:
                self.refused += 1
                _refuse(state.sock)

        def readable(state: _Conn) -> None:
            try:
                piece = state.sock.recv(65536, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                piece = b""
            if not state.buffer:
                state.since = time.monotonic()  # the head's clock starts with its first byte
            state.buffer += piece
            if piece and not _has_head(state.buffer) and len(state.buffer) <= MAX_HEAD:
                return
            selector.unregister(state.sock)
            del open_[state.sock]
            if not piece and not state.buffer:
                _close(state.sock)  # closed by the client between requests
            elif len(state.buffer) > MAX_HEAD and not _has_head(state.buffer):
                _refuse(state.sock, TOO_LARGE)
            else:
                state.ended = not piece  # a half head, then the end: answered (400) and closed
                dispatch(state)

        try:
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.5):
                    if key.fileobj is self.socket:
                        for conn, address in _accept_all(self.socket):
                            watch(_Conn(conn, address))
                    elif key.fileobj is self._wake_r:
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except OSError:
                            pass
                    else:
                        readable(key.data)
                while self._returned:
                    state = self._returned.popleft()
                    state.since = time.monotonic()
                    watch(state)
                now = time.monotonic()
                for state in [c for c in open_.values()
                              if now - c.since > (HEAD_TIMEOUT if c.buffer else IDLE_TIMEOUT)]:
                    drop(state)
        finally:
            for state in list(open_.values()):
                drop(state)
            selector.close()

    # ---------------------------------------------------------------- answer

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                state = self._ready.get(timeout=0.5)
            except queue.Empty:
                continue
            keep = False
            try:
                head, state.buffer = _split_head(state.buffer)
                handler = Handler(state.sock, state.address, self, head)
                keep = not handler.close_connection and not state.ended
            except Exception:  # noqa: BLE001 - a broken client is not our problem; keep serving
                keep = False
            if keep and not self._stop.is_set():
                self._returned.append(state)
                self._wake()
            else:
                _close(state.sock)


class _Conn:
    """An open connection and the bytes of its next request read so far."""

    __slots__ = ("sock", "address", "buffer", "since", "ended")

    def __init__(self, sock: socket.socket, address: tuple) -> None:
        self.sock, self.address = sock, address
        self.buffer = b""
        self.since = time.monotonic()
        self.ended = False


HEAD_END_RE = re.compile(rb"\r?\n\r?\n")


def _has_head(buffer: bytes) -> bool:
    return HEAD_END_RE.search(buffer) is not None


def _split_head(buffer: bytes) -> tuple[bytes, bytes]:
    """(one request's head, what follows it: the start of a pipelined next request)."""
    end = HEAD_END_RE.search(buffer)
    return (buffer, b"") if end is None else (buffer[:end.end()], buffer[end.end():])


def _accept_all(listener: socket.socket):
    while True:
        try:
            conn, address = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # out of file descriptors and the like: try again later
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                time.sleep(0.05)
            return
        conn.settimeout(IO_TIMEOUT)
        yield conn, address


def _refuse(conn: socket.socket, answer: bytes = BUSY) -> None:
    try:
        conn.send(answer, socket.MSG_DONTWAIT)
    except OSError:
        pass
    _close(conn)


def _close(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()


def open_inside(folder: Path, relpath: str) -> tuple[int, int] | None:
    """(fd, size) of the regular file ``relpath`` under ``folder``, following no symbolic link:
    not the session folder itself, not ``o/``, not the object; None when there is none."""
    nofollow = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    parts = relpath.split("/")
    fd = -1
    try:
        dirfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | nofollow)
        try:
            for part in parts[:-1]:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=dirfd)
                os.close(dirfd)
                dirfd = inner
            fd = os.open(parts[-1], os.O_RDONLY | nofollow | getattr(os, "O_NONBLOCK", 0),
                         dir_fd=dirfd)
        finally:
            os.close(dirfd)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return None
        return fd, st.st_size
    except OSError:
        if fd != -1:
            os.close(fd)
        return None


class Handler(BaseHTTPRequestHandler):
    """One request on a connection (the server hands the connection back for the next one)."""

    server: SessionServer
    server_version = f"synco-source/{__version__}"
    sys_version = ""
    timeout = IO_TIMEOUT
    protocol_version = "HTTP/1.1"
    error_message_format = ""  # errors (bad requests) say nothing but their status

    def __init__(self, sock: socket.socket, address: tuple, server: SessionServer,
                 head: bytes) -> None:
        self.head = head
        super().__init__(sock, address, server)

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the socket's own file would hold the socket open after close()
        self.rfile = io.BytesIO(self.head)  # read by the watcher: nothing more is read here

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()

    def log_message(self, format: str, *args) -> None:
        pass  # request logs would only be noise on the server's terminal

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _empty(self, status: int, **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _serve(self, body: bool) -> None:
        self.connection.settimeout(IO_TIMEOUT)
        path, _, query = self.path.partition("?")
        match = PATH_RE.match(path)
        if not match or not hmac.compare_digest(match.group(1), self.server.session_hex):
            return self._empty(404)
        relpath = match.group(2)
        downloads = self.server.downloads
        opened = open_inside(self.server.folder, relpath)
        if opened is None:
            return self._empty(404)
        fd, size = opened
        with os.fdopen(fd, "rb", buffering=0) as fh:
            start, end = 0, size
            header = self.headers.get("Range")
            ranged = RANGE_RE.match(header.strip()) if header else None
            if ranged:
                first = int(ranged.group(1))
                last = int(ranged.group(2)) if ranged.group(2) else size - 1
                if first >= size or last < first:
                    return self._empty(416, Content_Range=f"bytes */{size}")
                start, end = first, min(last, size - 1) + 1
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
            else:
                self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(end - start))
            self.send_header("Accept-Ranges", "bytes")
            if relpath == format.META_PATH:
                self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if body and end > start:
                self.wfile.flush()
                sent = self.connection.sendfile(fh, start, end - start)
                if sent != end - start:
                    self.close_connection = True  # the client sees a short body and retries
                if downloads is not None and not (relpath == format.META_PATH and query == DONE_QUERY):
                    # (the final request is no part of the download: the client does not count it)
                    downloads.served(self.client_address[0], relpath, start, start + sent, size)
            if body and downloads is not None and relpath == format.META_PATH \
                    and query == DONE_QUERY:
                downloads.said_done(self.client_address[0])  # the client's final request
