"""The strict reader (docs/FORMAT.md §5, §6) and the decompression cap (§3.4), through the real
client: authentic (sealed with the session's real key) but unexpected metas and manifests, and a
decompression bomb, end in exit 6 or 10 with one error line, never in an internal error (70)."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import resource
import time

import pytest
import zstandard

from e2e import one_error_line
from sourceproc import StaticServer, synco
from synco_source import crypto, format
from synco_source.errors import IntegrityError, UnsupportedFormat
from synco_source.session import Session

ROWS = b"INSERT INTO `t` (`a`) VALUES (1),(2);\n"
FILE = b"hello\n"
SCHEMA = {"engine": "mysql", "charset": "utf8mb4", "collation": "utf8mb4_general_ci",
          "tables": [{"name": "t", "create": "CREATE TABLE `t` (`a` int)"}], "views": [],
          "routines": [], "triggers": []}


def chunk_ref(sc: format.SessionCrypto, session: Session, plain: bytes) -> dict:
    digest = hashlib.sha256(plain).digest()
    name, blob = sc.seal_chunk(plain, digest)
    session.write_object(name, blob)
    return {"id": name, "sha256": digest.hex(), "size": len(plain)}


def good_documents(session: Session) -> tuple[dict, dict, dict]:
    """A meta and two manifests that the client accepts: the baseline every case alters."""
    sc = session.crypto
    db = {"format": 1, "name": "db", "kind": "database", "engine": "mysql", "database": "shop",
          "schema": SCHEMA, "tables": [{"name": "t", "rows": 2,
                                        "chunks": [dict(chunk_ref(sc, session, ROWS), rows=2)]}]}
    files = {"format": 1, "name": "f", "kind": "files", "root": "f", "skipped": [], "size": 6,
             "entries": [{"path": "hello.txt", "size": 6, "mtime_ns": 1_600_000_000_000_000_000,
                          "mode": 0o644, "sha256": hashlib.sha256(FILE).hexdigest(),
                          "chunks": [chunk_ref(sc, session, FILE)]}]}
    now = int(time.time())
    meta = {"format": 1, "session": session.id_hex, "seq": 5, "state": "ready", "created": now,
            "expires": now + 3600, "synco": "test",
            "sets": [{"name": "db", "kind": "database", "manifest": sc.manifest_name("db"),
                      "size": len(ROWS)},
                     {"name": "f", "kind": "files", "manifest": sc.manifest_name("f"),
                      "size": len(FILE)}]}
    return meta, db, files


def publish(session: Session, meta: dict, db: dict | list, files: dict) -> None:
    sc = session.crypto
    for set_name, doc in (("db", db), ("f", files)):
        name = sc.manifest_name(set_name)
        session._write(format.object_path(name), sc.seal_json(crypto.ROLE_MANIFEST, name, doc))
    session._write(format.META_PATH, sc.seal_meta(meta))


def meta_case(change):
    def apply(meta, db, files):
        change(meta)
    return apply


def db_case(change):
    def apply(meta, db, files):
        change(db)
    return apply


def files_case(change):
    def apply(meta, db, files):
        change(files["entries"][0])
    return apply


def chunk0(db: dict) -> dict:
    return db["tables"][0]["chunks"][0]


CASES = {
    "meta seq is a string": (meta_case(lambda m: m.update(seq="5")), 6),
    "meta set without manifest": (meta_case(lambda m: m["sets"][0].pop("manifest")), 6),
    "meta set size negative": (meta_case(lambda m: m["sets"][1].update(size=-1)), 6),
    "meta ready without sets": (meta_case(lambda m: m.pop("sets")), 6),
    "meta sets is an object": (meta_case(lambda m: m.update(sets={"db": 1})), 6),
    "meta set listed twice": (meta_case(lambda m: m["sets"].append(dict(m["sets"][1]))), 6),
    "meta unknown key": (meta_case(lambda m: m.update(mirror="x")), 10),
    "meta unknown state": (meta_case(lambda m: m.update(state="paused")), 10),
    "meta expires is a float": (meta_case(lambda m: m.update(expires=1e12)), 6),
    "manifest without tables": (db_case(lambda d: d.pop("tables")), 6),
    "chunk id not hex": (db_case(lambda d: chunk0(d).update(id="../../etc/passwd")), 6),
    "chunk sha256 short": (db_case(lambda d: chunk0(d).update(sha256="ab")), 6),
    "chunk size negative": (db_case(lambda d: chunk0(d).update(size=-1)), 6),
    "chunk size a string": (db_case(lambda d: chunk0(d).update(size="38")), 6),
    "chunk size over the cap": (db_case(lambda d: chunk0(d).update(size=(1 << 30) + 1)), 6),
    "chunk rows a float": (db_case(lambda d: chunk0(d).update(rows=2.0)), 6),
    "chunk without rows": (db_case(lambda d: chunk0(d).pop("rows")), 6),
    "table rows a bool": (db_case(lambda d: d["tables"][0].update(rows=True)), 6),
    "table chunks null": (db_case(lambda d: d["tables"][0].update(chunks=None)), 6),
    "schema a list": (db_case(lambda d: d.update(schema=[])), 6),
    "manifest unknown key": (db_case(lambda d: d.update(compression="lz4")), 10),
    "manifest unknown engine": (db_case(lambda d: d.update(engine="oracle")), 10),
    "manifest of another kind": (db_case(lambda d: d.update(kind="files")), 6),
    "entry with chunks and url": (files_case(lambda e: e.update(url="a.txt")), 6),
    "entry mode out of range": (files_case(lambda e: e.update(mode=0o10000)), 6),
    "entry chunks do not add up": (files_case(lambda e: e.update(size=7)), 6),
    "entry without sha256": (files_case(lambda e: e.pop("sha256")), 6),
    "entry path a number": (files_case(lambda e: e.update(path=7)), 6),
}


@pytest.fixture
def served(tmp_path):
    publish_dir = tmp_path / "public"
    publish_dir.mkdir()
    with StaticServer(publish_dir) as web:
        yield lambda: Session(publish_dir, web.url, 3600)


def download(session: Session, tmp_path):
    return synco("download", session.token.encode(), "--output", str(tmp_path / "dump.sql"),
                 "--files-dir", f"f={tmp_path / 'local'}", cwd=tmp_path, timeout=120)


def test_the_baseline_downloads(served, tmp_path):
    session = served()
    publish(session, *good_documents(session))
    result = download(session, tmp_path)
    assert result.code == 0, result.stderr
    assert ROWS in (tmp_path / "dump.sql").read_bytes()
    assert (tmp_path / "local" / "hello.txt").read_bytes() == FILE


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.replace(" ", "-"))
def test_an_unexpected_document_is_one_line(served, tmp_path, case):
    change, code = CASES[case]
    session = served()
    meta, db, files = good_documents(session)
    change(meta, db, files)
    publish(session, meta, db, files)
    result = download(session, tmp_path)
    line = one_error_line(result.stderr)
    assert result.code == code, result.stderr
    assert "unexpected" not in line
    assert not (tmp_path / "dump.sql").exists() and not (tmp_path / "local").exists()


def test_a_decompression_bomb_is_refused(served, tmp_path):
    """A chunk the manifest lists with 4 MiB, whose 32 KiB frame declares and holds 1 GiB:
    refused from its header, in one line, without inflating it."""
    session = served()
    meta, db, files = good_documents(session)
    out = io.BytesIO()
    with zstandard.ZstdCompressor(level=1).stream_writer(out, size=1 << 30, closefd=False) as w:
        for _ in range(64):
            w.write(bytes(16 << 20))
    chunk0(db).update(size=4 << 20)
    name = chunk0(db)["id"]
    session._write(format.object_path(name),
                   crypto.seal(session.key, session.session_id, crypto.ROLE_CHUNK, name,
                               out.getvalue(), crypto.COMPRESS_ZSTD))
    publish(session, meta, db, files)
    result = download(session, tmp_path)
    assert result.code == 6
    assert "declares 1073741824 bytes decompressed, over its limit of 4194304" in \
        one_error_line(result.stderr)
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss < 400 * 1024, "no 1 GiB"


def test_the_reader_directly():
    """What the cases above exercise, without a process: every problem a SyncoError."""
    key, sid = crypto.new_session_key(), crypto.new_session_id()
    sc = format.SessionCrypto(key, sid)
    deep = b"[" * 100_000 + b"]" * 100_000
    blob = crypto.seal(key, sid, crypto.ROLE_META, "meta", deep)
    with pytest.raises(IntegrityError, match="not valid JSON"):
        sc.open_meta(blob)
    with pytest.raises(UnsupportedFormat):
        sc.open_meta(sc.seal_meta([1, 2]))
    now = int(time.time())
    meta = {"format": 1, "session": sid.hex(), "seq": 1, "state": "created", "created": now,
            "expires": now + 60, "synco": "x"}
    assert sc.open_meta(sc.seal_meta(meta)) == meta
    assert not format.expired(meta) and format.expired(meta, now=now + 60 + 301)
    other = copy.deepcopy(meta)
    other["session"] = "00" * 16
    with pytest.raises(IntegrityError, match="another session"):
        sc.open_meta(sc.seal_meta(other))
    assert json.loads(json.dumps(meta)) == meta
