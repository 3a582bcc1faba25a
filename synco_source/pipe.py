"""The pipe transport (docs/FORMAT.md §8): the session served over stdin/stdout (standard library only).

``synco-source serve --stdio`` is started by ``synco pull`` at the end of an ssh (or kubectl exec,
or docker exec) command line. There is no listener: requests and answers travel as frames over the
one channel, several requests in flight, answers in any order, so the client fetches in parallel.

A frame is ``length(4) | request id(4) | kind(1) | body``, all integers big-endian, ``length``
counting the body only and at most ``MAX_FRAME``. Each side's first frame is a HELLO naming the
protocol versions it speaks; a GET asks for one object (``meta``, ``key`` or ``o/<64 hex>``, the
same paths as over HTTP) from an offset; the answer is DATA frames (the last one flagged),
NOT_FOUND or ERROR. An ERROR with request id 0 ends the connection.

The module holds the frame codec (the client's ``synco.pipe`` uses it too) and ``PipeServer``: a
reader thread, a small pool of workers reading objects from the session folder, one lock around
writes so that frames of concurrent answers interleave whole.
"""

from __future__ import annotations

import json
import os
import re
import struct
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from .http import open_inside

PROTOCOL = "synco-pipe"
VERSIONS = (1,)
MAX_FRAME = 1 << 20        # largest body of any frame, in bytes
WINDOW = 16                # requests a client may have in flight
WORKERS = 4
HEADER = struct.Struct(">IIB")

HELLO = 0x01
GET = 0x02
DATA = 0x03
NOT_FOUND = 0x04
ERROR = 0x05
KINDS = {HELLO: "HELLO", GET: "GET", DATA: "DATA", NOT_FOUND: "NOT_FOUND", ERROR: "ERROR"}
LAST = 0x01                # DATA flag: the last frame of this answer

PATH_RE = re.compile(r"^(meta|key|o/[0-9a-f]{64})$")
OFFSET = struct.Struct(">Q")


class ProtocolError(Exception):
    """The other side broke the protocol; the message is one line for the user."""


class VersionMismatch(ProtocolError):
    """The two sides speak no common version of the protocol."""


def read_exact(stream: BinaryIO, size: int) -> bytes | None:
    """``size`` bytes, or None at a clean end of the stream before the first byte."""
    parts = []
    got = 0
    while got < size:
        piece = stream.read(size - got)
        if not piece:
            if got == 0:
                return None
            raise ProtocolError(f"the stream ended inside a frame ({got} of {size} bytes)")
        parts.append(piece)
        got += len(piece)
    return b"".join(parts)


def read_frame(stream: BinaryIO, limit: int = MAX_FRAME) -> tuple[int, int, bytes] | None:
    """One frame as ``(request id, kind, body)``; None at the end of the stream."""
    head = read_exact(stream, HEADER.size)
    if head is None:
        return None
    length, rid, kind = HEADER.unpack(head)
    if length > limit:
        raise ProtocolError(f"a frame of {length} bytes is over the limit of {limit} "
                            f"(first bytes {head[:9].hex()}: not a synco pipe?)")
    if kind not in KINDS:
        raise ProtocolError(f"unknown frame kind {kind}")
    body = read_exact(stream, length) if length else b""
    if body is None:
        raise ProtocolError("the stream ended inside a frame")
    return rid, kind, body


def encode_frame(rid: int, kind: int, body: bytes = b"") -> bytes:
    if len(body) > MAX_FRAME:
        raise ValueError(f"frame body of {len(body)} bytes")
    return HEADER.pack(len(body), rid, kind) + body


def hello_body(**fields) -> bytes:
    return json.dumps({"protocol": PROTOCOL, "versions": list(VERSIONS), **fields},
                      separators=(",", ":"), sort_keys=True).encode("utf-8")


def parse_hello(body: bytes) -> tuple[int, dict]:
    """The other side's hello; returns (the version both speak, its fields)."""
    try:
        doc = json.loads(body)
    except ValueError:
        raise ProtocolError("the hello frame is not JSON") from None
    if not isinstance(doc, dict) or doc.get("protocol") != PROTOCOL:
        raise ProtocolError("the hello frame does not name the synco pipe protocol")
    theirs = doc.get("versions")
    if not isinstance(theirs, list):
        raise ProtocolError("the hello frame lists no versions")
    common = set(VERSIONS) & {v for v in theirs if isinstance(v, int)}
    if not common:
        raise VersionMismatch(f"no common pipe protocol version (this side speaks "
                            f"{list(VERSIONS)}, the other {theirs})")
    return max(common), doc


def encode_get(path: str, offset: int) -> bytes:
    return OFFSET.pack(offset) + path.encode("ascii")


