"""The PostgreSQL engine on real data: round trips checked against pg_dump, determinism,
shadow/swap, restore, refusals. What every engine must do (snapshot, streaming, chunk stability,
previous copy) is in test_engines.py."""

from __future__ import annotations

import io
import time

import psycopg
import pytest

from pgfixtures import (pg_connect, pg_copy_database, pg_databases, pg_dump_chunks, pg_execute,
                        pg_fingerprint, psql_load)
from synco_source.engines.postgresql import Dumper, Loader, SqlWriter, fingerprint, post, restore
from synco_source.errors import DatabaseError


def load_all(loader, schema: dict, chunks: dict) -> None:
    loader.begin(schema)
    for table, table_chunks in chunks.items():
        for chunk in table_chunks:
            loader.load(table, chunk)


def test_chinook_round_trip(chinook_pg, pg_db):
    target = pg_db("chinook_copy", create=False)
    pg_copy_database(chinook_pg, target)
    source = pg_fingerprint(chinook_pg)
    assert pg_fingerprint(target) == source
    assert len(source["rows"]) == 11 and sum(n for n, _ in source["rows"].values()) == 15607


def test_pagila_round_trip(pagila_pg, pg_db, capsys):
    """Pagila (partitions, domains, enum, aggregate, triggers, functions, views, an unpopulated
    materialized view, GiST index, sequences) copies exactly: same pg_dump, same rows."""
    target = pg_db("pagila_copy", create=False)
    start = time.perf_counter()
    schema, chunks = pg_dump_chunks(pagila_pg)
    dumped = time.perf_counter()
    loader = Loader(target)
    load_all(loader, schema, chunks)
    loader.commit()
    loaded = time.perf_counter()
    size = sum(len(c) for cs in chunks.values() for c in cs)
    with capsys.disabled():
        print(f"\npagila: {size / 1e6:.1f} MB of COPY text, dump {dumped - start:.2f} s "
              f"({size / 1e6 / (dumped - start):.1f} MB/s), load {loaded - dumped:.2f} s")
    source = pg_fingerprint(pagila_pg)
    assert source["populated"] == {"public.rental_by_category": False}
    assert sum(n for n, _ in source["rows"].values()) == 49636
    assert pg_fingerprint(target) == source


def test_sql_script_of_pagila_loads_with_psql(pagila_pg, pg_db):
    schema, chunks = pg_dump_chunks(pagila_pg)
    out = io.BytesIO()
    writer = SqlWriter(out)
    load_all(writer, schema, chunks)
    writer.commit()
    assert b"\\.\n" in out.getvalue()
    target = pg_db("pagila_sql")
    psql_load(target, out.getvalue())
    assert pg_fingerprint(target) == pg_fingerprint(pagila_pg)


def test_dump_is_deterministic(pagila_pg):
    """Two dumps of the same data give the same schema and the same chunk bytes."""
    first = pg_dump_chunks(pagila_pg)
    second = pg_dump_chunks(pagila_pg)
    assert first == second
    assert len(first[1]) == 14 + 7  # 14 plain tables and 7 partitions hold rows
    assert "public.payment" not in first[1] and len(first[1]["public.payment_p2022_01"]) == 1


@pytest.fixture
def big_db(pg_db):
    """One table of 50k rows, made server-side."""
    url = pg_db("big")
    pg_execute(url, "CREATE TABLE big (id int PRIMARY KEY, name text, n float8, note text)",
               "INSERT INTO big SELECT i, 'name ' || i, i / 7.0, repeat(chr(65 + i % 26), i % 50) "
               "FROM generate_series(1, 50000) i")
    return url



def test_rows_are_pk_ordered_copy_text(big_db):
    pg_execute(big_db, "CREATE TABLE nokey (a text, b int)",
               "INSERT INTO nokey VALUES ('b', 2), (NULL, 1), ('a', 3), ('b', 1)")
    with Dumper(big_db) as dumper:
        rows = dumper.rows("public.big")
        assert [next(rows) for _ in range(2)] == [b"1\tname 1\t0.14285714285714285\tB\n",
                                                  b"2\tname 2\t0.2857142857142857\tCC\n"]
        assert len(list(rows)) == 49998
        assert list(dumper.rows("public.nokey")) == [b"a\t3\n", b"b\t1\n", b"b\t2\n", b"\\N\t1\n"]


