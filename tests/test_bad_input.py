"""Every bad input of the foundation issue: one clear line, a documented exit code, no traceback,
and the local database and files exactly as before."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from dbfixtures import mysql_fingerprint, url_text
from e2e import databases, make_files, make_local, one_error_line, tree
from sourceproc import Source, StaticServer, env_with, synco
from synco_source.format import SessionCrypto, Token

FAST = {"SYNCO_HTTP_RETRIES": "1", "SYNCO_HTTP_BACKOFF": "0.05"}


def url_of(db) -> str:
    return url_text(db)


@contextmanager
def published(shop, tmp_path: Path, *, delay: float = 0.0, fail_after: int | None = None,
              files: Path | None = None):
    """A session in a publish dir served by a plain web server: (source, session folder)."""
    publish = tmp_path / "public"
    publish.mkdir(exist_ok=True)
    extra = ["--files", f"f={files}"] if files else []
    with StaticServer(publish, delay=delay, fail_after=fail_after) as web:
        with Source(["--publish-dir", str(publish), "--base-url", web.url, *extra],
                    db_url=url_of(shop)) as source:
            source.wait_ready()
            folder = next(p for p in publish.iterdir() if p.is_dir())
            yield source, folder


@pytest.fixture
def local(mysql_db, mysql_server, tmp_path):
    """A developer's database and file folder with content of their own, and a check that both
    are exactly as they were and that no shadow database or staging folder was left."""
    dst = mysql_db("dst")
    make_local(dst)
    folder = tmp_path / "local"
    folder.mkdir()
    (folder / "doc.txt").write_text("my local version\n")
    before = (mysql_fingerprint(dst), tree(folder))

    def unchanged() -> None:
        assert (mysql_fingerprint(dst), tree(folder)) == before
        assert f"{dst.database}__synco_new" not in databases(mysql_server)
        assert [p.name for p in folder.iterdir()] == ["doc.txt"]

    return dst, folder, unchanged


def download(token: str, dst, folder: Path, *extra: str, **kw):
    old = dict(os.environ)
    os.environ.update(FAST)
    try:
        return synco("download", token, "--yes", "--db-url", url_of(dst), "--files-dir",
                     f"f={folder}", *extra, **kw)
    finally:
        os.environ.clear()
        os.environ.update(old)


def objects(folder: Path, token: str, kind: str) -> list[Path]:
    """The chunk objects of the session's ``kind`` sets (database or files), largest first;
    found by opening the meta and manifests with the token, as the client does."""
    real = Token.decode(token)
    sc = SessionCrypto(real.key, real.session_id)
    meta = sc.open_meta((folder / "meta").read_bytes())
    names = set()
    for entry in meta["sets"]:
        if entry["kind"] == kind:
            blob = (folder / "o" / entry["manifest"]).read_bytes()
            manifest = sc.open_manifest(entry["manifest"], blob, entry["name"])
            chunks = ([c for t in manifest["tables"] for c in t["chunks"]] if kind == "database"
                      else [c for e in manifest["entries"] for c in e["chunks"]])
            names.update(c["id"] for c in chunks)
    return sorted((folder / "o" / n for n in names), key=lambda p: p.stat().st_size, reverse=True)


@pytest.mark.parametrize("token", ["", "abc", "synco download !!!", "AAAAAAAAAAAAAAAAAAAAAAAA"
                                   "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"])
def test_malformed_token(token):
    result = synco("download", token, "--output", "/tmp/never.sql")
    assert result.code == 3
    assert "malformed token" in one_error_line(result.stderr)


def test_mistyped_token_is_caught_by_its_checksum(shop, tmp_path):
    with Source(["--listen", "127.0.0.1:0"], db_url=url_of(shop)) as source:
        typo = source.token[:20] + ("A" if source.token[20] != "A" else "B") + source.token[21:]
        result = synco("download", typo, "--output", str(tmp_path / "x.sql"))
    assert result.code == 3 and "checksum" in one_error_line(result.stderr)


def test_wrong_key(shop, local, tmp_path):
    dst, folder, unchanged = local
    with published(shop, tmp_path) as (source, _):
        real = Token.decode(source.token)
        forged = Token(url=real.url, session_id=real.session_id, key=bytes(32)).encode()
        result = download(forged, dst, folder)
    assert result.code == 6 and "authentication" in one_error_line(result.stderr)
    unchanged()


@pytest.mark.parametrize("kind", ["database", "files"])
@pytest.mark.parametrize("damage", ["flip", "truncate", "swap", "other-meta"])
def test_tampered_objects(shop, local, tmp_path, damage, kind):
    dst, folder, unchanged = local
    files = make_files(tmp_path / "files")
    with published(shop, tmp_path, files=files) as (source, session):
        biggest, second = objects(session, source.token, kind)[:2]
        if damage == "flip":
            data = bytearray(biggest.read_bytes())
            data[len(data) // 2] ^= 0x01
            biggest.write_bytes(bytes(data))
        elif damage == "truncate":
            biggest.write_bytes(biggest.read_bytes()[:-100])
        elif damage == "swap":
            a, b = biggest.read_bytes(), second.read_bytes()
            biggest.write_bytes(b)
            second.write_bytes(a)
        else:
            with Source(["--publish-dir", str(session.parent), "--base-url", "http://x.invalid/"],
                        db_url=url_of(shop)) as other:
                other.wait_ready()
                other_folder = session.parent / Token.decode(other.token).session_id.hex()
                shutil.copy(other_folder / "meta", session / "meta")
        result = download(source.token, dst, folder)
    assert result.code == 6, result.stderr
    one_error_line(result.stderr)
    unchanged()


def test_expired_session(shop, local, tmp_path):
    dst, folder, unchanged = local
    publish = tmp_path / "public"
    publish.mkdir()
    with StaticServer(publish) as web:
        source = Source(["--publish-dir", str(publish), "--base-url", web.url, "--ttl", "1s"],
                        db_url=url_of(shop))
        assert source.proc.wait(60) == 0, source.stderr
        assert "time limit reached" in source.stderr
        result = download(source.token, dst, folder)
    assert result.code == 4
    assert "expired" in one_error_line(result.stderr)
    unchanged()


def test_server_not_running(shop, local, tmp_path):
    dst, folder, unchanged = local
    with Source(["--listen", "127.0.0.1:0"], db_url=url_of(shop)) as source:
        source.wait_ready()
    result = download(source.token, dst, folder)
    assert result.code == 5 and "cannot reach" in one_error_line(result.stderr)
    unchanged()


def test_server_gone_mid_download(shop, local, tmp_path):
    dst, folder, unchanged = local
    with published(shop, tmp_path, fail_after=4) as (source, _):
        result = download(source.token, dst, folder)
    assert result.code == 5, result.stderr
    one_error_line(result.stderr)
    unchanged()


def test_disk_full(shop, local, tmp_path):
    dst, folder, unchanged = local
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(small)])
    assert mounted.returncode == 0, "this test needs to mount a small tmpfs (root)"
    try:
        (small / "mine.txt").write_text("keep me\n")
        files = make_files(tmp_path / "files")
        with published(shop, tmp_path, files=files) as (source, _):
            result = download(source.token, dst, small)
        assert result.code == 9, result.stderr
        assert "disk full" in one_error_line(result.stderr)
        assert [p.name for p in small.iterdir()] == ["mine.txt"]
        unchanged()
    finally:
        subprocess.run(["umount", str(small)])


def test_local_database_refuses_login(shop, local, tmp_path):
    dst, folder, unchanged = local
    with published(shop, tmp_path) as (source, _):
        result = synco("download", source.token, "--yes", "--db-url",
                       url_text(dst, user="nobody_synco", password="wrong"))
    assert result.code == 8 and "denied" in one_error_line(result.stderr).lower()
    unchanged()


def test_local_database_unreachable(shop, tmp_path):
    with published(shop, tmp_path) as (source, _):
        result = synco("download", source.token, "--yes", "--db-url", "mysql://root@127.0.0.1:1/x")
    assert result.code == 8
    one_error_line(result.stderr)


def test_source_database_refuses_login_before_the_token(mysql_server):
    """A wrong password on the server is said there, before any token, within seconds (what the
    laptop is told of a failure during the dump: test_server_hardening.py)."""
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "synco_source.cli", "serve", "--listen",
                          "127.0.0.1:0"], capture_output=True, text=True, timeout=60,
                         env=env_with(SYNCO_DB_URL=url_text(mysql_server, "shop",
                                                            user="nobody_synco", password="wrong")))
    assert time.monotonic() - started < 15
    assert run.returncode == 8 and run.stdout == ""
    errors = [line for line in run.stderr.splitlines() if line.startswith("synco-source: error:")]
    assert len(errors) == 1 and "Access denied for user 'nobody_synco'" in errors[0], run.stderr
    assert "Traceback" not in run.stderr


def test_ctrl_c_during_import(shop, local, mysql_server, tmp_path):
    dst, folder, unchanged = local
    files = make_files(tmp_path / "files")
    with published(shop, tmp_path, delay=0.7, files=files) as (source, _):
        client = subprocess.Popen(
            [sys.executable, "-c", "from synco.cli import run; run()", "download", source.token,
             "--yes", "--db-url", url_of(dst), "--files-dir", f"f={folder}"],
            env=env_with(**FAST), stderr=subprocess.PIPE, text=True)
        shadow = f"{dst.database}__synco_new"
        deadline = time.monotonic() + 60
        while shadow not in databases(mysql_server) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert shadow in databases(mysql_server), "the import into the shadow database began"
        client.send_signal(signal.SIGINT)
        code = client.wait(60)
        stderr = client.stderr.read()
    assert code == 130, stderr
    assert "interrupted" in one_error_line(stderr)
    unchanged()


@pytest.mark.parametrize("args, needle", [
    ([], "no local database"),
    (["--only", "nope"], "no such set"),
])
def test_usage_errors(shop, tmp_path, args, needle):
    with Source(["--listen", "127.0.0.1:0"], db_url=url_of(shop)) as source:
        result = synco("download", source.token, *args)
    assert result.code == 2 and needle in one_error_line(result.stderr)


def test_debug_shows_the_traceback():
    token = base64.urlsafe_b64encode(b"\x01" + bytes(48) + b"http://127.0.0.1:1/x/"
                                     + hashlib.sha256(b"\x01" + bytes(48) + b"http://127.0.0.1:1/x/")
                                     .digest()[:4]).rstrip(b"=").decode()
    old = dict(os.environ)
    os.environ.update(FAST)
    try:
        plain = synco("download", token, "--output", "/tmp/never.sql")
        debug = synco("--debug", "download", token, "--output", "/tmp/never.sql")
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert plain.code == debug.code == 5
    assert "Traceback" not in plain.stderr and "Traceback" in debug.stderr