def decode_get(body: bytes) -> tuple[str, int]:
    if len(body) < OFFSET.size:
        raise ProtocolError("a GET frame without an offset")
    try:
        path = body[OFFSET.size:].decode("ascii")
    except UnicodeDecodeError:
        path = ""
    return path, OFFSET.unpack(body[:OFFSET.size])[0]


class PipeServer:
    """Serve ``folder`` (a session folder) on a pair of binary streams until their end.

    ``on_end(reason, error)`` is called once when the client closes its side (error None) or
    breaks the protocol (error: one line); the caller then stops and removes the session."""

    def __init__(self, rfile: BinaryIO, wfile: BinaryIO, folder: Path, hello: dict,
                 on_end: Callable[[str, str | None], None], *, workers: int = WORKERS,
                 window: int = WINDOW) -> None:
        self.rfile, self.wfile, self.folder = rfile, wfile, folder
        self.hello = dict(hello, max_frame=MAX_FRAME, window=window)
        self.on_end = on_end
        self.window = window
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pipe")
        self.write_lock = threading.Lock()
        self.count_lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.ended = threading.Event()
        self.on_served: Callable[[str, int, int, int], None] | None = None  # (path, from, to, size)
        self.thread = threading.Thread(target=self._read, name="pipe-reader", daemon=True)

    def start(self) -> None:
        self._send(0, HELLO, hello_body(**self.hello))
        self.thread.start()

    def _send(self, rid: int, kind: int, body: bytes = b"") -> None:
        frame = encode_frame(rid, kind, body)
        with self.write_lock:
            self.wfile.write(frame)
            self.wfile.flush()

    def _end(self, reason: str, error: str | None) -> None:
        if not self.ended.is_set():
            self.ended.set()
            self.on_end(reason, error)

    def _read(self) -> None:
        try:
            first = read_frame(self.rfile)
            if first is None:
                return self._end("end of input", None)
            rid, kind, body = first
            if kind != HELLO:
                raise ProtocolError(f"the first frame is {KINDS[kind]}, not HELLO")
            parse_hello(body)
            while not self.ended.is_set():
                frame = read_frame(self.rfile)
                if frame is None:
                    return self._end("end of input", None)
                rid, kind, body = frame
                if kind != GET or rid == 0:
                    raise ProtocolError(f"unexpected {KINDS[kind]} frame (request id {rid})")
                with self.count_lock:
                    if self.in_flight >= self.window:
                        raise ProtocolError(f"more than {self.window} requests in flight")
                    self.in_flight += 1
                    self.max_in_flight = max(self.max_in_flight, self.in_flight)
                self.pool.submit(self._answer, rid, *decode_get(body))
        except ProtocolError as exc:
            try:
                self._send(0, ERROR, str(exc).encode("utf-8"))
            except OSError:
                pass
            self._end("a protocol error", f"pipe: {exc}")
        except OSError as exc:
            self._end("end of input", None if exc.errno is None else f"pipe: {exc.strerror}")

    def _answer(self, rid: int, path: str, offset: int) -> None:
        try:
            self._serve(rid, path, offset)
        except OSError:
            self._end("end of output", None)  # the client went away; nothing to tell it
        finally:
            with self.count_lock:
                self.in_flight -= 1

    def _serve(self, rid: int, path: str, offset: int) -> None:
        """The same paths and the same opening rule as the HTTP server (no symbolic link
        followed), read piece by piece: an object costs one frame of memory at a time."""
        opened = open_inside(self.folder, path) if PATH_RE.match(path) else None
        if opened is None:
            return self._send(rid, NOT_FOUND)
        fd, size = opened
        try:
            if offset > size:
                return self._send(rid, ERROR, f"offset {offset} is past the end of {path} "
                                  f"({size} bytes)".encode())
            step = MAX_FRAME - 1
            position = offset
            while True:
                piece = os.pread(fd, min(step, size - position), position)
                position += len(piece)
                last = position >= size or not piece
                self._send(rid, DATA, bytes([LAST if last else 0]) + piece)
                if last:
                    if self.on_served is not None:  # the per-download log (downloads.py)
                        self.on_served(path, offset, position, size)
                    return
        finally:
            os.close(fd)

    def close(self) -> None:
        self.ended.set()
        self.pool.shutdown(wait=True, cancel_futures=True)


def take_stdio() -> tuple[BinaryIO, BinaryIO]:
    """Take stdin and stdout for the protocol, and point file descriptors 0 and 1 elsewhere
    (/dev/null and stderr), so that nothing else (a stray print, a database tool we start) can
    read our requests or write into the frame stream."""
    rfd, wfd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    return os.fdopen(rfd, "rb"), os.fdopen(wfd, "wb", buffering=0)
