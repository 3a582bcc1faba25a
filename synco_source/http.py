"""A read-only HTTP server for one session folder (standard library only).

It answers GET and HEAD for exactly two kinds of path, ``/<session id>/meta`` and
``/<session id>/o/<64 hex>``, with the object's bytes (single byte ranges allowed, for resuming).
Everything else is a 404 with an empty body: no listings, no other files, no path handling that
could be walked out of the folder, since the object name is checked against a strict pattern.
"""

from __future__ import annotations

import hmac
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import __version__, format

PATH_RE = re.compile(r"^/([0-9a-f]{32})/(meta|key|o/[0-9a-f]{64})$")  # key: FORMAT.md §9
RANGE_RE = re.compile(r"^bytes=(\d+)-(\d*)$")


class SessionServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], folder: Path, session_hex: str) -> None:
        self.folder = folder
        self.session_hex = session_hex
        super().__init__(address, Handler)

    def handle_error(self, request, client_address) -> None:
        pass  # a broken client is not our problem; keep serving

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="http", daemon=True)
        thread.start()
        return thread


class Handler(BaseHTTPRequestHandler):
    server: SessionServer
    server_version = f"synco-source/{__version__}"
    sys_version = ""
    timeout = 60
    protocol_version = "HTTP/1.1"
    error_message_format = ""  # errors (bad requests) say nothing but their status

    def log_message(self, format: str, *args) -> None:
        pass  # request logs would only be noise on the server's terminal

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _not_found(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _serve(self, body: bool) -> None:
        match = PATH_RE.match(self.path.split("?", 1)[0])
        if not match or not hmac.compare_digest(match.group(1), self.server.session_hex):
            return self._not_found()
        relpath = match.group(2)
        try:
            with open(self.server.folder / relpath, "rb") as fh:
                data = fh.read()
        except OSError:
            return self._not_found()
        start, end = 0, len(data)
        ranged = RANGE_RE.match(self.headers.get("Range", ""))
        if ranged and int(ranged.group(1)) < len(data):
            start = int(ranged.group(1))
            end = min(len(data), int(ranged.group(2)) + 1) if ranged.group(2) else len(data)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        if relpath == format.META_PATH:
            self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body:
            self.wfile.write(memoryview(data)[start:end])