SLOW_TAIL = ("COPY (SELECT id, pg_catalog.pg_sleep(CASE WHEN id = 40000 THEN 5 ELSE 0 END) "
             "FROM generate_series(1, 50000) id) TO STDOUT")


def test_rows_stopped_early_cancel_the_copy(big_db):
    """The dump reads COPY rows from libpq directly (sql.copy_out): a reader that stops half-way
    (an error further on, Ctrl-C) cancels the COPY instead of waiting for the rest of it."""
    with Dumper(big_db) as dumper:
        dumper._copy["public.big"] = SLOW_TAIL
        rows = dumper.rows("public.big")
        assert [next(rows) for _ in range(2)] == [b"1\t\n", b"2\t\n"]
        start = time.monotonic()
        rows.close()
        assert time.monotonic() - start < 2


def test_error_while_rows_arrive_is_one_line(big_db):
    """A COPY the server ends with an error after sending rows (here a statement timeout) fails
    as a DatabaseError naming the table, not as a short table."""
    with Dumper(big_db) as dumper:
        dumper.conn.execute("SELECT pg_catalog.set_config('statement_timeout', '300', false)")
        dumper._copy["public.big"] = SLOW_TAIL
        with pytest.raises(DatabaseError, match=r"cannot read the rows of table public\.big: "
                                                r"canceling statement due to statement timeout"):
            got = 0
            for _ in dumper.rows("public.big"):
                got += 1
    assert 0 < got < 40000




def test_failed_load_and_abort_leave_target_unchanged(chinook_pg, pg_db):
    target = pg_db("target", create=False)
    pg_copy_database(chinook_pg, target)
    before = pg_fingerprint(target)
    source = pg_db("source")
    pg_execute(source, "CREATE TABLE parent (id int PRIMARY KEY)")
    schema, _ = pg_dump_chunks(source)
    loader = Loader(target)
    loader.begin(schema)
    loader.load("public.parent", b"1\n")
    loader.load("public.parent", b"2\nnot a number\n")
    # the lanes load in the background: the failure comes at a later load() or at commit()
    with pytest.raises(DatabaseError) as info:
        loader.commit()
    assert "cannot load rows into table public.parent" in str(info.value) and "\n" not in str(info.value)
    loader.abort()
    assert pg_fingerprint(target) == before
    assert target.database + "__synco_new" not in pg_databases(target)


def test_commit_keeps_previous_and_restore_swaps_back(chinook_pg, pg_db):
    target = pg_db("target")
    pg_execute(target, "CREATE TABLE mine (id int PRIMARY KEY, v text)", "INSERT INTO mine VALUES (1, 'old')",
               "CREATE VIEW mine_v AS SELECT v FROM mine")
    old = pg_fingerprint(target)
    new = pg_fingerprint(chinook_pg)
    pg_copy_database(chinook_pg, target)
    prev = target.with_database(target.database + "__synco_prev")
    assert pg_fingerprint(target) == new
    assert pg_fingerprint(prev) == old
    assert target.database + "__synco_new" not in pg_databases(target)
    message = restore(target)
    assert "restored" in message and "\n" not in message
    assert pg_fingerprint(target) == old and pg_fingerprint(prev) == new
    restore(target)
    assert pg_fingerprint(target) == new and pg_fingerprint(prev) == old



