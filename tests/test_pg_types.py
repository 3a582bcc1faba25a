"""The PostgreSQL engine copies every object kind and awkward value exactly (tests/pg_all_cases.sql)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbfixtures import sql_script
from pgfixtures import pg_copy_database, pg_execute, pg_fingerprint, psql_load
from synco_source.engines.postgresql import Dumper

FIXTURE = Path(__file__).resolve().parent / "pg_all_cases.sql"


@pytest.fixture
def cases_db(pg_db):
    url = pg_db("cases")
    psql_load(url, FIXTURE)
    return url


def test_all_cases_round_trip(cases_db, pg_db):
    """Extensions, schemas, enum/domain/composite/range types, sequences, identity and generated
    columns, deferrable and exclusion constraints, NOT VALID checks, nested partitions, unlogged
    tables, expression/partial/GIN/GiST indexes, views, materialized views (populated, dependent,
    never filled), functions, a procedure, an aggregate, a BEGIN ATOMIC function, triggers (one
    disabled), statistics, comments: same pg_dump, same rows, same sequence values."""
    target = pg_db("cases_copy", create=False)
    pg_copy_database(cases_db, target)
    source = pg_fingerprint(cases_db)
    assert source["populated"] == {"public.child_totals": True, "public.never_filled": False,
                                   "public.over_totals": True}
    assert source["sequences"]["public.odd_seq"] == (565, True)  # four nextval calls in a session caching 5
    assert "CREATE EXTENSION IF NOT EXISTS btree_gist" in source["schema"]
    assert pg_fingerprint(target) == source


def test_sql_script_loads_with_psql(cases_db, pg_db):
    target = pg_db("cases_sql")
    psql_load(target, sql_script(cases_db))
    assert pg_fingerprint(target) == pg_fingerprint(cases_db)


def test_copied_objects_work(cases_db, pg_db):
    """Triggers fire (the disabled one does not), identity and sequences continue where the source
    was, the procedure and the aggregate run, the generated column is computed."""
    target = pg_db("cases_copy", create=False)
    pg_copy_database(cases_db, target)
    for url in (cases_db, target):
        assert pg_execute(url, "INSERT INTO \"Parent\" (\"Name\") VALUES ('new') RETURNING id, touched") == [(25, 1)]
        assert pg_execute(url, "INSERT INTO child (n, total) VALUES (2, 4) RETURNING id, doubled, odd, by_default") \
            == [(5, 8, 567, 4)]
        assert pg_execute(url, "CALL bump(10)", "SELECT touched FROM \"Parent\" WHERE id = 10") == [(12,)]
        assert pg_execute(url, "SELECT csv(\"Name\" ORDER BY \"Name\") FROM \"Parent\"") == \
            [("Two,new,one,thr\tee",)]
        assert pg_execute(url, "SELECT parent_count()") == [(4,)]
        assert pg_execute(url, "SELECT tgenabled FROM pg_trigger WHERE tgname = 'parent_off'") == [("D",)]


def test_awkward_values_are_copy_text(cases_db):
    """NaN/Infinity, infinite timestamps, arrays with NULLs and quotes, bytea with zero bytes, a
    text that reads \\N, tabs, CR/LF and emoji go through as COPY's escaped text, byte for byte."""
    with Dumper(cases_db) as dumper:
        rows = list(dumper.rows("public.all_types"))
        mixed = list(dumper.rows('public."Mixed ""Quoted"" Name"'))
        nothing = list(dumper.rows("public.no_columns"))
    first = rows[0].split(b"\t")
    assert first[4:7] == [b"NaN", b"Infinity", b"NaN"]
    assert first[8] == ("tab\\there\\nnew line\\r\\ncarriage \\\\N not null \\\\ backslash 'quote' \"dq\" "
                        "\U0001F600 emoji").encode()
    assert first[11] == b"\\\\x00010203ff00"
    assert first[12:15] == [b"-infinity", b"infinity", b"-infinity"]
    assert first[36] == b'{NULL,x,"quo\\\\"te","back\\\\\\\\slash","comma,","","NULL"}'
    third = rows[2].split(b"\t")
    assert third[8] == b"\\\\N" and third[6] == b"123456789012345678901234567890.123456789"
    assert third[36] == b'{"\\\\\\\\N",NULL}'
    assert third[-1] == b"line\\\\.\\n\\\\.\n"
    assert mixed == [b"a\t1\n", b"a\t1\n", b"b\t2\n", b"\\N\t\\N\n"]
    assert nothing == [b"\n", b"\n"]
