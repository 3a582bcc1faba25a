"""Incremental pulls through the real programs: synco-source in a subprocess publishing into a
folder that a small web server serves (so every request is counted), synco's CLI in another
subprocess, real databases on both ends, and the chunk cache (each test has its own,
XDG_CACHE_HOME, conftest.py). A second pull fetches only chunks it has not verified before."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from dbfixtures import mysql_execute, mysql_fingerprint, url_text
from pgfixtures import pg_execute, pg_fingerprint
from sourceproc import Source, StaticServer, env_with, synco
from synco_source.format import SessionCrypto, Token


def mysql_url(db) -> str:
    return url_text(db)


def pg_url(db) -> str:
    return url_text(db)


def make_items(url, rows: int = 120_000) -> None:
    """~20 MB of rows in one table (about 20 chunks) and a small second table."""
    mysql_execute(url,
                  "CREATE TABLE item (id INT PRIMARY KEY, grp INT, note VARCHAR(300))",
                  f"INSERT INTO item SELECT seq, seq % 97, REPEAT(MD5(seq), 4) FROM seq_1_to_{rows}",
                  "CREATE TABLE tag (id INT PRIMARY KEY, name VARCHAR(40))",
                  "INSERT INTO tag SELECT seq, CONCAT('tag ', seq) FROM seq_1_to_500")


class Published:
    """One session of ``db_url`` published into a folder behind a counting web server."""

    def __init__(self, web: StaticServer, source: Source, folder: Path) -> None:
        self.web, self.source = web, source
        token = Token.decode(source.token)
        self.token = source.token
        sc = SessionCrypto(token.key, token.session_id)
        session = folder / token.session_id.hex()
        meta = sc.open_meta((session / "meta").read_bytes())
        (entry,) = [s for s in meta["sets"] if s["name"] == "db"]
        self.manifest_name = entry["manifest"]
        self.manifest = sc.open_manifest(entry["manifest"], (session / "o" / entry["manifest"]).read_bytes(), "db")

    @property
    def chunks(self) -> dict[str, str]:
        """chunk object name → plaintext SHA-256."""
        return {c["id"]: c["sha256"] for t in self.manifest["tables"] for c in t["chunks"]}

    def chunk_requests(self) -> list[str]:
        names = [p.rsplit("/", 1)[1] for p in self.web.paths if "/o/" in p]
        return [n for n in names if n != self.manifest_name]


@contextmanager
def published(db_url: str, tmp_path: Path, delay: float = 0.0):
    folder = tmp_path / f"public-{time.monotonic_ns()}"
    folder.mkdir()
    with StaticServer(folder, delay=delay) as web:
        with Source(["--publish-dir", str(folder), "--base-url", web.url], db_url=db_url) as source:
            source.wait_ready()
            yield Published(web, source, folder)


def cached_line(stderr: str) -> tuple[int, int]:
    match = re.search(r"([\d,]+) of ([\d,]+) chunks cached", stderr)
    assert match, stderr
    return int(match.group(1).replace(",", "")), int(match.group(2).replace(",", ""))


def cache_entries() -> int:
    root = Path(os.environ["XDG_CACHE_HOME"]) / "synco" / "chunks" / "objects"
    return sum(1 for p in root.glob("*/*") if not p.name.startswith(".tmp")) if root.is_dir() else 0


def test_repull_without_change_fetches_no_chunk(mysql_db, tmp_path):
    src = mysql_db("src")
    make_items(src)
    dst = mysql_db("dst", create=False)
    with published(mysql_url(src), tmp_path) as one:
        first = synco("download", one.token, "--yes", db_url=mysql_url(dst))
        assert first.code == 0, first.stderr
        assert len(set(one.chunk_requests())) == len(one.chunks) >= 15
    assert cached_line(first.stderr) == (0, len(set(one.chunks.values())))
    with published(mysql_url(src), tmp_path) as two:
        second = synco("download", two.token, "--yes", db_url=mysql_url(dst))
        assert second.code == 0, second.stderr
        assert two.chunk_requests() == []
        assert set(two.chunks.values()) == set(one.chunks.values()), "same rows, same chunks"
    # nothing changed on either side: nothing to fetch, nothing to import (tests/test_unchanged.py)
    assert "nothing to import" in second.stderr
    # a local edit: the whole database is imported again, every chunk from the cache
    mysql_execute(dst, "UPDATE item SET note = 'mine' WHERE id = 5")
    with published(mysql_url(src), tmp_path) as three:
        third = synco("download", three.token, "--yes", db_url=mysql_url(dst))
        assert third.code == 0, third.stderr
        assert three.chunk_requests() == []
    total = len(set(three.chunks.values()))
    assert cached_line(third.stderr) == (total, total)
    assert "0.0 MB to fetch" in third.stderr
    assert f"(0 chunks fetched, {total} from the cache)" in third.stderr
    assert mysql_fingerprint(dst) == mysql_fingerprint(src)


def test_a_changed_key_range_and_appended_rows_fetch_only_their_chunks(mysql_db, tmp_path):
    src = mysql_db("src")
    make_items(src)
    dst = mysql_db("dst", create=False)
    with published(mysql_url(src), tmp_path) as one:
        assert synco("download", one.token, "--yes", db_url=mysql_url(dst)).code == 0
    mysql_execute(src, "UPDATE item SET note = CONCAT('changed ', id) WHERE id BETWEEN 60000 AND 60400",
                  "INSERT INTO item SELECT 120000 + seq, 1, REPEAT(SHA2(seq, 256), 2) FROM seq_1_to_1200")
    with published(mysql_url(src), tmp_path) as two:
        second = synco("download", two.token, "--yes", db_url=mysql_url(dst))
        assert second.code == 0, second.stderr
        new = {name for name, digest in two.chunks.items() if digest not in set(one.chunks.values())}
        assert sorted(two.chunk_requests()) == sorted(new)
    assert 1 <= len(new) <= 4, f"{len(new)} of {len(two.chunks)} chunks changed"
    assert cached_line(second.stderr) == (len(set(two.chunks.values())) - len(new),
                                          len(set(two.chunks.values())))
    assert mysql_fingerprint(dst) == mysql_fingerprint(src)


def test_after_kill_9_the_rerun_fetches_only_what_is_missing(mysql_db, tmp_path):
    src = mysql_db("src")
    make_items(src, rows=200_000)
    dst = mysql_db("dst", create=False)
    with published(mysql_url(src), tmp_path, delay=0.4) as session:
        cmd = [sys.executable, "-c", "from synco.cli import run; run()", "download", session.token,
               "--yes", "--quiet"]
        proc = subprocess.Popen(cmd, env=env_with(SYNCO_DB_URL=mysql_url(dst)),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while cache_entries() < 8 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kept = cache_entries()
        total = len(set(session.chunks.values()))
        assert 8 <= kept < total, f"killed with {kept} of {total} chunks cached"
        before = len(session.chunk_requests())
        session.web.delay = 0
        rerun = synco("download", session.token, "--yes", db_url=mysql_url(dst))
        assert rerun.code == 0, rerun.stderr
        fetched = session.chunk_requests()[before:]
    assert cached_line(rerun.stderr) == (kept, total)
    assert len(fetched) == total - kept, "the rerun fetches exactly the chunks not yet verified"
    assert mysql_fingerprint(dst) == mysql_fingerprint(src)


def test_two_pulls_at_once_share_the_cache(mysql_db, tmp_path):
    src = mysql_db("src")
    make_items(src, rows=60_000)
    a, b = mysql_db("a", create=False), mysql_db("b", create=False)
    with published(mysql_url(src), tmp_path, delay=0.05) as session:
        runs = [subprocess.Popen([sys.executable, "-c", "from synco.cli import run; run()", "download",
                                  session.token, "--yes"], env=env_with(SYNCO_DB_URL=mysql_url(dst)),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for dst in (a, b)]
        results = [(run.wait(300), run.stderr.read()) for run in runs]
    for code, stderr in results:
        assert code == 0, stderr
        assert "damaged" not in stderr
    want = mysql_fingerprint(src)
    assert mysql_fingerprint(a) == want and mysql_fingerprint(b) == want
    assert cache_entries() == len(set(session.chunks.values()))
    third = mysql_db("c", create=False)
    with published(mysql_url(src), tmp_path) as again:
        assert synco("download", again.token, "--yes", db_url=mysql_url(third)).code == 0
        assert again.chunk_requests() == []


def test_postgresql_changed_range_and_appended_rows(pg_db, tmp_path):
    src = pg_db("src")
    pg_execute(src, "CREATE TABLE item (id int PRIMARY KEY, grp int, note text)",
               "INSERT INTO item SELECT g, g % 97, repeat(md5(g::text), 4) FROM generate_series(1, 100000) g")
    dst = pg_db("dst", create=False)
    with published(pg_url(src), tmp_path) as one:
        first = synco("download", one.token, "--yes", db_url=pg_url(dst))
        assert first.code == 0, first.stderr
    pg_execute(src, "UPDATE item SET note = 'changed ' || id WHERE id BETWEEN 40000 AND 40300",
               "INSERT INTO item SELECT 100000 + g, 1, md5(g::text) FROM generate_series(1, 1000) g")
    with published(pg_url(src), tmp_path) as two:
        second = synco("download", two.token, "--yes", db_url=pg_url(dst))
        assert second.code == 0, second.stderr
        new = {name for name, digest in two.chunks.items() if digest not in set(one.chunks.values())}
        assert sorted(two.chunk_requests()) == sorted(new)
    assert 1 <= len(new) <= 4 and len(two.chunks) >= 10
    assert pg_fingerprint(dst) == pg_fingerprint(src)
