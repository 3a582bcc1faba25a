"""The SQLite engine on real files: every storage class and object kind through the Loader and
the --output script, a live WAL database dumped while another connection writes, the swap,
restore, a killed import, a target held open by another program, the unchanged check, and the
real programs on both ends."""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sourceproc import Source, synco
from synco import verify
from synco_frameworks import doctrine
from synco_source import dburl, engines
from synco_source.dburl import DatabaseUrl
from synco_source.engines.sqlite.sql import real_literal
from synco_source.errors import DatabaseError, UsageError

SCHEMA = """
PRAGMA user_version = 42;
PRAGMA application_id = 1234;
CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, i INTEGER, r REAL, t TEXT, b BLOB,
                    n NUMERIC, anything);
CREATE TABLE "order" (k TEXT PRIMARY KEY, v INT) WITHOUT ROWID;
CREATE TABLE plain (x, y);
CREATE TABLE strict_gen (id INTEGER PRIMARY KEY, v TEXT NOT NULL,
                         len INT GENERATED ALWAYS AS (length(v)) STORED,
                         twice INT AS (id * 2)) STRICT;
CREATE TABLE audit (n INTEGER);
CREATE TABLE "odd name" ("a b" TEXT, "rowid" INT);
CREATE INDEX items_i ON items (i) WHERE i > 0;
CREATE INDEX items_lower ON items (lower(t));
CREATE UNIQUE INDEX plain_xy ON plain (x, y);
CREATE VIEW items_v AS SELECT id, t FROM items;
CREATE TRIGGER items_ins AFTER INSERT ON items BEGIN INSERT INTO audit VALUES (new.id); END;
"""

FLOATS = [0.1, -0.0, 1.5, 1e300, -1e-300, 5e-324, 2.2250738585072014e-308,
          1.7976931348623157e308, float("inf"), float("-inf"), 2.0 ** 60, 123456.789, 1 / 3,
          9007199254740993.0, 0.30000000000000004]


def make_source(path: Path, wal: bool = True) -> Path:
    conn = sqlite3.connect(path, isolation_level=None)
    if wal:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(SCHEMA)
    put = "INSERT INTO items (i, r, t, b, n, anything) VALUES (?, ?, ?, ?, ?, ?)"
    for f in FLOATS:
        conn.execute(put, (1, f, "x", None, f, f))
    conn.execute(put, (-2 ** 63, None, "héllo 'quoted'\n\ttab ✓", b"\x00\xff\x01", "12", "12"))
    conn.execute(put, (2 ** 63 - 1, 2.5, "", b"", "1e3", b"blob"))
    conn.execute(put, ("not a number", "text in real", "a\x00b", None, "abc", None))
    # TEXT whose bytes are not UTF-8, and a number stored as TEXT in a column without affinity
    conn.execute("INSERT INTO items (i, t, anything) VALUES (0, CAST(X'FF00FE41' AS TEXT), '12')")
    conn.execute("DELETE FROM items WHERE id = 3")  # a gap; AUTOINCREMENT does not reuse it
    conn.execute("INSERT INTO \"order\" VALUES ('b', 2), ('a', 1), ('c', NULL)")
    conn.executemany("INSERT INTO plain VALUES (?, ?)", [(i, i * 2) for i in range(50)])
    conn.execute("DELETE FROM plain WHERE x < 10")  # rowids 11.. : kept as they are
    conn.execute("INSERT INTO strict_gen (id, v) VALUES (1, 'abc'), (5, 'hello')")
    conn.execute("INSERT INTO \"odd name\" VALUES ('x', 7)")
    conn.execute("UPDATE sqlite_sequence SET seq = 1000 WHERE name = 'items'")
    conn.close()
    return path


def url_of(path: Path) -> DatabaseUrl:
    return dburl.parse(f"sqlite://{path}")


def dump(url: DatabaseUrl) -> tuple[dict, dict[str, bytes]]:
    with engines.dumper(url) as d:
        schema = d.schema()
        return schema, {t: d.encode_chunk(t, list(d.rows(t))) for t in d.tables()}


