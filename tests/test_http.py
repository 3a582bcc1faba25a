"""The built-in HTTP server serves the session's objects and nothing else, and survives junk."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from pathlib import Path

from sourceproc import Source
from synco_source.format import Token


def fetch(url: str, method: str = "GET", headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while piece := sock.recv(65536):
            chunks.append(piece)
        return b"".join(chunks)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("files")
    (folder / "a.txt").write_text("hello\n")
    with Source(["--no-db", "--files", f"f={folder}", "--listen", "127.0.0.1:0"]) as source:
        source.wait_ready()
        token = Token.decode(source.token)
        yield source, token


def test_serves_meta_and_objects_only(served):
    source, token = served
    status, body = fetch(token.url + "meta")
    assert status == 200 and body.startswith(b"SYNCO\x01\x01")
    base = token.url.rsplit("/", 2)[0] + "/"
    sid = token.session_id.hex()
    for path in ["", sid, f"{sid}/", f"{sid}/o/", f"{sid}/o", f"{sid}/index.html",
                 f"{sid}/o/index.html", f"{sid}/../{sid}/meta", f"{sid}/o/{'0' * 64}",
                 f"{sid}/o/{'A' * 64}", f"{'0' * 32}/meta", f"{sid}/meta/x", "etc/passwd",
                 f"{sid}/o/..%2f..%2fmeta", f"{sid}/%2e%2e/meta"]:
        status, body = fetch(base + path)
        assert status == 404 and body == b"", path


def test_head_and_ranges(served):
    source, token = served
    status, body = fetch(token.url + "meta", method="HEAD")
    assert status == 200 and body == b""
    whole = fetch(token.url + "meta")[1]
    status, part = fetch(token.url + "meta", headers={"Range": "bytes=5-9"})
    assert status == 206 and part == whole[5:10]


def test_survives_junk(served):
    source, token = served
    port = int(token.url.split(":")[2].split("/")[0])
    for junk in [b"", b"\x00\xff" * 1000, b"GET\r\n\r\n", b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 500,
                 b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", b"BREW /pot HTCPCP/1.0\r\n\r\n",
                 b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n"]:
        answer = raw(port, junk)
        assert not answer or answer.split(b" ", 2)[1] in (b"400", b"404", b"414", b"431", b"501")
    assert fetch(token.url + "meta")[0] == 200
    assert source.proc.poll() is None


# ---------------------------------------------------------------- hardening (issue 11.8)

import os
import subprocess
import sys
import threading
import time

from synco_source.http import SessionServer

SID = "5" * 32
NAME = "a" * 64


@pytest.fixture
def folder_server(tmp_path):
    """The server class on a session folder made by hand: (server, session folder, base URL)."""
    folder = tmp_path / SID
    (folder / "o").mkdir(parents=True)
    (folder / "meta").write_bytes(b"M" * 100)
    (folder / "o" / NAME).write_bytes(os.urandom(5_000_000))
    server = SessionServer(("127.0.0.1", 0), folder, SID)
    server.start()
    yield server, folder, f"http://127.0.0.1:{server.server_address[1]}/{SID}/"
    server.shutdown()
    server.server_close()


def test_reversed_or_out_of_range_ranges_get_416(folder_server):
    server, folder, url = folder_server
    for header in ["bytes=9-5", "bytes=100-", "bytes=100-200", "bytes=5000-4999"]:
        request = urllib.request.Request(url + "meta", headers={"Range": header})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == 416, header
        assert caught.value.headers["Content-Range"] == "bytes */100", header
        assert caught.value.read() == b""
    status, part = fetch(url + "meta", headers={"Range": "bytes=90-1000"})
    assert status == 206 and part == b"M" * 10  # an end past the object is the object's end
    status, whole = fetch(url + "meta", headers={"Range": "bytes=-5"})  # not a form we honour
    assert status == 200 and len(whole) == 100


def test_no_symbolic_link_is_followed_inside_the_session_folder(folder_server, tmp_path):
    server, folder, url = folder_server
    outside = tmp_path / "outside"
    (outside / "o").mkdir(parents=True)
    (outside / "secret").write_bytes(b"not for you")
    (outside / "o" / ("b" * 64)).write_bytes(b"not for you")
    (folder / "o" / ("c" * 64)).symlink_to(outside / "secret")
    assert fetch(url + "o/" + "c" * 64) == (404, b"")
    (folder / "meta").unlink()
    (folder / "meta").symlink_to(outside / "secret")
    assert fetch(url + "meta") == (404, b"")
    os.rename(folder / "o", tmp_path / "o-real")
    (folder / "o").symlink_to(outside / "o")
    assert fetch(url + "o/" + "b" * 64) == (404, b"")
    # the session folder itself a link (swapped after the start)
    os.rename(folder, tmp_path / "moved")
    folder.symlink_to(outside)
    assert fetch(url + "o/" + "b" * 64) == (404, b"")


def test_a_download_succeeds_while_200_idle_connections_are_open(folder_server):
    """Idle connections cost a socket each, not a thread: the number of threads stays bounded
    and a real request is answered at once."""
    server, folder, url = folder_server
    port = server.server_address[1]
    before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(200)]
    try:
        time.sleep(0.5)
        started = time.monotonic()
        status, body = fetch(url + "o/" + NAME)
        assert status == 200 and body == (folder / "o" / NAME).read_bytes()
        assert time.monotonic() - started < 5
        assert threading.active_count() - before <= 2  # not one thread per connection
        # half-sent requests too: each may hold a worker only until its head deadline
        for sock in idle[:50]:
            sock.sendall(b"GET /")
        time.sleep(0.5)
        assert fetch(url + "meta")[0] == 200
    finally:
        for sock in idle:
            sock.close()


def test_idle_connections_are_closed_after_the_idle_timeout(monkeypatch, tmp_path):
    from synco_source import http

    monkeypatch.setattr(http, "IDLE_TIMEOUT", 1.0)
    server = SessionServer(("127.0.0.1", 0), tmp_path, SID)
    server.start()
    try:
        sock = socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10)
        started = time.monotonic()
        assert sock.recv(10) == b""  # closed by the server
        assert 0.9 < time.monotonic() - started < 5
    finally:
        server.shutdown()
        server.server_close()


SERVE_FOLDER = """
import sys, time
from pathlib import Path
from synco_source.http import SessionServer
server = SessionServer(("127.0.0.1", 0), Path(sys.argv[1]), sys.argv[2])
server.start()
print(server.server_address[1], flush=True)
time.sleep(600)
"""


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_slow_readers_do_not_grow_the_server(tmp_path):
    """100 clients ask for a 4 MiB object and read nothing: the server's peak RSS grows by a few
    MiB (objects go out with sendfile), not by 100 copies of the object (it did by 350 MB)."""
    folder = tmp_path / SID
    (folder / "o").mkdir(parents=True)
    (folder / "o" / NAME).write_bytes(os.urandom(4 << 20))
    proc = subprocess.Popen([sys.executable, "-c", SERVE_FOLDER, str(folder), SID],
                            stdout=subprocess.PIPE, text=True)
    readers = []
    try:
        port = int(proc.stdout.readline())
        time.sleep(0.3)
        base = peak_rss_kib(proc.pid)
        request = f"GET /{SID}/o/{NAME} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        for _ in range(100):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            sock.sendall(request)
            readers.append(sock)
        time.sleep(3)
        grown = (peak_rss_kib(proc.pid) - base) / 1024
        print(f"peak RSS {base / 1024:.0f} MiB at rest, +{grown:.1f} MiB with 100 slow readers")
        assert grown < 40, f"peak RSS grew by {grown:.0f} MiB"
        # and the slow readers still get their bytes when they read
        sock = readers[0]
        sock.settimeout(30)
        got = 0
        while got < (4 << 20):
            piece = sock.recv(1 << 20)
            assert piece
            got += len(piece)
    finally:
        for sock in readers:
            sock.close()
        proc.kill()
        proc.wait()


def test_listening_on_every_interface_is_said_on_start(tmp_path):
    """The default listens on every interface (the laptop must reach it); the server says so and
    how to keep it private, and says nothing of the kind for a loopback address."""
    (tmp_path / "a.txt").write_text("a\n")
    with Source(["--no-db", "--files", f"f={tmp_path}", "--listen", "0.0.0.0:0"]) as source:
        source.wait_ready()
    assert "listening on every network interface" in source.stderr
    assert "--listen 127.0.0.1:" in source.stderr
    with Source(["--no-db", "--files", f"f={tmp_path}", "--listen", "127.0.0.1:0"]) as source:
        source.wait_ready()
    assert "every network interface" not in source.stderr


def test_a_half_sent_head_is_dropped_after_the_head_timeout(monkeypatch, tmp_path):
    """A client that starts a request and stalls (slowloris) holds no worker, and is closed."""
    from synco_source import http

    monkeypatch.setattr(http, "HEAD_TIMEOUT", 1.0)
    server = SessionServer(("127.0.0.1", 0), tmp_path, SID)
    server.start()
    try:
        sock = socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10)
        sock.sendall(b"GET /" + SID.encode())
        started = time.monotonic()
        assert sock.recv(10) == b""
        assert 0.9 < time.monotonic() - started < 5
    finally:
        server.shutdown()
        server.server_close()


def test_requests_beyond_the_workers_and_the_queue_get_503(monkeypatch, folder_server):
    """With every worker held by a reader that does not read and the queue full, a further
    request is answered 503 at once (the client retries it), not left hanging."""
    from synco_source import http

    monkeypatch.setattr(http, "WORKERS", 2)
    monkeypatch.setattr(http, "WAITING", 1)
    _, folder, _ = folder_server
    server = SessionServer(("127.0.0.1", 0), folder, SID)
    server.start()
    port = server.server_address[1]
    request = f"GET /{SID}/o/{NAME} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    stalled = []
    try:
        for _ in range(3):  # two workers stuck sending 5 MB nobody reads, one request waiting
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", port))
            sock.sendall(request)
            stalled.append(sock)
            time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as late:
            late.sendall(request)
            assert late.recv(100).startswith(b"HTTP/1.1 503 ")
        assert server.refused == 1
    finally:
        for sock in stalled:
            sock.close()
        server.shutdown()
        server.server_close()
