"""The pipe transport (docs/FORMAT.md §8): a real ``synco-source serve --stdio`` in a subprocess,
downloaded through ``Download`` with a ``PipeSource``; the protocol's limits checked with raw
frames; a child that dies or speaks something else ends in one clear error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dbfixtures import mysql_fingerprint, url_text
from e2e import make_files, tree
from sourceproc import REPO, env_with
from synco.download import Download, DownloadOptions
from synco.pipe import PipeSource, open_session
from synco.ui import UI
from synco_source import format
from synco_source import pipe as proto
from synco_source.errors import ServerUnreachable, SessionNotFound, UnsupportedFormat

SERVE = [sys.executable, "-m", "synco_source.cli", "serve", "--stdio"]


def shop_url(url) -> str:
    return url_text(url)


def pipe_env(tmp: Path) -> dict:
    """The server's temporary folder inside the test's, so that we can see it go."""
    tmp.mkdir(exist_ok=True)
    return env_with(TMPDIR=str(tmp), PYTHONPATH=str(REPO))


def session_folder(tmp: Path) -> Path:
    (private,) = tmp.iterdir()
    (folder,) = [p for p in private.iterdir() if p.is_dir()]
    return folder


def test_download_through_the_pipe(shop, mysql_db, tmp_path):
    files = make_files(tmp_path / "files")
    dst = mysql_db("dst", create=False)
    tmp = tmp_path / "tmp"
    lines: list[str] = []
    source = PipeSource(SERVE + ["--db-url", shop_url(shop), "--files", f"f={files}"],
                        env=pipe_env(tmp), on_stderr=lines.append)
    assert source.version == 1 and source.hello["window"] == proto.WINDOW
    opts = DownloadOptions(db_url=dst, file_dirs={"f": tmp_path / "local"}, poll_interval=0.1)
    summary = Download(opts, UI(assume_yes=True, quiet=True), remote=source,
                       sc=open_session(source)).run()
    # Download closes its source at the end: stdin closed, the server removed everything
    assert source.proc.returncode == 0, lines
    assert summary.rows > 20000 and summary.files_written == 4
    assert mysql_fingerprint(dst) == mysql_fingerprint(shop)
    assert tree(tmp_path / "local") == tree(files)
    assert list(tmp.iterdir()) == [], "the private session folder is removed at the end of input"
    assert "synco-source: stopped by end of input" in lines
    assert "synco-source: removed everything published" in lines


def test_parallel_requests_ranges_and_not_found(tmp_path):
    files = make_files(tmp_path / "files")
    tmp = tmp_path / "tmp"
    with PipeSource(SERVE + ["--no-db", "--files", f"f={files}"], env=pipe_env(tmp),
                    on_stderr=None) as source:
        sc = open_session(source)
        meta = wait_ready(source, sc)
        folder = session_folder(tmp)
        names = sorted(p.name for p in (folder / "o").iterdir() if p.name != "index.html")
        assert len(names) >= 3
        expected = {n: (folder / "o" / n).read_bytes() for n in names}
        assert max(map(len, expected.values())) > proto.MAX_FRAME, "an answer of several frames"
        got: dict[str, bytes] = {}
        start = threading.Barrier(len(names) * 3)

        def fetch(name: str, round_: int) -> None:
            start.wait()
            got[f"{name}/{round_}"] = source.get(f"o/{name}")

        threads = [threading.Thread(target=fetch, args=(n, r)) for n in names for r in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert got == {f"{n}/{r}": expected[n] for n in names for r in range(3)}
        assert source.max_in_flight > 1, "several requests were in flight on the one pipe"
        big = max(names, key=lambda n: len(expected[n]))
        assert source.get(f"o/{big}", 1_500_000) == expected[big][1_500_000:]
        assert source.get(f"o/{big}", len(expected[big])) == b""
        with pytest.raises(ServerUnreachable, match="past the end"):
            source.get(f"o/{big}", len(expected[big]) + 1)
        with pytest.raises(SessionNotFound):
            source.get("o/" + "0" * 64)
        (folder / "o" / ("1" * 64)).symlink_to(folder / "o" / big)
        with pytest.raises(SessionNotFound):
            source.get("o/" + "1" * 64)  # the HTTP server's rule: no symbolic link followed
        manifest = meta["sets"][0]["manifest"]
        assert sc.open_manifest(manifest, source.get(f"o/{manifest}"), "f")["kind"] == "files"
    assert source.proc.returncode == 0
    assert list(tmp.iterdir()) == []


def wait_ready(source: PipeSource, sc) -> dict:
    for _ in range(600):
        meta = sc.open_meta(source.get(format.META_PATH))
        if meta["state"] == "ready":
            return meta
        threading.Event().wait(0.1)
    raise AssertionError("the session did not become ready")


class Raw:
    """A ``serve --stdio`` spoken to frame by frame."""

    def __init__(self, tmp_path: Path) -> None:
        files = tmp_path / "files"
        files.mkdir()
        (files / "a").write_text("a")
        self.tmp = tmp_path / "tmp"
        self.proc = subprocess.Popen(SERVE + ["--no-db", "--files", f"f={files}"],
                                     env=pipe_env(self.tmp), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        rid, kind, body = proto.read_frame(self.proc.stdout)
        assert (rid, kind) == (0, proto.HELLO)
        self.hello = json.loads(body)

    def send(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def finish(self) -> tuple[int, list[str]]:
        code = self.proc.wait(30)
        return code, self.proc.stderr.read().decode().splitlines()


def test_a_frame_over_the_limit_ends_the_session_with_one_line(tmp_path):
    raw = Raw(tmp_path)
    raw.send(proto.encode_frame(0, proto.HELLO, proto.hello_body()))
    raw.send(proto.HEADER.pack(proto.MAX_FRAME + 1, 7, proto.GET))
    rid, kind, body = proto.read_frame(raw.proc.stdout)
    assert (rid, kind) == (0, proto.ERROR) and b"over the limit" in body
    code, lines = raw.finish()
    errors = [line for line in lines if "error:" in line]
    assert code == 2 and len(errors) == 1, lines
    assert "over the limit of 1048576" in errors[0] and "Traceback" not in "\n".join(lines)
    assert list(raw.tmp.iterdir()) == []


def test_a_hello_of_another_version_is_refused_with_one_line(tmp_path):
    raw = Raw(tmp_path)
    assert raw.hello["versions"] == [1] and "key" in raw.hello
    raw.send(proto.encode_frame(0, proto.HELLO, json.dumps(
        {"protocol": "synco-pipe", "versions": [7]}).encode()))
    rid, kind, body = proto.read_frame(raw.proc.stdout)
    assert (rid, kind) == (0, proto.ERROR) and b"no common pipe protocol version" in body
    code, lines = raw.finish()
    errors = [line for line in lines if "error:" in line]
    assert code == 2 and len(errors) == 1, lines
    assert list(raw.tmp.iterdir()) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_cleans_up(tmp_path, signum):
    raw = Raw(tmp_path)
    raw.send(proto.encode_frame(0, proto.HELLO, proto.hello_body()))
    raw.send(proto.encode_frame(1, proto.GET, proto.encode_get("meta", 0)))
    assert proto.read_frame(raw.proc.stdout)[:2] == (1, proto.DATA)
    raw.proc.send_signal(signum)
    code, lines = raw.finish()
    assert code == (130 if signum == signal.SIGINT else 0), lines
    assert "synco-source: removed everything published" in lines
    assert list(raw.tmp.iterdir()) == []


def test_stdio_refuses_a_terminal(tmp_path):
    import pty

    master, slave = pty.openpty()
    try:
        run = subprocess.run(SERVE + ["--no-db", "--files", f"f={tmp_path}"], stdout=slave,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                             env=pipe_env(tmp_path / "tmp"), timeout=60)
    finally:
        os.close(slave)
        os.close(master)
    errors = [line for line in run.stderr.splitlines() if "error:" in line]
    assert run.returncode == 2 and len(errors) == 1 and "not to a terminal" in errors[0]


def test_end_of_input_before_the_hello_cleans_up(tmp_path):
    raw = Raw(tmp_path)
    raw.proc.stdin.close()
    code, lines = raw.finish()
    assert code == 0 and "synco-source: removed everything published" in lines
    assert list(raw.tmp.iterdir()) == []


FAKE = r"""
import json, struct, sys, time
out = sys.stdout.buffer
def frame(rid, kind, body):
    out.write(struct.pack(">IIB", len(body), rid, kind) + body); out.flush()
