"""A re-pull of a database that changed neither on the server nor locally imports nothing
(synco/verify.py, Unchanged): the evidence is the last import's record (the server's schema and
chunk lists then, the local fingerprints then), the local schema read back by the engine's own
dumper, and the local fingerprints now. Any local edit, rows or schema, or any change on the
server, means a full import whose result equals the source."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbfixtures import copy_database, dump_chunks, load_sql, mysql_execute, mysql_fingerprint
from e2e import databases, make_shop
from pgfixtures import pg_execute, pg_fingerprint, psql_load
from synco.verify import schema_digest
from test_streaming import Scripted, early_meta, published, run

TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize("sample", ["sakila", "mysql_all_types", "pagila", "pg_cases"])
def test_a_copy_reads_back_with_the_schema_it_was_made_from(sample, request, mysql_db, pg_db):
    """The engine's dumper describes a faithful copy exactly as it described the source: what
    lets a later pull tell that the local schema was not changed since the import."""
    if sample == "sakila":
        src, dst = request.getfixturevalue("sakila_db"), mysql_db("copy", create=False)
    elif sample == "mysql_all_types":
        src, dst = mysql_db("cases"), mysql_db("copy", create=False)
        load_sql(src, TESTS / "mysql_all_types.sql")
    elif sample == "pagila":
        src, dst = request.getfixturevalue("pagila_pg"), pg_db("copy", create=False)
    else:
        src, dst = pg_db("cases"), pg_db("copy", create=False)
        psql_load(src, TESTS / "pg_all_cases.sql")
        psql_load(src, TESTS / "pg_objects.sql")
    copy_database(src, dst)
    assert schema_digest(dump_chunks(dst)[0]) == schema_digest(dump_chunks(src)[0])


def make_pg_shop(url) -> None:
    pg_execute(url, "CREATE TABLE customer (id int PRIMARY KEY, name text, note text)",
               "INSERT INTO customer SELECT g, 'customer ' || g, repeat(md5(g::text), 4) "
               "FROM generate_series(1, 20000) g",
               "CREATE TABLE secret (id int PRIMARY KEY, value text)",
               "INSERT INTO secret VALUES (1, 'one'), (2, 'two')",
               "CREATE TABLE audit (id serial PRIMARY KEY, what text)",
               "CREATE VIEW customer_names AS SELECT id, name FROM customer",
               "CREATE FUNCTION audit_secret() RETURNS trigger LANGUAGE plpgsql AS "
               "$$BEGIN INSERT INTO audit (what) VALUES (NEW.value); RETURN NEW; END$$",
               "CREATE TRIGGER secret_audit AFTER INSERT ON secret FOR EACH ROW EXECUTE FUNCTION audit_secret()")


class Engine:
    def __init__(self, name: str, request) -> None:
        self.name = name
        mysql = name == "mysql"
        self.db = request.getfixturevalue("mysql_db" if mysql else "pg_db")
        self.server = request.getfixturevalue("mysql_server" if mysql else "pg_server")
        self.make = make_shop if mysql else make_pg_shop
        self.execute = mysql_execute if mysql else pg_execute
        self.fingerprint = mysql_fingerprint if mysql else pg_fingerprint

    def databases(self) -> set[str]:
        if self.name == "mysql":
            return databases(self.server)
        return {r[0] for r in pg_execute(self.server, "SELECT datname FROM pg_database")}


@pytest.fixture(params=["mysql", "postgresql"])
def engine(request) -> Engine:
    return Engine(request.param, request)


STREAMED = [0, 1, 2, 3]  # the session publishes its parts one by one before it is ready


def pull(tmp_path, src, dst, streamed: bool):
    session, folder = published(tmp_path / f"s{len(list(tmp_path.iterdir()))}", src)
    early = [early_meta(n) for n in STREAMED] if streamed else [early_meta(None)]  # None: no parts
    return run(session, Scripted(folder, session, early), dst)


@pytest.mark.parametrize("streamed", [False, True], ids=["ready", "streamed"])
def test_nothing_changed_nothing_imported(engine, streamed, tmp_path):
    src, dst = engine.db("src"), engine.db("dst", create=False)
    engine.make(src)
    first = pull(tmp_path, src, dst, streamed)
    assert not first.summary.unchanged and dst.database + "__synco_prev" not in engine.databases()
    second = pull(tmp_path, src, dst, streamed)
    assert second.summary.unchanged and second.summary.tables == first.summary.tables
    assert second.summary.rows == first.summary.rows and second.summary.chunks_fetched == 0
    # a full import would have kept the replaced copy as <db>__synco_prev
    assert dst.database + "__synco_prev" not in engine.databases()
    assert any("nothing to import" in line for line in second.ui.infos)
    assert engine.fingerprint(dst) == engine.fingerprint(src)


LOCAL_EDITS = {
    "row": {"mysql": ["UPDATE customer SET note = 'mine' WHERE id = 17"],
            "postgresql": ["UPDATE customer SET note = 'mine' WHERE id = 17"]},
    "index": {"mysql": ["CREATE INDEX by_name ON customer (name)"],
              "postgresql": ["CREATE INDEX by_name ON customer (name)"]},
    "view": {"mysql": ["CREATE OR REPLACE VIEW customer_names AS SELECT id FROM customer"],
             "postgresql": ["CREATE OR REPLACE VIEW customer_names AS SELECT id, name, 1 AS one FROM customer"]},
    "counter": {"mysql": ["INSERT INTO audit (what) VALUES ('x')", "DELETE FROM audit"],
                "postgresql": ["SELECT nextval('audit_id_seq')"]},
    "table": {"mysql": ["CREATE TABLE scratch (id INT)"], "postgresql": ["CREATE TABLE scratch (id int)"]},
}


@pytest.mark.parametrize("edit", sorted(LOCAL_EDITS))
def test_a_local_edit_means_a_full_import(engine, edit, tmp_path):
    """Edited rows, an added index, a changed view, an advanced sequence or AUTO_INCREMENT
    counter, an added table: never kept, the copy is the source's again."""
    src, dst = engine.db("src"), engine.db("dst", create=False)
    engine.make(src)
    pull(tmp_path, src, dst, streamed=True)
    engine.execute(dst, *LOCAL_EDITS[edit][engine.name])
    assert engine.fingerprint(dst) != engine.fingerprint(src)
    second = pull(tmp_path, src, dst, streamed=True)
    assert not second.summary.unchanged
    assert engine.fingerprint(dst) == engine.fingerprint(src)
    assert dst.database + "__synco_prev" in engine.databases()


@pytest.mark.parametrize("streamed", [False, True], ids=["ready", "streamed"])
def test_a_change_on_the_server_is_imported(engine, streamed, tmp_path):
    """A row of the last table to be dumped changes: the streamed pull has waited with the
    tables before it, and imports them all once it sees the difference."""
    src, dst = engine.db("src"), engine.db("dst", create=False)
    engine.make(src)
    pull(tmp_path, src, dst, streamed)
    engine.execute(src, "UPDATE secret SET value = 'changed' WHERE id = 2")
    second = pull(tmp_path, src, dst, streamed)
    assert not second.summary.unchanged
    assert engine.fingerprint(dst) == engine.fingerprint(src)