def load(url: DatabaseUrl, schema: dict, chunks: dict[str, bytes]):
    loader = engines.loader(url)
    loader.describe_target()
    loader.begin(schema)
    for table, chunk in chunks.items():
        loader.load(table, chunk)
    loader.commit()
    return loader


def typed(path: Path) -> list:
    """Every value with its storage class, as SQLite reports them, and the objects."""
    conn = sqlite3.connect(path)
    conn.text_factory = bytes
    out = []
    for table in ("items", '"order"', "plain", "strict_gen", '"odd name"', "audit"):
        cols = [r[1] for r in conn.execute(f"PRAGMA table_xinfo({table})")]
        sel = ", ".join(f'"{c}", typeof("{c}")' for c in cols)
        rowid = "" if table == '"order"' else "_rowid_, "
        out.append(conn.execute(f"SELECT {rowid}{sel} FROM {table} ORDER BY 1").fetchall())
    out.append(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                            "WHERE name NOT LIKE 'sqlite_autoindex%' ORDER BY type, name").fetchall())
    out.append(conn.execute("SELECT * FROM sqlite_sequence").fetchall())
    out.append([conn.execute(f"PRAGMA {p}").fetchone() for p in ("user_version", "application_id", "encoding")])
    conn.close()
    return out


def test_url_forms(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert dburl.parse("sqlite:///srv/app/var/data.db") == DatabaseUrl(
        engine="sqlite", host="", port=0, user="", database="/srv/app/var/data.db")
    assert dburl.parse("sqlite:////srv/app/data.db").database == "/srv/app/data.db"
    assert dburl.parse("sqlite:db/app.sqlite").database == str(tmp_path / "db" / "app.sqlite")
    assert dburl.parse("sqlite:///srv/x.db").redacted == "sqlite:///srv/x.db"
    for bad, needle in [("sqlite://host/x.db", "not host"), ("sqlite:///:memory:", "names no"),
                        ("sqlite:", "names no"), ("sqlite:///x.db?mode=ro", "no '?'")]:
        with pytest.raises(UsageError, match=needle):
            dburl.parse(bad)


def test_doctrine_sqlite_paths(tmp_path):
    root = tmp_path / "app"
    parse = lambda text: doctrine.parse(text, ".env", "DATABASE_URL", root).database  # noqa: E731
    assert parse("sqlite:///%kernel.project_dir%/var/data.db") == str(root / "var" / "data.db")
    assert parse("sqlite:///var/data.db") == str(root / "var" / "data.db")
    assert parse("pdo-sqlite:////abs/data.db") == "/abs/data.db"
    with pytest.raises(UsageError, match=r"\.env: DATABASE_URL: names no SQLite database file"):
        parse("sqlite:///:memory:")


def test_symfony_project_on_sqlite(tmp_path):
    from synco_frameworks import detect
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "console").write_text("")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "bundles.php").write_text("<?php return [];\n")
    (tmp_path / ".env").write_text('DATABASE_URL="sqlite:///%kernel.project_dir%/var/data.db"\n')
    project = detect.resolve(tmp_path, side="source")
    assert project.database == DatabaseUrl(engine="sqlite", host="", port=0, user="",
                                           database=str(tmp_path / "var" / "data.db"))


def test_exact_reals():
    conn = sqlite3.connect(":memory:")
    for value in FLOATS + [float(i) / 7 for i in range(-500, 500)] + [2.0 ** e for e in range(-1074, 1024, 7)]:
        got = conn.execute("SELECT " + real_literal(value)).fetchone()[0]
        assert got == value and str(got) == str(value), (value, real_literal(value))