mode = sys.argv[1]
versions = [9] if mode == "future" else [1]
frame(0, 1, json.dumps({"protocol": "synco-pipe", "versions": versions, "window": 4,
                        "session": "00" * 16, "key": "11" * 32}).encode())
def read_frame():
    head = sys.stdin.buffer.read(9)
    sys.stdin.buffer.read(struct.unpack(">I", head[:4])[0])
read_frame()  # the client's hello
if mode == "die":
    read_frame()  # its first request
    time.sleep(0.3)
    print("synco-source: error: the disk is on fire", file=sys.stderr, flush=True)
    sys.exit(1)
time.sleep(5)
"""


def test_a_child_that_dies_mid_transfer_names_its_last_message():
    source = PipeSource([sys.executable, "-c", FAKE, "die"], on_stderr=None)
    with pytest.raises(ServerUnreachable, match="exited with code 1.*the disk is on fire"):
        source.get("meta")
    with pytest.raises(ServerUnreachable, match="the disk is on fire"):
        source.get("meta")
    source.close()


def test_a_child_of_another_version_is_unsupported():
    with pytest.raises(UnsupportedFormat, match="no common pipe protocol version"):
        PipeSource([sys.executable, "-c", FAKE, "future"], on_stderr=None)


def test_a_command_that_is_no_synco_pipe_fails_in_one_line():
    with pytest.raises(ServerUnreachable, match="does not speak the synco pipe protocol"):
        PipeSource(["sh", "-c", "echo 'Welcome to the server!'; sleep 5"], on_stderr=None)
    with pytest.raises(ServerUnreachable, match="exited with code 3; its last message: nope"):
        PipeSource(["sh", "-c", "echo nope >&2; exit 3"], on_stderr=None)
