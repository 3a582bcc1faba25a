"""The MySQL engine on real data: round trips, determinism, shadow/swap, errors. What every engine
must do (snapshot, streaming, chunk stability, previous copy) is in test_engines.py."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from dbfixtures import mysql_execute as execute
from dbfixtures import (copy_database, dump_chunks, load_sql, mysql_fingerprint,
                        sql_script)
from synco_source.engines.mysql import Dumper, Loader, restore
from synco_source.errors import DatabaseError

FIXTURE = Path(__file__).resolve().parent / "mysql_all_types.sql"


def databases(url) -> set[str]:
    return {r[0] for r in execute(url, "SHOW DATABASES", database="")}


def test_sakila_round_trip(sakila_db, mysql_db, capsys):
    """Sakila (geometry, BLOB, ENUM/SET, views, triggers, routines, 22 FKs) copies exactly."""
    target = mysql_db("sakila_copy", create=False)
    start = time.perf_counter()
    schema, chunks = dump_chunks(sakila_db)
    dumped = time.perf_counter()
    loader = Loader(target)
    loader.begin(schema)
    for table, table_chunks in chunks.items():
        for chunk in table_chunks:
            loader.load(table, chunk)
    loader.commit()
    loaded = time.perf_counter()
    size = sum(len(c) for cs in chunks.values() for c in cs)
    with capsys.disabled():
        print(f"\nsakila: {size / 1e6:.1f} MB of SQL, dump {dumped - start:.2f} s "
              f"({size / 1e6 / (dumped - start):.1f} MB/s), load {loaded - dumped:.2f} s "
              f"({size / 1e6 / (loaded - dumped):.1f} MB/s)")
    assert len(schema["views"]) == 7 and len(schema["triggers"]) == 6 and len(schema["routines"]) == 6
    assert mysql_fingerprint(target) == mysql_fingerprint(sakila_db)


def test_chinook_round_trip(chinook_db, mysql_db):
    target = mysql_db("chinook_copy", create=False)
    copy_database(chinook_db, target)
    assert mysql_fingerprint(target) == mysql_fingerprint(chinook_db)


def test_sql_script_of_sakila_loads_with_the_client(sakila_db, mysql_db):
    target = mysql_db("sakila_sql")
    load_sql(target, sql_script(sakila_db))
    assert mysql_fingerprint(target) == mysql_fingerprint(sakila_db)


def test_dump_is_deterministic(sakila_db):
    """Two dumps of the same data give the same schema and the same chunk bytes."""
    first = dump_chunks(sakila_db)
    second = dump_chunks(sakila_db)
    assert first == second
    assert sum(len(c) for c in first[1].values()) >= 16  # one chunk per table at least


@pytest.fixture
def big_db(mysql_db):
    """One table of 50k rows (MariaDB's sequence engine makes them server-side)."""
    url = mysql_db("big")
    execute(url, "CREATE TABLE big (id INT PRIMARY KEY, name VARCHAR(40), n DOUBLE, note TEXT)",
            "INSERT INTO big SELECT seq, CONCAT('name ', seq), seq / 7, REPEAT(CHAR(65 + seq % 26), seq % 50) "
            "FROM seq_1_to_50000")
    return url





def test_failed_load_and_abort_leave_target_unchanged(mysql_db):
    target = mysql_db("target")
    load_sql(target, FIXTURE)
    before = mysql_fingerprint(target)
    source = mysql_db("source")
    execute(source, "CREATE TABLE parent (id INT PRIMARY KEY)")
    schema, chunks = dump_chunks(source)
    loader = Loader(target)
    loader.begin(schema)
    loader.load("parent", b"INSERT INTO `parent` (`id`) VALUES (1);\n")
    with pytest.raises(DatabaseError) as info:
        loader.load("parent", b"INSERT INTO `parent` (`id`) VALUES (2);\nINSERT INTO nonsense;\n")
    assert "cannot load rows into table 'parent'" in str(info.value) and "\n" not in str(info.value)
    loader.abort()
    assert mysql_fingerprint(target) == before
    assert target.database + "__synco_new" not in databases(target)


def test_commit_keeps_previous_and_restore_swaps_back(mysql_db, chinook_db):
    """A target with its own tables, views, triggers and routines is replaced; the old one is kept
    as __synco_prev with all its objects; restore() swaps them back, twice."""
    target = mysql_db("target")
    load_sql(target, FIXTURE)
    execute(target, f"ALTER DATABASE `{target.database}` CHARACTER SET latin1 COLLATE latin1_swedish_ci")
    old = mysql_fingerprint(target)
    new = mysql_fingerprint(chinook_db)
    assert old["database"] != new["database"], "the two differ in charset, so the swap must move it"
    copy_database(chinook_db, target)
    prev = target.with_database(target.database + "__synco_prev")
    assert mysql_fingerprint(target)["tables"] == new["tables"]
    assert mysql_fingerprint(target) == new, "tables, objects and the database's charset"
    assert mysql_fingerprint(prev) == old
    assert target.database + "__synco_new" not in databases(target)
    message = restore(target)
    assert "restored" in message and "\n" not in message
    assert mysql_fingerprint(target) == old
    assert mysql_fingerprint(prev)["tables"] == new["tables"]
    restore(target)
    assert mysql_fingerprint(target)["tables"] == new["tables"]
    assert mysql_fingerprint(prev) == old



def test_swap_failure_rolls_back(mysql_db):
    """If creating the new views fails after the RENAME, the target ends exactly as before."""
    target = mysql_db("target")
    load_sql(target, FIXTURE)
    before = mysql_fingerprint(target)
    source = mysql_db("source")
    execute(source, "CREATE TABLE parent (id INT PRIMARY KEY)", "INSERT INTO parent VALUES (5)",
            "CREATE VIEW v_new AS SELECT id FROM parent")
    schema, chunks = dump_chunks(source)
    schema["views"][0]["create"] = "CREATE VIEW `v_new` AS SELECT no_such_column FROM parent"
    loader = Loader(target)
    loader.begin(schema)
    for chunk in chunks["parent"]:
        loader.load("parent", chunk)
    with pytest.raises(DatabaseError) as info:
        loader.commit()
    assert "cannot create view 'v_new'" in str(info.value) and "nothing was changed" in str(info.value)
    assert mysql_fingerprint(target) == before




def test_wrong_password(mysql_server, mysql_db):
    url = mysql_db("auth")
    execute(url, "CREATE USER IF NOT EXISTS 'synco_test_user'@'%' IDENTIFIED BY 'right'",
            "CREATE USER IF NOT EXISTS 'synco_test_user'@'localhost' IDENTIFIED BY 'right'")
    try:
        bad = dataclasses.replace(url, user="synco_test_user", password="wrong")
        with pytest.raises(DatabaseError) as info:
            Dumper(bad).__enter__()
        assert "cannot connect to" in str(info.value) and "Access denied" in str(info.value)
        assert "password" in info.value.hint and "\n" not in str(info.value)
        assert "wrong" not in str(info.value)
    finally:
        execute(url, "DROP USER IF EXISTS 'synco_test_user'@'%'", "DROP USER IF EXISTS 'synco_test_user'@'localhost'")


def test_unknown_database(mysql_server):
    with pytest.raises(DatabaseError) as info:
        Dumper(mysql_server.with_database("synco_no_such_db")).__enter__()
    assert "Unknown database" in str(info.value) and "database name" in info.value.hint



def test_swap_ignores_ctrl_c_while_it_runs():
    import signal

    from synco_source.engines.mysql.load import no_sigint

    before = signal.getsignal(signal.SIGINT)
    with no_sigint():
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGINT) is before