@pytest.mark.parametrize("wal", [True, False], ids=["wal", "rollback"])
def test_every_type_and_object_round_trips(tmp_path, wal):
    src = make_source(tmp_path / "src.db", wal)
    schema, chunks = dump(url_of(src))
    assert schema["sequences"] == [["items", 1000]] and schema["wal"] is wal
    dst = tmp_path / "copy" / "app.sqlite"
    dst.parent.mkdir()
    load(url_of(dst), schema, chunks)
    assert typed(dst) == typed(src)
    assert engines.fingerprint(url_of(dst)) == engines.fingerprint(url_of(src))
    # the unchanged check: the schema read back from the copy is the source's
    assert verify.local_schema_digest(url_of(dst)) == verify.schema_digest(schema)
    assert dump(url_of(dst)) == (schema, chunks)
    assert sorted(os.listdir(dst.parent)) == ["app.sqlite"]  # no lock, shadow or side file left
    # AUTOINCREMENT goes on from the source's counter; the trigger was created after the rows
    # (its table's rows are the source's, not doubled by the load), and it works
    conn = sqlite3.connect(dst)
    assert conn.execute("SELECT count(*) FROM audit").fetchone()[0] == len(FLOATS) + 4
    conn.execute("INSERT INTO items (i) VALUES (1)")
    assert conn.execute("SELECT max(id), max(audit.n) FROM items, audit").fetchone() == (1001, 1001)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == ("wal" if wal else "delete")
    conn.close()


def test_sql_script_loads_with_sqlite3(tmp_path):
    src = make_source(tmp_path / "src.db")
    schema, chunks = dump(url_of(src))
    out = io.BytesIO()
    writer = engines.sql_writer("sqlite", out)
    writer.begin(schema)
    for table, chunk in chunks.items():
        writer.load(table, chunk)
    writer.commit()
    by_module = tmp_path / "module.db"
    conn = sqlite3.connect(by_module, isolation_level=None)
    conn.executescript(out.getvalue().decode())
    conn.close()
    assert typed(by_module) == typed(src)
    assert engines.fingerprint(url_of(by_module)) == engines.fingerprint(url_of(src))
    if shutil.which("sqlite3"):
        by_shell = tmp_path / "shell.db"
        subprocess.run(["sqlite3", str(by_shell)], input=out.getvalue(), check=True, capture_output=True)
        assert typed(by_shell) == typed(src)


def test_utf16_database(tmp_path):
    src = tmp_path / "u16.db"
    conn = sqlite3.connect(src, isolation_level=None)
    conn.execute("PRAGMA encoding = 'UTF-16le'")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)")
    conn.execute("INSERT INTO t VALUES (1, 'héllo ✓'), (2, 'a' || char(0) || 'b')")
    conn.close()
    schema, chunks = dump(url_of(src))
    dst = tmp_path / "dst.db"
    load(url_of(dst), schema, chunks)
    assert typed_rows(dst) == typed_rows(src)
    assert sqlite3.connect(dst).execute("PRAGMA encoding").fetchone()[0] == "UTF-16le"


def typed_rows(path: Path) -> list:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT id, s, typeof(s), hex(s) FROM t ORDER BY id").fetchall()
    finally:
        conn.close()


def test_virtual_tables_are_refused_by_name(tmp_path):
    src = tmp_path / "fts.db"
    conn = sqlite3.connect(src)
    conn.executescript("CREATE TABLE ok (x); CREATE VIRTUAL TABLE docs USING fts5(body);"
                       "CREATE VIRTUAL TABLE \"more docs\" USING fts5(body);")
    conn.close()
    with pytest.raises(DatabaseError, match=r'virtual tables.*: docs, "more docs"$'):
        dump(url_of(src))


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(DatabaseError, match="does not exist"):
        dump(url_of(tmp_path / "nope.db"))
    (tmp_path / "text.db").write_text("not a database at all")
    with pytest.raises(DatabaseError, match="is not an SQLite 3 database"):
        dump(url_of(tmp_path / "text.db"))
    loader = engines.loader(url_of(tmp_path / "text.db"))
    try:
        with pytest.raises(DatabaseError, match="is not an SQLite 3 database"):
            loader.describe_target()
    finally:
        loader.close()


