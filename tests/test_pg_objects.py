"""PostgreSQL objects of the engines' second round (tests/pg_objects.sql): custom collations,
classic inheritance, rules, row-level security and policies, replica identity, column storage,
compression and statistics targets, views that are valid only once a primary key exists. Copied
by a download and by a --output script, compared with pg_dump --schema-only and every row."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbfixtures import sql_script
from pgfixtures import pg_copy_database, pg_execute, pg_fingerprint, psql_load
from synco_source.engines.postgresql import Dumper, Loader
from synco_source.errors import DatabaseError

FIXTURE = Path(__file__).resolve().parent / "pg_objects.sql"


@pytest.fixture
def objects_db(pg_db):
    url = pg_db("objects")
    psql_load(url, FIXTURE)
    return url


def test_objects_round_trip(objects_db, pg_db):
    target = pg_db("objects_copy", create=False)
    pg_copy_database(objects_db, target)
    source = pg_fingerprint(objects_db)
    for text in ("INHERITS (public.cars, public.tagged)", "CREATE RULE log_vehicle AS", "ROW LEVEL SECURITY",
                 "CREATE POLICY no_bob ON public.secrets AS RESTRICTIVE", "REPLICA IDENTITY FULL",
                 "SET STORAGE EXTERNAL", "SET COMPRESSION pglz", "SET STATISTICS 500",
                 "CREATE COLLATION public.german_ci", "GROUP BY c.id"):
        assert text in source["schema"], text
    # rows of a parent are its own (ONLY): the children's rows are counted once, in the children
    assert source["rows"]["public.vehicles"][0] == 2 and source["rows"]["public.tagged_cars"][0] == 1
    assert pg_fingerprint(target) == source


def test_objects_script_loads_with_psql(objects_db, pg_db):
    target = pg_db("objects_sql")
    psql_load(target, sql_script(objects_db))
    assert pg_fingerprint(target) == pg_fingerprint(objects_db)


def test_copied_objects_behave(objects_db, pg_db):
    """The rules fire (the disabled one does not), the collation compares case-insensitively, the
    child's own default applies, the view over the primary key answers."""
    target = pg_db("objects_copy", create=False)
    pg_copy_database(objects_db, target)
    for url in (objects_db, target):
        assert pg_execute(url, "INSERT INTO vehicle_names VALUES (3, 'sled')",
                          "SELECT what FROM audit_log ORDER BY id") == [("first",), ("vehicle sled",)]
        assert pg_execute(url, "SELECT count(*) FROM people WHERE name = 'müller'") == [(2,)]
        assert pg_execute(url, "INSERT INTO cars (id, name) VALUES (12, 'kart') RETURNING wheels, seats") == [(3, 5)]
        assert pg_execute(url, "SELECT name, total::text FROM customer_totals ORDER BY id") == \
            [("Ann", "15.50"), ("Ben", "7.25")]
        assert [r[0] for r in pg_execute(url, "SELECT name FROM big_customers")] == ["Ann"]
        assert pg_execute(url, "SELECT relrowsecurity, relforcerowsecurity FROM pg_class "
                               "WHERE oid = 'secrets'::regclass") == [(True, True)]


def test_several_refused_objects_are_named_in_one_message(pg_db):
    url = pg_db("refused")
    pg_execute(url, "CREATE OPERATOR public.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq)",
               "CREATE OPERATOR public.!== (LEFTARG = int, RIGHTARG = int, FUNCTION = int4ne)",
               "CREATE TEXT SEARCH CONFIGURATION public.my_ts (COPY = english)",
               "SELECT lo_create(4243)")
    with Dumper(url) as dumper:
        with pytest.raises(DatabaseError) as info:
            dumper.schema()
    assert str(info.value) == ("the database contains 4 objects synco cannot copy yet: 2 operators "
                               "public.!==, public.===; text search configuration public.my_ts; "
                               "large object with OID 4243")
    assert "pg_dump" in info.value.hint


def test_a_statement_that_does_not_load_is_named(objects_db, pg_db):
    """A policy for a role the target lacks: the object and statement are named, the message says
    it is the local server that cannot create it, and the target is left as it was."""
    role = "synco_t_absent_" + objects_db.database[-8:]
    pg_execute(objects_db, f"CREATE ROLE {role} NOLOGIN",
               f"CREATE POLICY for_role ON secrets FOR DELETE TO {role} USING (true)")
    with Dumper(objects_db) as dumper:
        schema = dumper.schema()
    pg_execute(objects_db, "DROP POLICY for_role ON secrets", f"DROP ROLE {role}")
    target = pg_db("objects_target")
    pg_execute(target, "CREATE TABLE keep_me (id int)", "INSERT INTO keep_me VALUES (1)")
    loader = Loader(target)
    loader.begin(schema)
    with pytest.raises(DatabaseError) as info:
        loader.commit()
    loader.abort()
    assert str(info.value).startswith(f"cannot create policy for_role on public.secrets: role \"{role}\" "
                                      "does not exist")
    assert 'CREATE POLICY "for_role" ON public.secrets AS PERMISSIVE FOR DELETE TO' in info.value.hint
    assert "not a connection problem" in info.value.hint and "left unchanged" in info.value.hint
    assert pg_execute(target, "SELECT id FROM keep_me") == [(1,)]
