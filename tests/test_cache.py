"""The chunk cache (synco/cache.py) and what the download core does with it: entries, damage,
eviction, a full disk, an unwritable folder, resumed objects, and the client's limits on what a
source sends (docs/cache.md). The pulls here run in-process against a session that a real
synco-source subprocess published into a folder, served by an in-process transport that logs
every request."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from dbfixtures import mysql_execute, mysql_fingerprint, url_text
from e2e import make_shop
from sourceproc import Source, synco
from synco import cache as cache_mod
from synco.cache import ChunkCache, parse_size
from synco.download import Download, DownloadOptions
from synco.fetch import Remote
from synco.ui import UI
from synco_source import crypto, format
from synco_source.dburl import parse
from synco_source.errors import IntegrityError, ServerUnreachable, SessionNotFound

BASE = "http://synco.test/"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class RecordingUI(UI):
    def __init__(self) -> None:
        super().__init__(assume_yes=True, quiet=True)
        self.infos: list[str] = []
        self.warnings: list[str] = []

    def info(self, message: str) -> None:
        self.infos.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)


class Folder:
    """An httpx transport serving a publish folder like a web server; logs (path, Range)."""

    def __init__(self, root: Path, ranges: bool = True) -> None:
        self.root, self.ranges = root, ranges
        self.requests: list[tuple[str, str | None]] = []
        self.sent = 0  # body bytes answered

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.lstrip("/").partition("/")[2]  # below the session id
        rng = request.headers.get("range")
        self.requests.append((path, rng))
        try:
            data = (self.root / path).read_bytes()
        except OSError:
            return httpx.Response(404)
        match = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if self.ranges and match and int(match.group(1)) < len(data):
            start = int(match.group(1))
            self.sent += len(data) - start
            return httpx.Response(206, content=data[start:], headers={
                "content-range": f"bytes {start}-{len(data) - 1}/{len(data)}"})
        if request.url.query != b"done":  # the client's final request counts on neither side
            self.sent += len(data)
        return httpx.Response(200, content=data)

    def chunk_requests(self, names: set[str]) -> list[tuple[str, str | None]]:
        return [(p.rsplit("/", 1)[1], r) for p, r in self.requests if p.rsplit("/", 1)[-1] in names]


@pytest.fixture
def session(shop, tmp_path):
    """The shop database published into a folder: (token, session folder, db manifest)."""
    mysql_execute(shop, "INSERT INTO customer (name, note, created) SELECT CONCAT('more ', seq), "
                        "REPEAT(SHA2(seq, 256), 6), '2024-02-01' FROM seq_1_to_8000")
    publish = tmp_path / "public"
    publish.mkdir()
    source = Source(["--publish-dir", str(publish), "--base-url", BASE],
                    db_url=url_text(shop))
    source.wait_ready()
    token = format.Token.decode(source.token)
    sc = format.SessionCrypto(token.key, token.session_id)
    folder = publish / token.session_id.hex()
    meta = sc.open_meta((folder / "meta").read_bytes())
    (entry,) = meta["sets"]
    manifest = sc.open_manifest(entry["manifest"], (folder / "o" / entry["manifest"]).read_bytes(), "db")
    yield source.token, folder, manifest, sc
    source.stop()


def chunks_of(manifest: dict) -> list[dict]:
    return [c for t in manifest["tables"] for c in t["chunks"]]


def pull(token: str, dst, cache_dir: Path, transport, **opts):
    ui = RecordingUI()
    options = DownloadOptions(token=token, db_url=dst, transport=httpx.MockTransport(transport),
                              cache_dir=cache_dir, poll_interval=0.05, **opts)
    return Download(options, ui).run(), ui


# ---------------------------------------------------------------- the cache alone

def test_entries_are_private_laid_out_like_git_and_checked(tmp_path):
    cache = ChunkCache(tmp_path / "c")
    data = b"INSERT INTO t VALUES (1);\n" * 1000
    cache.put(sha(data), data)
    path = tmp_path / "c" / "objects" / sha(data)[:2] / sha(data)[2:]
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for folder in (tmp_path / "c", tmp_path / "c" / "objects", path.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert path.stat().st_size < len(data) / 10, "stored compressed"
    assert cache.get(sha(data), len(data)) == data
    assert cache.get("0" * 64, 10) is None
    assert cache.stats().entries == 1


def test_xdg_cache_home_moves_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "elsewhere"))
    assert cache_mod.default_root() == tmp_path / "elsewhere" / "synco" / "chunks"
    shown = synco("cache")
    assert shown.code == 0 and str(tmp_path / "elsewhere") in shown.stdout


@pytest.mark.parametrize("damage", ["flip", "truncate", "other-chunk", "empty"])
def test_a_wrong_entry_is_dropped_never_returned(tmp_path, damage):
    warnings = []
    cache = ChunkCache(tmp_path, warn=warnings.append)
    data, other = os.urandom(5000) * 3, b"other" * 100
    cache.put(sha(data), data)
    cache.put(sha(other), other)
    path = cache.path(sha(data))
    raw = path.read_bytes()
    path.write_bytes({"flip": raw[:-10] + bytes(b ^ 1 for b in raw[-10:]), "truncate": raw[:len(raw) // 2],
                      "other-chunk": cache.path(sha(other)).read_bytes(), "empty": b""}[damage])
    assert cache.get(sha(data), len(data)) is None
    assert not path.exists()
    assert len(warnings) == 1 and "damaged" in warnings[0]


def test_least_recently_used_go_first(tmp_path):
    cache = ChunkCache(tmp_path, max_size=10**9)
    blobs = [os.urandom(100_000) for _ in range(6)]
    for i, blob in enumerate(blobs):
        cache.put(sha(blob), blob)
        os.utime(cache.path(sha(blob)), (1000 + i, 1000 + i))
    assert cache.get(sha(blobs[0]), len(blobs[0])) == blobs[0]  # a hit makes it the newest
    cache.max_size = 350_000
    assert cache.evict() > 0
    kept = [cache.path(sha(b)).exists() for b in blobs]
    assert kept == [True, False, False, False, True, True]
    assert cache.stats().size <= 350_000


def test_default_size_fits_three_copies_of_the_largest_database(tmp_path):
    cache = ChunkCache(tmp_path)
    assert cache.limit() == 2 << 30
    cache.note_database_size(5 << 30)
    cache.note_database_size(1 << 30)
    assert ChunkCache(tmp_path).limit() == 15 << 30
    assert ChunkCache(tmp_path, max_size=parse_size("500M")).limit() == 500 << 20
    assert parse_size("2.5GiB") == int(2.5 * (1 << 30)) and parse_size("0") == 0


def test_a_size_of_zero_keeps_nothing_new(tmp_path):
    ChunkCache(tmp_path).put(sha(b"old"), b"old")
    cache = ChunkCache(tmp_path, max_size=0)
    cache.put(sha(b"new"), b"new")
    assert cache.partial("ab" * 32, "cd" * 16) is None
    assert cache.get(sha(b"new"), 3) is None and cache.get(sha(b"old"), 3) == b"old"


def test_size_from_environment_and_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("SYNCO_CACHE_SIZE", raising=False)
    assert cache_mod.configured_size() is None
    (tmp_path / "synco").mkdir()
    (tmp_path / "synco" / "config.toml").write_text('[cache]\nsize = "3G"\n')
    assert cache_mod.configured_size() == 3 << 30
    monkeypatch.setenv("SYNCO_CACHE_SIZE", "700M")
    assert cache_mod.configured_size() == 700 << 20


def test_unwritable_folder_warns_once_and_goes_on(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    warnings = []
    cache = ChunkCache(tmp_path / "file" / "cache", warn=warnings.append)
    for i in range(3):
        cache.put(sha(b"%d" % i), b"%d" % i)
    assert len(warnings) == 1 and "going on without it" in warnings[0]
    assert cache.get(sha(b"1"), 1) is None


def test_a_full_disk_leaves_no_half_entry(tmp_path, monkeypatch):
    warnings = []
    cache = ChunkCache(tmp_path, warn=warnings.append)
    kept = os.urandom(1000)
    cache.put(sha(kept), kept)
    real_fdopen = os.fdopen

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            self.fh.write(data[:10])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_mod.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    blob = os.urandom(2000)
    cache.put(sha(blob), blob)
    cache.put(sha(blob + b"x"), blob + b"x")
    assert len(warnings) == 1 and "disk full" in warnings[0]
    assert not cache.path(sha(blob)).exists()
    assert [p.name for p in cache.path(sha(blob)).parent.iterdir() if p.name.startswith(".tmp")] == []
    assert cache.get(sha(kept), len(kept)) == kept


def test_cache_clear_empties_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache = ChunkCache()
    for i in range(5):
        cache.put(sha(b"x%d" % i), b"x%d" % i)
    shown = synco("cache")
    assert shown.code == 0 and "entries:  5" in shown.stdout, shown
    cleared = synco("cache", "clear")
    assert cleared.code == 0 and "removed 5 entries" in cleared.stderr
    assert cache.stats().entries == 0


# ---------------------------------------------------------------- fetch limits (issue 11)

def test_responses_longer_than_the_limit_are_refused():
    big = httpx.MockTransport(lambda r: httpx.Response(200, content=b"x" * 5000))
    with Remote(BASE, transport=big, retries=0) as remote:
        assert len(remote.get("o/a", limit=5000)) == 5000
        with pytest.raises(IntegrityError, match="more than 4,999 bytes"):
            remote.get("o/a", limit=4999)

    def no_length(request):  # no Content-Length: the limit holds while reading
        return httpx.Response(200, content=iter([b"y" * 3000] * 3))
    with Remote(BASE, transport=httpx.MockTransport(no_length), retries=0) as remote:
        with pytest.raises(IntegrityError):
            remote.get("o/a", limit=8000)


def test_redirects_stay_on_the_server():
    def handler(request):
        if request.url.path == "/same":
            return httpx.Response(302, headers={"location": "/there"})
        if request.url.path == "/upgrade":
            return httpx.Response(301, headers={"location": "https://synco.test/there"})
        if request.url.path == "/other-port":
            return httpx.Response(302, headers={"location": "http://synco.test:8080/there"})
        if request.url.path == "/away":
            return httpx.Response(302, headers={"location": "http://evil.test/there"})
        if request.url.host == "evil.test":
            raise AssertionError("followed a redirect to another host")
        return httpx.Response(200, content=b"ok")
    with Remote(BASE, transport=httpx.MockTransport(handler), retries=2, backoff=0) as remote:
        assert remote.get("same") == b"ok"
        assert remote.get("upgrade") == b"ok", "http to https on the same host"
        for path in ("away", "other-port"):
            with pytest.raises(ServerUnreachable, match="redirects to another server"):
                remote.get(path)


def test_get_from_an_offset_with_and_without_range_support():
    data = bytes(range(256)) * 100
    for ranges in (True, False):
        served = []

        def handler(request):
            served.append(request.headers.get("range"))
            rng = request.headers.get("range")
            if ranges and rng:
                start = int(rng[6:-1])
                return httpx.Response(206, content=data[start:],
                                      headers={"content-range": f"bytes {start}-{len(data) - 1}/{len(data)}"})
            return httpx.Response(200, content=data)
        seen = []
        with Remote(BASE, transport=httpx.MockTransport(handler)) as remote:
            assert remote.get("o/x", 1000, sink=seen.append) == data[1000:]
        assert b"".join(seen) == data[1000:]
        assert served == ["bytes=1000-"]


def test_a_transfer_broken_midway_continues_with_range():
    data = os.urandom(300_000)
    asked = []

    class Broken(httpx.SyncByteStream):
        def __iter__(self):
            yield data[:100_000]
            raise httpx.ReadError("connection reset")

    def handler(request):
        rng = request.headers.get("range")
        asked.append(rng)
        if rng is None:
            return httpx.Response(200, headers={"content-length": str(len(data))}, stream=Broken())
        start = int(rng[6:-1])
        return httpx.Response(206, content=data[start:],
                              headers={"content-range": f"bytes {start}-{len(data) - 1}/{len(data)}"})
    kept = []
    with Remote(BASE, transport=httpx.MockTransport(handler), backoff=0) as remote:
        assert remote.get("o/x", sink=kept.append) == data
    assert asked == [None, "bytes=100000-"]
    assert b"".join(kept) == data


# ---------------------------------------------------------------- pulls with the cache

def test_a_damaged_entry_is_fetched_again_and_the_import_is_right(session, shop, mysql_db, tmp_path):
    token, folder, manifest, _ = session
    chunks = chunks_of(manifest)
    assert len(chunks) >= 4
    first, ui = pull(token, mysql_db("a", create=False), tmp_path / "cache", Folder(folder))
    assert first.chunks_fetched == len({c["sha256"] for c in chunks}) and first.chunks_cached == 0
    assert any("0 of" in line and "chunks cached" in line for line in ui.infos), ui.infos
    cache = ChunkCache(tmp_path / "cache")
    victim = chunks[2]
    path = cache.path(victim["sha256"])
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    served = Folder(folder)
    dst = mysql_db("b", create=False)
    second, ui = pull(token, dst, tmp_path / "cache", served)
    assert second.chunks_fetched == 1
    assert served.chunk_requests({c["id"] for c in chunks}) == [(victim["id"], None)]
    assert any("damaged" in w for w in ui.warnings)
    assert mysql_fingerprint(dst) == mysql_fingerprint(shop)


def test_a_kept_partial_object_is_continued_with_range(session, shop, mysql_db, tmp_path):
    token, folder, manifest, sc = session
    big = max(chunks_of(manifest), key=lambda c: c["size"])
    assert big["size"] >= 1 << 20
    blob = (folder / "o" / big["id"]).read_bytes()
    cases = [("range", True, blob[:len(blob) // 2], f"bytes={len(blob) // 2}-"),
             ("server without ranges", False, blob[:len(blob) // 2], f"bytes={len(blob) // 2}-"),
             ("damaged start", True, os.urandom(len(blob) // 2), f"bytes={len(blob) // 2}-")]
    for label, ranges, start, first_range in cases:
        cache_dir = tmp_path / label
        partial = cache_dir / "partial" / f"{big['id']}.{sc.session_id.hex()}"
        partial.parent.mkdir(parents=True)
        partial.write_bytes(start)
        served = Folder(folder, ranges=ranges)
        dst = mysql_db("r", create=False)
        summary, _ = pull(token, dst, cache_dir, served, only=["db"])
        requests = served.chunk_requests({big["id"]})
        assert requests[0] == (big["id"], first_range), (label, requests)
        if label == "range":
            assert len(requests) == 1
            others = sum((folder / "o" / c["id"]).stat().st_size
                         for c in {c["id"]: c for c in chunks_of(manifest)}.values() if c is not big
                         and c["id"] != big["id"])
            chunk_bytes = others + len(blob) - len(start)
            ids = {c["id"] for c in chunks_of(manifest)}
            non_chunks = sum((folder / p).stat().st_size for p, _ in served.requests
                             if not p.startswith("o/") or p[2:] not in ids) - len((folder / "meta").read_bytes())
            # every byte received counts (the meta, the manifest), and of the big chunk only its rest
            assert summary.bytes_fetched == served.sent == chunk_bytes + non_chunks
        if label == "damaged start":
            assert requests == [(big["id"], f"bytes={len(start)}-"), (big["id"], None)]
        assert not partial.exists(), "a finished object's partial is removed"
        assert ChunkCache(cache_dir).get(big["sha256"], big["size"]) is not None
        assert mysql_fingerprint(dst) == mysql_fingerprint(shop), label
        mysql_execute(dst, f"DROP DATABASE IF EXISTS `{dst.database}__synco_prev`", database="")


def test_full_disk_while_caching_still_imports_and_keeps_the_cache_sound(session, shop, mysql_db, tmp_path):
    token, folder, manifest, _ = session
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)])
    assert mounted.returncode == 0, "this test needs to mount a small tmpfs (root)"
    try:
        dst = mysql_db("full", create=False)
        summary, ui = pull(token, dst, small / "cache", Folder(folder))
        assert mysql_fingerprint(dst) == mysql_fingerprint(shop)
        assert len([w for w in ui.warnings if "disk full" in w]) == 1, ui.warnings
        cache = ChunkCache(small / "cache")
        stored = [c for c in chunks_of(manifest) if cache.path(c["sha256"]).exists()]
        assert all(cache.get(c["sha256"], c["size"]) is not None for c in stored)
        assert not list((small / "cache").rglob(".tmp-*"))
    finally:
        subprocess.run(["umount", str(small)])


def test_unwritable_cache_folder_warns_once_and_pulls(session, shop, mysql_db, tmp_path):
    token, folder, _, _ = session
    (tmp_path / "blocker").write_text("a file where the cache folder would be")
    dst = mysql_db("ro", create=False)
    summary, ui = pull(token, dst, tmp_path / "blocker" / "cache", Folder(folder))
    assert mysql_fingerprint(dst) == mysql_fingerprint(shop)
    assert len([w for w in ui.warnings if "going on without it" in w]) == 1, ui.warnings


def test_no_cache_neither_reads_nor_writes(session, shop, mysql_db, tmp_path):
    token, folder, manifest, _ = session
    pull(token, mysql_db("a", create=False), tmp_path / "cache", Folder(folder))
    before = ChunkCache(tmp_path / "cache").stats()
    summary, _ = pull(token, mysql_db("b", create=False), tmp_path / "cache", Folder(folder),
                      no_cache=True)
    assert summary.chunks_cached == 0 and summary.chunks_fetched == before.entries
    summary, _ = pull(token, mysql_db("c", create=False), tmp_path / "other", Folder(folder),
                      no_cache=True)
    assert not (tmp_path / "other").exists()


# ---------------------------------------------------------------- a session that lies (issue 11)

def test_a_missing_object_is_reported_as_missing(session, mysql_db, tmp_path):
    token, folder, manifest, _ = session
    (folder / "o" / chunks_of(manifest)[1]["id"]).unlink()
    with pytest.raises(IntegrityError, match="the session lacks object"):
        pull(token, mysql_db("m", create=False), tmp_path / "cache", Folder(folder))


def test_an_expired_meta_is_refused(session, mysql_db, tmp_path):
    token, folder, _, sc = session
    meta = sc.open_meta((folder / "meta").read_bytes())
    meta.update(seq=meta["seq"] + 1, state="dumping", expires=int(time.time()) - 3600)
    meta.pop("sets", None)
    (folder / "meta").write_bytes(sc.seal_meta(meta))
    started = time.monotonic()
    with pytest.raises(SessionNotFound, match="expired at"):
        pull(token, mysql_db("e", create=False), tmp_path / "cache", Folder(folder))
    assert time.monotonic() - started < 10
