"""The built-in HTTP server serves the session's objects and nothing else, and survives junk."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

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