def test_live_wal_dump_is_one_snapshot_and_does_not_block_writers(tmp_path):
    """A writer moves amounts between two tables in transactions; the dump, taken meanwhile, must
    see the totals of one moment, and the writer must commit while the dump reads."""
    path = tmp_path / "live.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, v INTEGER)")
    conn.execute("CREATE TABLE b (id INTEGER PRIMARY KEY, v INTEGER)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO a VALUES (?, 100)", [(i,) for i in range(20000)])
    conn.executemany("INSERT INTO b VALUES (?, 0)", [(i,) for i in range(20000)])
    conn.execute("COMMIT")
    stop, commits = threading.Event(), []

    def writer() -> None:
        w = sqlite3.connect(path, isolation_level=None, timeout=0.5)
        n = 0
        while not stop.is_set():
            n += 1
            w.execute("BEGIN IMMEDIATE")
            w.execute("UPDATE a SET v = v - 1 WHERE id = ?", (n % 20000,))
            w.execute("UPDATE b SET v = v + 1 WHERE id = ?", ((n * 7) % 20000,))
            w.execute("INSERT INTO a VALUES (?, 0)", (100000 + n,))
            w.execute("COMMIT")
            commits.append(n)
        w.close()

    thread = threading.Thread(target=writer)
    with engines.dumper(url_of(path)) as d:
        d.schema()
        thread.start()
        while len(commits) < 20:
            pass
        records = {t: list(d.rows(t)) for t in ("a", "b")}
        during = len(commits)
    stop.set()
    thread.join()
    assert during >= 20  # the writer committed while the snapshot was held
    total = sum(int(r.split(b",")[1].rstrip(b")")) for t in records for r in records[t])
    assert total == 20000 * 100 and len(records["a"]) == len(records["b"]) == 20000


def test_restore_swaps_the_previous_file_back(tmp_path):
    src = make_source(tmp_path / "src.db")
    dst = tmp_path / "dst.db"
    conn = sqlite3.connect(dst)
    conn.execute("CREATE TABLE mine (x)")
    conn.execute("INSERT INTO mine VALUES (1)")
    conn.commit()
    conn.close()
    before = engines.fingerprint(url_of(dst))
    schema, chunks = dump(url_of(src))
    loader = load(url_of(dst), schema, chunks)
    assert loader.prev == str(tmp_path / "dst.db.synco-prev")
    assert engines.fingerprint(url_of(dst)) == engines.fingerprint(url_of(src))
    message = engines.restore(url_of(dst))
    assert "restored the previous copy" in message
    assert engines.fingerprint(url_of(dst)) == before
    assert engines.fingerprint(url_of(tmp_path / "dst.db.synco-prev")) == engines.fingerprint(url_of(src))
    engines.restore(url_of(dst))
    assert engines.fingerprint(url_of(dst)) == engines.fingerprint(url_of(src))
    with pytest.raises(DatabaseError, match="no previous copy"):
        engines.restore(url_of(tmp_path / "other.db"))


KILLED = """
import sys
from synco_source import dburl, engines
sys.path.insert(0, {tests!r})
from test_sqlite import dump, load
schema, chunks = dump(dburl.parse({src!r}))
load(dburl.parse({dst!r}), schema, chunks)
"""