def test_long_chunks_become_several_statements(big_db):
    """encode_chunk starts a new INSERT after 1 MiB; the Loader splits on the statement ends."""
    with Dumper(big_db) as dumper:
        chunk = dumper.encode_chunk("big", list(dumper.rows("big")))
    statements = chunk.split(b";\n")
    assert statements[-1] == b"" and len(statements) - 1 == chunk.count(b"INSERT INTO `big`") == 4
    assert all(len(s) < (1 << 20) + 200 for s in statements)


# ---------------------------------------------------------------------------------------------
# "localhost" is the server's socket, as to PHP and the mysql client

def test_localhost_on_the_default_port_is_the_local_socket(tmp_path, monkeypatch):
    """The first socket that answers, $MYSQL_UNIX_PORT first; a stale socket file (its server
    gone), another file or no socket at all leave localhost to TCP."""
    import socket as sockets

    from synco_source.dburl import parse
    from synco_source.engines.mysql import sql

    def listening(path):
        server = sockets.socket(sockets.AF_UNIX)
        server.bind(str(path))
        server.listen()
        return server

    stale = sockets.socket(sockets.AF_UNIX)
    stale.bind(str(tmp_path / "stale.sock"))
    stale.close()  # the file stays, nobody answers
    (tmp_path / "not-a-socket").write_text("")
    live, other = listening(tmp_path / "mysqld.sock"), listening(tmp_path / "other.sock")
    try:
        monkeypatch.setattr(sql, "DEFAULT_SOCKETS", tuple(str(tmp_path / n) for n in (
            "none", "not-a-socket", "stale.sock", "mysqld.sock")))
        monkeypatch.delenv("MYSQL_UNIX_PORT", raising=False)
        assert sql.resolve_localhost(parse("mysql://u@localhost/db")).socket == str(tmp_path / "mysqld.sock")
        for stays_tcp in ("mysql://u@localhost:3307/db", "mysql://u@127.0.0.1/db",
                          "mysql://u@db.internal/db"):
            assert sql.resolve_localhost(parse(stays_tcp)).socket == "", stays_tcp
        explicit = parse("mysql://u@localhost/db?socket=/elsewhere.sock")
        assert sql.resolve_localhost(explicit) == explicit
        monkeypatch.setenv("MYSQL_UNIX_PORT", str(tmp_path / "other.sock"))
        assert sql.resolve_localhost(parse("mysql://u@localhost/db")).socket == str(tmp_path / "other.sock")
        monkeypatch.setattr(sql, "DEFAULT_SOCKETS", (str(tmp_path / "stale.sock"),))
        monkeypatch.setenv("MYSQL_UNIX_PORT", str(tmp_path / "none"))
        assert sql.resolve_localhost(parse("mysql://u@localhost/db")).socket == ""
    finally:
        live.close()
        other.close()


def test_connect_to_localhost_uses_the_socket(mysql_server, monkeypatch):
    """A real connection to mysql://root@localhost goes through the server's socket."""
    from synco_source.dburl import parse
    from synco_source.engines.mysql import sql

    path = mysql_server.socket or sql.local_socket()
    assert path, "this test needs the server's Unix socket"
    monkeypatch.setenv("MYSQL_UNIX_PORT", path)
    url = parse(f"mysql://{mysql_server.user}@localhost/synco_t_unused")
    conn = Loader(url).conn
    try:
        assert conn.unix_socket == path
        assert sql.query(conn, "SELECT 1") == [(1,)]
    finally:
        conn.close()
    # and what messages and prompts show is where it connects
    from synco_source import engines

    assert engines.resolve(url).redacted == f"mysql://{mysql_server.user}@socket {path}/synco_t_unused"
