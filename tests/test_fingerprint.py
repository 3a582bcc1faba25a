"""engines.fingerprint(): rows and a content hash per table, computed by the server, the same for
the same rows in another database (the copy an import made), different after any edit."""

from __future__ import annotations

import pytest

from dbfixtures import copy_database, mysql_execute
from pgfixtures import pg_execute
from synco_source import engines
from synco_source.errors import DatabaseError

KITS = {
    "mysql": dict(make="mysql_db", run=mysql_execute, name=lambda t: t, setup=(
        "CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(20), n DOUBLE, b BLOB)",
        "INSERT INTO a SELECT seq, CONCAT('v', seq), seq / 3, IF(seq % 2, NULL, UNHEX('00FF')) FROM seq_1_to_3000",
        "CREATE TABLE e (id INT PRIMARY KEY)",
        "CREATE TABLE d (x INT)", "INSERT INTO d VALUES (1), (1), (2)",
        "CREATE VIEW v AS SELECT id FROM a")),
    "postgresql": dict(make="pg_db", run=pg_execute, name=lambda t: f"public.{t}", setup=(
        "CREATE TABLE a (id int PRIMARY KEY, v text, n float8, b bytea)",
        "INSERT INTO a SELECT g, 'v' || g, g / 3.0, CASE WHEN g % 2 = 0 THEN '\\x00ff'::bytea END "
        "FROM generate_series(1, 3000) g",
        "CREATE TABLE e (id int PRIMARY KEY)",
        "CREATE TABLE d (x int)", "INSERT INTO d VALUES (1), (1), (2)",
        "CREATE VIEW v AS SELECT id FROM a")),
}


@pytest.fixture(params=sorted(KITS))
def kit(request):
    k = dict(KITS[request.param], engine=request.param)
    k["db"] = request.getfixturevalue(k["make"])
    return k


def test_fingerprint_counts_rows_and_follows_every_edit(kit):
    name, run = kit["name"], kit["run"]
    src = kit["db"]("fp")
    run(src, *kit["setup"])
    first = engines.fingerprint(src)
    assert sorted(first) == sorted(name(t) for t in ("a", "d", "e"))  # no view
    assert [first[name(t)]["rows"] for t in ("a", "d", "e")] == [3000, 3, 0]
    assert engines.fingerprint(src) == first
    # the copy an import makes has the same fingerprint
    dst = kit["db"]("fp_copy", create=False)
    copy_database(src, dst)
    assert engines.fingerprint(dst) == first
    edits = [("UPDATE a SET v = 'changed' WHERE id = 1234", "a"),
             ("UPDATE a SET n = n + 1e-9 WHERE id = 7", "a"),
             ("UPDATE a SET b = NULL WHERE id = 2", "a"),
             ("DELETE FROM d WHERE x = 1 LIMIT 1" if kit["engine"] == "mysql"
              else "DELETE FROM d WHERE ctid = (SELECT min(ctid) FROM d WHERE x = 1)", "d"),
             ("ALTER TABLE e ADD COLUMN z INT", "e")]
    before = first
    for sql, table in edits:
        run(dst, sql)
        after = engines.fingerprint(dst)
        changed = {t for t in after if after[t] != before[t]}
        assert changed == {name(table)}, sql
        before = after
    assert before[name("d")]["rows"] == 2


def test_fingerprint_of_some_tables_and_of_a_missing_one(kit):
    name, run = kit["name"], kit["run"]
    src = kit["db"]("fp")
    run(src, *kit["setup"])
    some = engines.fingerprint(src, [name("d")])
    assert list(some) == [name("d")] and some[name("d")] == engines.fingerprint(src)[name("d")]
    with pytest.raises(DatabaseError, match="nope") as info:
        engines.fingerprint(src, [name("nope")])
    assert "\n" not in str(info.value)


def test_pg_table_with_unhashable_column_types(pg_db):
    """point and json have no hash function: such a table is hashed by its rows' text."""
    url = pg_db("fp")
    pg_execute(url, "CREATE TABLE g (id int PRIMARY KEY, p point, j json)",
               "INSERT INTO g VALUES (1, '(1,2)', '{\"a\": 1}'), (2, NULL, '[]')")
    first = engines.fingerprint(url)["public.g"]
    assert first["rows"] == 2
    pg_execute(url, "UPDATE g SET p = '(1,3)' WHERE id = 1")
    assert engines.fingerprint(url)["public.g"] != first