def test_target_in_use_is_not_replaced(pg_db):
    """Another session on the target: commit refuses with one clear line, nothing changes."""
    source = pg_db("source")
    target = pg_db("target")
    pg_execute(source, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    pg_execute(target, "CREATE TABLE mine (id int)")
    schema, chunks = pg_dump_chunks(source)
    loader = Loader(target)
    load_all(loader, schema, chunks)
    with pg_connect(target) as other:
        other.execute("SELECT 1")
        with pytest.raises(DatabaseError) as info:
            loader.commit()
        assert "is in use by 1 other session" in str(info.value) and "\n" not in str(info.value)
        assert "nothing was changed" in str(info.value) and "close" in info.value.hint
        loader.abort()
    assert pg_execute(target, "SELECT count(*) FROM pg_tables WHERE tablename = 'mine'") == [(1,)]
    assert target.database + "__synco_new" not in pg_databases(target)
    assert target.database + "__synco_prev" not in pg_databases(target)




def test_unsupported_server_version(pg_db, monkeypatch):
    """Servers older than PostgreSQL 14 are refused by name when the dump starts."""
    from synco_source.engines.postgresql import catalog

    url = pg_db("old")
    real = catalog.database_info
    monkeypatch.setattr(catalog, "database_info", lambda conn: {**real(conn), "server_version": "13.11",
                                                                "server_version_num": 130011})
    with pytest.raises(DatabaseError) as info:
        Dumper(url).__enter__()
    assert str(info.value) == "PostgreSQL 13.11 is not supported: synco needs PostgreSQL 14 or later"
    assert "pg_dump" in info.value.hint


@pytest.fixture
def reader_role(pg_db):
    url = pg_db("rights")
    role = "synco_t_reader_" + url.database[-10:]
    pg_execute(url, f"CREATE ROLE {role} LOGIN", "CREATE TABLE open_t (id int PRIMARY KEY)",
               "CREATE TABLE secret (id int PRIMARY KEY)", f"GRANT SELECT ON open_t TO {role}")
    yield url, role
    pg_execute(url, f"DROP OWNED BY {role}", f"DROP ROLE {role}")


def test_user_without_read_rights(reader_role):
    url, role = reader_role
    with Dumper(url.__class__(**{**url.__dict__, "user": role})) as dumper:
        with pytest.raises(DatabaseError) as info:
            dumper.schema()
    assert str(info.value) == "the user may not read the table public.secret (permission denied)"
    assert "grant" in info.value.hint


BAD_OBJECTS = [
    ("CREATE OPERATOR public.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq)", "operator public.==="),
    ("CREATE TYPE public.two AS (a int); CREATE FUNCTION public.tt(int) RETURNS public.two LANGUAGE sql "
     "AS 'SELECT ROW($1)::public.two'; CREATE CAST (int AS public.two) WITH FUNCTION public.tt(int)",
     "cast integer AS public.two"),
    ("CREATE TEXT SEARCH CONFIGURATION public.my_ts (COPY = english)", "text search configuration public.my_ts"),
    ("CREATE FOREIGN DATA WRAPPER dummy; CREATE SERVER srv FOREIGN DATA WRAPPER dummy; "
     "CREATE FOREIGN TABLE public.ft (id int) SERVER srv",
     "the database contains 3 objects synco cannot copy yet: foreign table public.ft; "
     "foreign-data wrapper dummy; foreign server srv"),
    ("CREATE FUNCTION public.evt() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN END'; "
     "CREATE EVENT TRIGGER evt ON ddl_command_start EXECUTE FUNCTION public.evt()", "event trigger evt"),
    ("CREATE TABLE public.pubt (id int PRIMARY KEY); CREATE PUBLICATION pub FOR TABLE public.pubt", "publication pub"),
    ("CREATE AGGREGATE public.pct(float8 ORDER BY float8) (SFUNC = ordered_set_transition, STYPE = internal, "
     "FINALFUNC = percentile_disc_final, FINALFUNC_EXTRA)", "ordered-set or moving aggregate public.pct(double precision ORDER BY double precision)"),
    ("SELECT lo_create(4242)", "large object with OID 4242"),
    ("CREATE TYPE public.pair AS (a int, b int); CREATE TABLE public.typed OF public.pair",
     "typed table (CREATE TABLE ... OF type) public.typed"),
    ("CREATE TYPE public.shell", "pseudo-type (shell type) public.shell"),
]


@pytest.mark.parametrize("sql, named", BAD_OBJECTS, ids=[n.split(" public")[0][-40:] for _, n in BAD_OBJECTS])
def test_unknown_object_kinds_are_refused_by_name(pg_db, sql, named):
    url = pg_db("bad")
    pg_execute(url, sql)
    with Dumper(url) as dumper:
        with pytest.raises(DatabaseError) as info:
            dumper.schema()
    whole = named if named.startswith("the database contains") else \
        f"the database contains the {named}, which synco cannot copy yet"
    assert str(info.value) == whole
    assert "pg_dump" in info.value.hint


def test_mysql_dump_is_refused_before_anything_is_created(pg_db):
    target = pg_db("target", create=False)
    loader = Loader(target)
    with pytest.raises(DatabaseError, match="cannot load a 'mysql' dump into PostgreSQL"):
        loader.begin({"engine": "mysql"})
    loader.abort()
    assert not {target.database, target.database + "__synco_new"} & pg_databases(target)


def test_unknown_database(pg_server):
    with pytest.raises(DatabaseError) as info:
        Dumper(pg_server.with_database("synco_no_such_db")).__enter__()
    assert "does not exist" in str(info.value) and "database name" in info.value.hint


# ---------------------------------------------------------------- after the rows (post.py)

def _loaded_shadow(source, target):
    """A Loader whose shadow database holds ``source``'s tables and rows, nothing after them."""
    schema, chunks = pg_dump_chunks(source)
    loader = Loader(target)
    load_all(loader, schema, chunks)
    loader._lanes.finish()
    loader._close_lanes()
    return loader, schema


def _execute(conn, obj):
    try:
        conn.execute(obj["sql"])
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot create {obj['kind']} {obj['name']}: {exc}") from None


def _post_run(loader, schema, workers=2):
    return post.run(schema["post"], loader.conn, lambda: loader._session("UTF8"), _execute, workers=workers)


def test_post_reads_a_table_once_its_keys_exist():
    statements = [
        {"kind": "constraint", "name": "a_pkey on public.a", "sql": 'ALTER TABLE ONLY public.a ADD CONSTRAINT "a_pkey" PRIMARY KEY (id)'},
        {"kind": "constraint", "name": "u on public.\"B b\"", "sql": 'ALTER TABLE ONLY public."B b" ADD CONSTRAINT "u" UNIQUE (x)'},
        {"kind": "constraint", "name": "a_x on public.a", "sql": 'ALTER TABLE ONLY public.a ADD CONSTRAINT "a_x" EXCLUDE USING gist (x WITH &&)'},
        {"kind": "index", "name": "public.c_x", "sql": "CREATE UNIQUE INDEX c_x ON public.c USING btree (x)"},
        {"kind": "constraint", "name": "fk on public.c",
         "sql": 'ALTER TABLE ONLY public.c ADD CONSTRAINT "fk" FOREIGN KEY (a) REFERENCES public.a(id)'},
        {"kind": "constraint", "name": "m_pkey on public.m", "sql": 'ALTER TABLE ONLY public.m ADD CONSTRAINT "m_pkey" PRIMARY KEY (id)'},
    ]
    # c has no key constraint (an index, a foreign key: a read does not hold them up); m is no table
    assert post.last_keys(statements, {"public.a", 'public."B b"', "public.c"}) == {"public.a": 2, 'public."B b"': 1}


def test_post_fingerprint_taken_meanwhile_is_that_of_the_finished_database(pagila_pg, pg_db):
    """Pagila's post statements in order, the row hashes on two more connections meanwhile: the
    copy is the source (schema dump and rows; the dumper reads back the source's very schema, so
    the statements kept their order), and the fingerprint is the one fingerprint() takes of the
    finished database."""
    loader, schema = _loaded_shadow(pagila_pg, pg_db("pagila_post", create=False))
    try:
        prints = _post_run(loader, schema, workers=2)
        shadow = loader.url.with_database(loader.shadow)
        assert prints == fingerprint(shadow)
        assert prints["public.payment_p2022_01"]["rows"] > 0
        loader.conn.close()
        assert pg_fingerprint(shadow) == pg_fingerprint(pagila_pg)
        with Dumper(shadow) as copy, Dumper(pagila_pg) as source:
            assert copy.schema()["post"] == source.schema()["post"]
    finally:
        loader.abort()


def test_post_build_that_fails_fails_the_import(pg_db):
    """A key that the rows break (here: duplicates under a UNIQUE constraint) raises the
    statement's error; the reading connections are closed, so the shadow database can be dropped."""
    source = pg_db("post_src")
    pg_execute(source, "CREATE TABLE a (id int PRIMARY KEY, x int UNIQUE)", "CREATE TABLE b (id int PRIMARY KEY)",
               "INSERT INTO a SELECT i, i FROM generate_series(1, 1000) i", "INSERT INTO b VALUES (1)")
    schema, chunks = pg_dump_chunks(source)
    chunks["public.a"] = [c + b"1001\t1\n" for c in chunks["public.a"]]
    target = pg_db("post_dst", create=False)
    loader = Loader(target)
    load_all(loader, schema, chunks)
    loader._lanes.finish()
    loader._close_lanes()
    try:
        with pytest.raises(DatabaseError, match=r"cannot create constraint a_x_key on public\.a: could not create unique index"):
            _post_run(loader, schema, workers=2)
    finally:
        loader.abort()
    assert target.database + "__synco_new" not in pg_databases(target)
