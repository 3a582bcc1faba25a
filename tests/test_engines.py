"""What every database engine must do, tested the same way for each: a one-row change moves one
or two chunks, a dump reads one snapshot and streams its rows, a second download keeps the first
as the previous copy, and bad names and ports get one clear line. What only one engine has stays
in test_mysql_engine.py and test_pg_engine.py."""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Callable

import pytest

from dbfixtures import copy_database, dump_chunks, mysql_execute
from pgfixtures import pg_execute
from synco_source.engines import mysql, postgresql
from synco_source.errors import DatabaseError


@dataclasses.dataclass
class Kit:
    """One engine, as the tests below use it."""
    name: str
    module: ModuleType                 # its Dumper, Loader and restore
    make: Callable                     # (label, create=True) -> URL of a fresh database
    run: Callable                      # (url, *statements) -> rows of the last one
    table: Callable[[str], str]        # a table's name as the engine's dump names it
    big: tuple[str, str]               # CREATE and fill a 50k-row table `big` (id, name, n, note)
    stream: tuple[str, str]            # CREATE and fill 200k rows `s` (id, 150-byte pad)
    row_of_one: bytes                  # how rows() gives the one-column row (1)
    max_name: int

    def rows(self, url, *statements) -> list[tuple]:
        return [tuple(r) for r in self.run(url, *statements)]


MYSQL = dict(
    name="mysql", module=mysql, run=mysql_execute, table=lambda name: name, row_of_one=b"(1)",
    max_name=64,
    big=("CREATE TABLE big (id INT PRIMARY KEY, name VARCHAR(40), n DOUBLE, note TEXT)",
         "INSERT INTO big SELECT seq, CONCAT('name ', seq), seq / 7, "
         "REPEAT(CHAR(65 + seq % 26), seq % 50) FROM seq_1_to_50000"),
    stream=("CREATE TABLE s (id INT PRIMARY KEY, pad VARCHAR(200))",
            "INSERT INTO s SELECT seq, REPEAT('x', 150) FROM seq_1_to_200000"))
POSTGRESQL = dict(
    name="postgresql", module=postgresql, run=pg_execute, table=lambda name: f"public.{name}",
    row_of_one=b"1\n", max_name=63,
    big=("CREATE TABLE big (id int PRIMARY KEY, name text, n float8, note text)",
         "INSERT INTO big SELECT i, 'name ' || i, i / 7.0, repeat(chr(65 + i % 26), i % 50) "
         "FROM generate_series(1, 50000) i"),
    stream=("CREATE TABLE s (id int PRIMARY KEY, pad text)",
            "INSERT INTO s SELECT i, repeat('x', 150) FROM generate_series(1, 200000) i"))


@pytest.fixture(params=[MYSQL, POSTGRESQL], ids=lambda p: p["name"])
def kit(request) -> Kit:
    factory = "mysql_db" if request.param["name"] == "mysql" else "pg_db"
    return Kit(make=request.getfixturevalue(factory), **request.param)


@pytest.fixture
def big_db(kit):
    url = kit.make("big")
    kit.run(url, *kit.big)
    return url


def test_one_row_update_changes_one_or_two_chunks(kit, big_db):
    small = {"min_size": 8192, "target_size": 24576}  # ~60-100 chunks from this 2-3 MB table
    big = kit.table("big")
    _, before = dump_chunks(big_db, **small)
    kit.run(big_db, "UPDATE big SET name = 'changed' WHERE id = 31337")
    _, after = dump_chunks(big_db, **small)
    assert len(before[big]) > 10
    changed = set(after[big]) - set(before[big])
    assert 1 <= len(changed) <= 2
    assert len(after[big]) - len(changed) >= len(before[big]) - 2


def test_consistent_snapshot(kit, big_db):
    """Rows written by another connection during the dump are not in it."""
    kit.run(big_db, "CREATE TABLE other (id INT PRIMARY KEY)", "INSERT INTO other VALUES (1)")
    with kit.module.Dumper(big_db) as dumper:
        rows = dumper.rows(kit.table("big"))
        first = [next(rows) for _ in range(10)]
        kit.run(big_db, "INSERT INTO big VALUES (60000, 'late', 0, '')",
                "INSERT INTO other VALUES (2)", "UPDATE big SET name = 'late' WHERE id = 1")
        rest = list(rows)
        other = list(dumper.rows(kit.table("other")))
    assert len(first) + len(rest) == 50000
    assert not any(b"late" in r for r in first + rest)
    assert other == [kit.row_of_one]


# A fresh process dumps one table and reports how much its peak RSS grew meanwhile (Linux resets the
# peak on request): that sees the driver's C buffers too (libpq's), which tracemalloc does not.
STREAM_PROBE = """
import sys
from synco_source import engines
from synco_source.chunking import cut_rows
from synco_source.dburl import parse


def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))


url, table = parse(sys.argv[1]), sys.argv[2]
with engines.dumper(url) as dumper:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak (VmHWM) starts again from here
    before = status("VmRSS")
    size = 0
    for chunk in cut_rows(dumper.rows(table)):
        size += len(dumper.encode_chunk(table, chunk))
    grew = status("VmHWM") - before
print(size, grew)
"""


def url_text(url) -> str:
    auth = url.user + (f":{url.password}" if url.password else "")
    if url.socket:
        return f"{url.engine}://{auth}@localhost/{url.database}?socket={url.socket}"
    return f"{url.engine}://{auth}@{url.host}:{url.port}/{url.database}"


def test_rows_are_streamed(kit):
    """Dumping 200k rows (~30 MB) grows the process by about one chunk, not by the table: an
    unbuffered cursor (MySQL), COPY row by row (PostgreSQL)."""
    import subprocess
    import sys

    url = kit.make("stream")
    kit.run(url, *kit.stream)
    run = subprocess.run([sys.executable, "-c", STREAM_PROBE, url_text(url), kit.table("s")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    size, grew = map(int, run.stdout.split())
    assert size > 30_000_000  # ~30-35 MB went through
    assert grew < 30_000_000, grew  # a chunk (≤ 4 MiB), its encoding, the driver's buffers


def test_second_download_replaces_previous_copy(kit):
    source = kit.make("source")
    target = kit.make("target", create=False)
    kit.run(source, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    copy_database(source, target)
    kit.run(source, "INSERT INTO t VALUES (2)")
    copy_database(source, target)
    assert kit.rows(target, "SELECT id FROM t ORDER BY id") == [(1,), (2,)]
    prev = target.with_database(target.database + "__synco_prev")
    assert kit.rows(prev, "SELECT id FROM t") == [(1,)]


def test_restore_without_previous_copy(kit):
    target = kit.make("target")
    with pytest.raises(DatabaseError, match="no previous copy"):
        kit.module.restore(target)


def test_name_too_long(kit):
    """The target's name plus __synco_prev must fit the engine's limit: refused before anything."""
    url = kit.make("x", create=False)
    with pytest.raises(DatabaseError, match=f"longer than {kit.max_name}"):
        kit.module.Loader(url.with_database("x" * (kit.max_name - 8)))


def test_unreachable_port(kit):
    url = dataclasses.replace(kit.make("x", create=False), socket="", host="127.0.0.1", port=1)
    with pytest.raises(DatabaseError) as info:
        kit.module.Loader(url)
    assert f"cannot connect to {kit.name}://" in str(info.value) and "\n" not in str(info.value)
    assert "port" in info.value.hint
