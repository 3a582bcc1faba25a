"""synco-source under faults: every failure is reported as what it is, leftovers of killed runs
are swept, and the sets it reads stay inside their folders (issue 11, server side)."""

from __future__ import annotations

import signal
import sys
import textwrap
from pathlib import Path

import pytest

from sourceproc import Source, synco
from synco_source import cli
from synco_source.format import SessionCrypto, Token


def read_meta(folder: Path, token: Token) -> dict:
    """The meta of a session folder, opened with the token's key."""
    return SessionCrypto(token.key, token.session_id).open_meta((folder / "meta").read_bytes())


@pytest.fixture
def handlers():
    """Signal handlers as they were: cli.main installs its own in this process."""
    saved = {s: signal.getsignal(s) for s in cli.STOP_SIGNALS}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def serve_in_process(monkeypatch, tmp_path, *extra: str) -> tuple[int, Path]:
    folder = tmp_path / "files"
    folder.mkdir(exist_ok=True)
    (folder / "a.txt").write_text("a\n")
    publish = tmp_path / "public"
    publish.mkdir(exist_ok=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNCO_DB_URL", raising=False)
    code = cli.main([*extra, "serve", "--no-db", "--files", f"f={folder}", "--publish-dir",
                     str(publish), "--base-url", "http://x.invalid/", "--keep"])
    return code, publish


@pytest.mark.parametrize("debug", [False, True])
def test_a_bug_in_the_producer_fails_the_session_with_its_message(monkeypatch, tmp_path, capsys,
                                                                   handlers, debug):
    """Not a deleted session (the laptop would say 'the token has expired'): the meta says
    failed with 'unexpected RuntimeError: ...', the server says so and exits 70 after the grace."""
    def broken(session, plan, say):
        session.publish_meta("dumping", progress={"step": "database"})
        raise RuntimeError("boom in the producer")

    monkeypatch.setattr("synco_source.produce.produce", broken)
    monkeypatch.setattr(cli, "FAILED_GRACE", 0.5)
    code, publish = serve_in_process(monkeypatch, tmp_path, *(["--debug"] if debug else []))
    out, err = capsys.readouterr()
    assert code == 70, err
    (folder,) = [p for p in publish.iterdir() if p.is_dir()]
    meta = read_meta(folder, Token.decode(out.split()[2]))
    assert meta["state"] == "failed"
    assert meta["message"] == "unexpected RuntimeError: boom in the producer"
    assert "synco-source: error: unexpected RuntimeError: boom in the producer" in err
    assert ("Traceback" in err) == debug, err
    assert "--debug" in err


def test_a_synco_error_in_the_producer_keeps_its_exit_code(monkeypatch, tmp_path, capsys, handlers):
    from synco_source.errors import DatabaseError

    def broken(session, plan, say):
        raise DatabaseError("the database went away")

    monkeypatch.setattr("synco_source.produce.produce", broken)
    monkeypatch.setattr(cli, "FAILED_GRACE", 0.2)
    code, publish = serve_in_process(monkeypatch, tmp_path)
    out, err = capsys.readouterr()
    assert code == 8, err
    (folder,) = [p for p in publish.iterdir() if p.is_dir()]
    assert read_meta(folder, Token.decode(out.split()[2]))["message"] == "the database went away"
    assert "Traceback" not in err


BROKEN_SERVER = textwrap.dedent("""
    import sys
    import synco_source.produce
    from synco_source import cli

    def broken(session, plan, say):
        raise KeyError("no such column")

    synco_source.produce.produce = broken
    sys.exit(cli.main(sys.argv[1:]))
""")


def test_the_laptop_is_told_what_failed_on_the_server(tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    (files / "a.txt").write_text("a\n")
    with Source(["--no-db", "--files", f"f={files}", "--listen", "127.0.0.1:0"],
                python=[sys.executable, "-c", BROKEN_SERVER]) as source:
        source.wait_ready()
        run = synco("download", source.token, "--only", "f", "--files-dir", f"f={tmp_path / 'here'}",
                    "--yes", cwd=tmp_path, timeout=120)
        assert run.code == 7, run.stderr
        assert "synco-source failed on the server: unexpected KeyError: 'no such column'" in run.stderr
        assert "expired" not in run.stderr
        code = source.stop(signal.SIGTERM)
    assert code == 70, source.stderr
    assert "removed everything published" in source.stderr


def test_removed_everything_is_said_only_when_true(monkeypatch, tmp_path, capsys, handlers):
    """A session folder that cannot be deleted is named, with what is left, instead of a false
    'removed everything published'."""
    from synco_source import session as session_module

    monkeypatch.setattr(session_module.shutil, "rmtree", lambda *a, **k: None)
    monkeypatch.setattr(session_module.time, "sleep", lambda s: None)
    monkeypatch.setattr(cli, "FAILED_GRACE", 0.2)

    def quick(session, plan, say):
        raise RuntimeError("stop here")

    monkeypatch.setattr("synco_source.produce.produce", quick)
    folder = tmp_path / "files"
    folder.mkdir()
    (tmp_path / "public").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNCO_DB_URL", raising=False)
    cli.main(["serve", "--no-db", "--files", f"f={folder}", "--publish-dir",
              str(tmp_path / "public"), "--base-url", "http://x.invalid/"])
    err = capsys.readouterr().err
    assert "removed everything published" not in err
    assert "could not remove everything published" in err and "meta" in err


# ---------------------------------------------------------------- file sets (11.4, 11.9)

import hashlib
import os
from concurrent.futures import Future

from synco_source import files
from synco_source.errors import UsageError


def stored_chunks():
    """A put_chunk that keeps the plaintexts (what would have been published)."""
    kept: list[bytes] = []

    def put(plaintext: bytes) -> Future:
        kept.append(plaintext)
        future: Future = Future()
        future.set_result({"id": "0" * 64, "sha256": hashlib.sha256(plaintext).hexdigest(),
                           "size": len(plaintext)})
        return future
    return put, kept


def test_a_file_that_vanishes_while_indexed_is_a_reported_skip(tmp_path):
    root = tmp_path / "set"
    (root / "sub").mkdir(parents=True)
    for name in ("a.bin", "b.bin", "c.bin", "sub/d.bin"):
        (root / name).write_bytes(name.encode())
    put, kept = stored_chunks()

    def put_and_delete(plaintext: bytes) -> Future:
        if plaintext == b"a.bin":  # while a.bin is read, b.bin and the folder sub/ go away
            (root / "b.bin").unlink()
            (root / "sub" / "d.bin").unlink()
            (root / "sub").rmdir()
        return put(plaintext)

    said: list[tuple[str, str]] = []
    body = files.index(root, put_and_delete, on_skip=lambda path, why: said.append((path, why)))
    assert [e["path"] for e in body["entries"]] == ["a.bin", "c.bin"]
    assert body["skipped"] == ["b.bin", "sub"]
    assert said == [("b.bin", files.VANISHED), ("sub", files.VANISHED)]


def test_a_file_that_turns_into_a_link_while_indexed_is_not_followed(tmp_path, monkeypatch):
    root = tmp_path / "set"
    root.mkdir()
    (tmp_path / "secret").write_bytes(b"outside the set")
    for name in ("a.bin", "b.bin"):
        (root / name).write_bytes(name.encode())
    walked = files.walk

    def walk_then_swap(root_, on_skip):
        """b.bin becomes a link after the walk saw it as a file (it is read after that)."""
        for rel, st in walked(root_, on_skip):
            if rel == "b.bin":
                (root / "b.bin").unlink()
                (root / "b.bin").symlink_to(tmp_path / "secret")
            yield rel, st

    monkeypatch.setattr(files, "walk", walk_then_swap)
    put, kept = stored_chunks()
    said = []
    body = files.index(root, put, on_skip=lambda p, why: said.append(p))
    assert b"outside the set" not in kept
    assert [e["path"] for e in body["entries"]] == ["a.bin"] and said == ["b.bin"]


def test_an_unreadable_file_is_one_clear_error(tmp_path, monkeypatch):
    """EACCES (as root, chmod does not stop a read: the denial is injected at os.open)."""
    import errno

    root = tmp_path / "set"
    root.mkdir()
    (root / "private.key").write_bytes(b"x")
    real_open = os.open

    def denied(path, flags, *args, **kwargs):
        if str(path).endswith("private.key"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(files.os, "open", denied)
    put, kept = stored_chunks()
    with pytest.raises(UsageError) as caught:
        files.index(root, put)
    assert str(caught.value) == f"cannot read {root / 'private.key'}: Permission denied"
    assert "--files" in caught.value.hint and "permissions" in caught.value.hint


def test_a_vanished_file_is_said_by_the_server(tmp_path):
    """Through the real program: a folder whose files come and go (a cache) is published, the
    vanished file named on stderr; the session is ready, not failed."""
    import subprocess
    import threading
    import time

    root = tmp_path / "set"
    root.mkdir()
    (root / "big.bin").write_bytes(os.urandom(40 << 20))
    stop = threading.Event()

    def churn() -> None:
        n = 0
        while not stop.is_set():
            (root / f"tmp{n % 50:02d}").write_bytes(b"x")
            (root / f"tmp{(n + 25) % 50:02d}").unlink(missing_ok=True)
            n += 1

    thread = threading.Thread(target=churn, daemon=True)
    thread.start()
    try:
        with Source(["--no-db", "--files", f"f={root}", "--listen", "127.0.0.1:0"]) as source:
            source.wait_ready()
    finally:
        stop.set()
        thread.join()
    assert "synco-source: ready" in source.stderr, source.stderr
    assert "Traceback" not in source.stderr and "unexpected" not in source.stderr
    # listed before big.bin was read, deleted while it was: named with the reason
    assert "(vanished while the set was indexed)" in source.stderr, source.stderr


# ---------------------------------------------------------------- Neos resources (11.9)

from synco_frameworks import neos_resources  # noqa: E402

TRAVERSAL = "../" * 10 + "etc/passwd"  # 40 characters, as a sha1 column holds
assert len(TRAVERSAL) == 40


def resource_rows(*rows):
    def query(sql: str, *args):
        if sql == neos_resources.RESOURCES_SQL:
            return list(rows)
        return []
    return query


def select_and_index(root: Path, rows):
    selection = neos_resources.selector(None, None, keep_thumbnails=True)(
        resource_rows(*rows), {neos_resources.RESOURCE_TABLE})
    put, kept = stored_chunks()
    said = []
    body = files.index(root, put, include=selection.include, on_skip=lambda p, why: said.append((p, why)))
    return selection, body, kept, said


def test_a_resource_row_cannot_make_the_server_read_outside_the_resource_folder(tmp_path):
    root = tmp_path / "Data" / "Persistent" / "Resources"
    good = hashlib.sha1(b"good").hexdigest()
    (root / neos_resources.stored_path(good)).parent.mkdir(parents=True)
    (root / neos_resources.stored_path(good)).write_bytes(b"good")
    rows = [(good, "good.jpg", "persistent"), (TRAVERSAL, "passwd", "persistent"),
            ("/etc/passwd", "x", "persistent"), (good.upper(), "good.jpg", "persistent"),
            ("g" * 40, "x", "persistent")]
    selection, body, kept, said = select_and_index(root, rows)
    assert selection.include == {neos_resources.stored_path(good)}
    assert [e["path"] for e in body["entries"]] == [neos_resources.stored_path(good)]
    assert kept == [b"good"]
    assert any("3 rows" in note and "not 40 hex digits" in note for note in selection.notes)


def test_a_symbolic_link_in_the_resource_folder_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    secret = hashlib.sha1(b"secret").hexdigest()
    (outside / secret).parent.mkdir(parents=True)
    (outside / secret).write_bytes(b"secret outside the set")
    real = tmp_path / "deployment-shared" / "Resources"  # a deployment's shared folder: the root may be a link
    root = tmp_path / "release" / "Resources"
    real.mkdir(parents=True)
    root.parent.mkdir()
    root.symlink_to(real)
    good = hashlib.sha1(b"good").hexdigest()
    (real / neos_resources.stored_path(good)).parent.mkdir(parents=True)
    (real / neos_resources.stored_path(good)).write_bytes(b"good")
    # the last folder of the secret's stored path is a link out of the set
    linked = real / neos_resources.stored_path(secret)
    linked.parent.parent.mkdir(parents=True, exist_ok=True)
    linked.parent.symlink_to(outside)
    selection, body, kept, said = select_and_index(root, [(good, "g", "persistent"),
                                                         (secret, "s", "persistent")])
    assert kept == [b"good"]
    assert [e["path"] for e in body["entries"]] == [neos_resources.stored_path(good)]
    assert body["skipped"] == [neos_resources.stored_path(secret)]
    assert said == [(neos_resources.stored_path(secret), "reached through a symbolic link")]
    # a path with '..' given directly (not from a sha1) is not read, and not listed either
    put, kept = stored_chunks()
    said = []
    body = files.index(root, put, include={"../../outside/" + secret},
                       on_skip=lambda p, why: said.append(p))
    assert body["entries"] == [] and body["skipped"] == [] and kept == []
    assert said == ["../../outside/" + secret]


# ---------------------------------------------------------------- leftovers of killed runs (11.7)

import time  # noqa: E402

from synco_source import session as sessions  # noqa: E402


def fake_session(parent: Path, expires: float, pid: int, *, marker: bool = True) -> Path:
    folder = parent / os.urandom(16).hex()
    (folder / "o").mkdir(parents=True)
    (folder / "meta").write_bytes(b"sealed")
    if marker:
        sessions.write_marker(folder, expires, pid)
    return folder


def dead_pid() -> int:
    import subprocess
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_the_sweep_removes_only_sessions_that_expired_or_lost_their_process(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(sessions.tempfile, "tempdir", None)
    publish = tmp_path / "public"
    publish.mkdir()
    now = time.time()
    expired = fake_session(publish, now - 5, os.getpid())
    orphaned = fake_session(publish, now + 3600, dead_pid())
    running = fake_session(publish, now + 3600, os.getpid())
    kept = fake_session(publish, now + 3600, 0)
    foreign = fake_session(publish, now - 5, os.getpid(), marker=False)
    other_host = fake_session(publish, now + 3600, dead_pid())
    (other_host / sessions.MARKER).write_text(f"{int(now + 3600)} {dead_pid()} {'0' * 12}\n")
    not_ours = publish / ("e" * 32)
    not_ours.mkdir()
    (not_ours / sessions.MARKER).write_text(f"{int(now - 5)} 1 {sessions.host_tag()}\n")  # no o/
    link = publish / ("f" * 32)
    link.symlink_to(expired)
    said = []
    assert sessions.sweep(publish, said.append) == 2
    left = {p.name for p in publish.iterdir()}
    assert left == {running.name, kept.name, foreign.name, other_host.name, not_ours.name, link.name}
    assert any(expired.name in line and "time limit passed" in line for line in said), said
    assert any(orphaned.name in line and "is gone" in line for line in said), said


def test_a_killed_publish_dir_session_is_removed_by_the_next_run(tmp_path):
    files_dir = tmp_path / "files"
    files_dir.mkdir()
    (files_dir / "a.txt").write_text("a\n")
    publish = tmp_path / "public"
    publish.mkdir()
    args = ["--no-db", "--files", f"f={files_dir}", "--publish-dir", str(publish),
            "--base-url", "http://x.invalid/"]
    first = Source(args)
    first.wait_ready()
    first.proc.kill()
    first.stop()
    (old,) = publish.iterdir()
    assert (old / "meta").is_file(), "kill -9 leaves the session behind"
    with Source(args) as second:
        second.wait_ready()
        assert not old.exists()
        assert len(list(publish.iterdir())) == 1
    assert f"removed session {old.name} of an earlier run" in second.stderr
    assert "is gone" in second.stderr


def test_a_killed_listening_session_is_removed_by_the_next_run(tmp_path, monkeypatch):
    files_dir = tmp_path / "files"
    files_dir.mkdir()
    (files_dir / "a.txt").write_text("a\n")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))  # the private folders of these runs only
    args = ["--no-db", "--files", f"f={files_dir}", "--listen", "127.0.0.1:0"]
    first = Source(args)
    first.wait_ready()
    first.proc.kill()
    first.stop()
    (old,) = tmp.iterdir()
    assert old.name.startswith("synco-source-")
    second = Source(args)
    second.wait_ready()
    assert not old.exists() and len(list(tmp.iterdir())) == 1
    second.stop()
    assert f"removed {old} of an earlier run" in second.stderr
    assert list(tmp.iterdir()) == []


def test_kept_sessions_are_removed_once_expired(tmp_path):
    files_dir = tmp_path / "files"
    files_dir.mkdir()
    (files_dir / "a.txt").write_text("a\n")
    publish = tmp_path / "public"
    publish.mkdir()
    args = ["--no-db", "--files", f"f={files_dir}", "--publish-dir", str(publish),
            "--base-url", "http://x.invalid/"]
    with Source([*args, "--keep", "--ttl", "2s"]) as first:
        first.wait_ready()
    (kept,) = publish.iterdir()
    assert sessions.read_marker(kept)[1] == 0
    with Source(args) as second:  # within its time limit: stays
        second.wait_ready()
    assert kept.exists()
    time.sleep(2.2)
    with Source(args) as third:
        third.wait_ready()
    assert not kept.exists() and "time limit passed" in third.stderr


# ---------------------------------------------------------------- the listener under load (11.8)

def test_synco_download_succeeds_while_200_idle_connections_are_open(tmp_path):
    """The real client against the real server, with 200 connections held open that send
    nothing (and 50 that stall in the middle of a request)."""
    import socket

    files_dir = tmp_path / "files"
    files_dir.mkdir()
    for n in range(20):
        (files_dir / f"f{n}.bin").write_bytes(os.urandom(300_000))
    with Source(["--no-db", "--files", f"f={files_dir}", "--listen", "127.0.0.1:0"]) as source:
        source.wait_ready()
        port = int(Token.decode(source.token).url.split(":")[2].split("/")[0])
        held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(250)]
        try:
            for sock in held[200:]:
                sock.sendall(b"GET /")
            run = synco("download", source.token, "--only", "f", "--files-dir",
                        f"f={tmp_path / 'here'}", "--yes", cwd=tmp_path, timeout=120)
        finally:
            for sock in held:
                sock.close()
    assert run.code == 0, run.stderr
    for n in range(20):
        assert (tmp_path / "here" / f"f{n}.bin").read_bytes() == (files_dir / f"f{n}.bin").read_bytes()