@pytest.mark.parametrize("point", ["sqlite-linked", "sqlite-replaced"])
def test_a_killed_import_leaves_the_target_whole_and_the_next_run_recovers(tmp_path, point):
    src = make_source(tmp_path / "src.db")
    dst = tmp_path / "dst.db"
    conn = sqlite3.connect(dst)
    conn.execute("CREATE TABLE mine (x)")
    conn.commit()
    conn.close()
    before = engines.fingerprint(url_of(dst))
    code = KILLED.format(tests=str(Path(__file__).parent), src=f"sqlite://{src}", dst=f"sqlite://{dst}")
    run = subprocess.run([sys.executable, "-c", code], env={**os.environ, "SYNCO_TEST_SWAP_FAULT": point},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == -9, run.stderr
    now = engines.fingerprint(url_of(dst))
    assert now == (before if point == "sqlite-linked" else engines.fingerprint(url_of(src)))
    notes = engines.recover(url_of(dst))
    if point == "sqlite-linked":
        assert notes == ["removed dst.db.synco-new, left by an earlier run that was stopped before its swap"]
        assert sorted(os.listdir(tmp_path)) == ["dst.db", "src.db", "src.db-shm", "src.db-wal"] or \
            sorted(os.listdir(tmp_path)) == ["dst.db", "src.db"]
    else:
        assert notes == []
        assert engines.fingerprint(url_of(tmp_path / "dst.db.synco-prev")) == before
    schema, chunks = dump(url_of(src))
    load(url_of(dst), schema, chunks)
    assert engines.fingerprint(url_of(dst)) == engines.fingerprint(url_of(src))


def test_an_aborted_import_changes_nothing(tmp_path):
    src = make_source(tmp_path / "src.db")
    dst = tmp_path / "dst.db"
    shutil.copy(src, dst)
    schema, chunks = dump(url_of(src))
    loader = engines.loader(url_of(dst))
    loader.begin(schema)
    loader.load("items", chunks["items"])
    with pytest.raises(DatabaseError, match="not an INSERT into that table"):
        loader.load("plain", chunks["items"])
    loader.abort()
    assert sorted(p.name for p in tmp_path.iterdir() if "dst" in p.name) == ["dst.db"]


def test_one_run_per_target_and_a_target_held_open_is_refused(tmp_path):
    src = make_source(tmp_path / "src.db")
    schema, chunks = dump(url_of(src))
    dst = tmp_path / "dst.db"
    shutil.copy(src, dst)
    first = engines.loader(url_of(dst))
    first.recover()
    second = engines.loader(url_of(dst))
    with pytest.raises(DatabaseError, match="another synco run is importing into or restoring dst.db"):
        second.recover()
    first.abort()
    before = engines.fingerprint(url_of(dst))
    app = sqlite3.connect(dst, isolation_level=None)  # the application, idle, in WAL mode
    app.execute("SELECT count(*) FROM items").fetchone()
    loader = engines.loader(url_of(dst))
    loader.begin(schema)
    for table, chunk in chunks.items():
        loader.load(table, chunk)
    with pytest.raises(DatabaseError, match="is open in another program .*nothing was changed"):
        loader.commit()
    loader.abort()
    app.close()
    assert engines.fingerprint(url_of(dst)) == before
    assert not (tmp_path / "dst.db.synco-new").exists() and not (tmp_path / "dst.db.synco-lock").exists()


def test_unchanged_check_sees_local_schema_changes(tmp_path):
    src = make_source(tmp_path / "src.db")
    schema, chunks = dump(url_of(src))
    dst = tmp_path / "dst.db"
    load(url_of(dst), schema, chunks)
    assert verify.local_schema_digest(url_of(dst)) == verify.schema_digest(schema)
    conn = sqlite3.connect(dst, isolation_level=None)
    conn.execute("CREATE INDEX mine ON plain (y)")
    conn.close()
    assert verify.local_schema_digest(url_of(dst)) != verify.schema_digest(schema)


def test_serve_and_download_end_to_end(tmp_path):
    src = make_source(tmp_path / "src.db")
    dst = tmp_path / "local" / "app.sqlite"
    dst.parent.mkdir()
    with Source(["--listen", "127.0.0.1:0", "--once"], db_url=f"sqlite://{src}") as source:
        result = synco("download", source.token, "--yes", db_url=f"sqlite://{dst}")
        assert result.code == 0, result.stderr
    assert typed(dst) == typed(src)
    assert engines.fingerprint(url_of(dst)) == engines.fingerprint(url_of(src))
    conn = sqlite3.connect(dst)
    conn.execute("CREATE TABLE mine (x)")
    conn.commit()
    conn.close()
    with Source(["--listen", "127.0.0.1:0", "--once"], db_url=f"sqlite://{src}") as source:
        again = synco("download", source.token, "--yes", db_url=f"sqlite://{dst}")
        assert again.code == 0, again.stderr
        other = synco("download", source.token, "--yes", db_url="postgresql://u@127.0.0.1/x")
        assert other.code == 2 and "holds a sqlite database but --db-url is postgresql" in other.stderr
    assert (tmp_path / "local" / "app.sqlite.synco-prev").exists()
    back = synco("restore", "--yes", db_url=f"sqlite://{dst}")
    assert back.code == 0, back.stderr
    assert "mine" in [r[0] for r in sqlite3.connect(dst).execute("SELECT name FROM sqlite_master")]
