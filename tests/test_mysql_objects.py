"""MariaDB objects beyond plain tables, copied as mariadb-dump copies them (FIXTURE below):
sequences with their current value and the defaults that call them, system-versioned tables (their
current rows), invisible columns (their values), events (schedule, status, time zone, sql_mode);
through the Loader (shadow and swap) and through an --output script loaded with the client. What
is still refused is named in one message; a statement the local server rejects is named too."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from dbfixtures import mysql_execute as execute
from dbfixtures import copy_database, dump_chunks, load_sql, mysql_client, sql_script
from synco_source.engines.mysql import Dumper, Loader, restore
from synco_source.errors import DatabaseError

# Loaded with the mariadb client into an empty database (the events need its DELIMITER).
FIXTURE = b"""
SET NAMES utf8mb4;
SET time_zone = '+00:00';

CREATE SEQUENCE s_default;
CREATE SEQUENCE s_nocache START WITH 100 INCREMENT BY 5 MINVALUE 10 MAXVALUE 100000 NOCACHE CYCLE COMMENT 'seq; it''s';
CREATE SEQUENCE s_desc START WITH -5 INCREMENT BY -3 MINVALUE -100 MAXVALUE -1 CACHE 2 CYCLE;
CREATE SEQUENCE s_cycled START WITH 5 MINVALUE 1 MAXVALUE 7 NOCACHE CYCLE;
CREATE SEQUENCE s_restarted START WITH 10 NOCACHE;
CREATE SEQUENCE `s odd ``name``` NOCACHE ENGINE=Aria;
CREATE SEQUENCE s_unused;
ALTER SEQUENCE s_restarted RESTART WITH 3;
SELECT NEXTVAL(s_default), NEXTVAL(s_default), NEXTVAL(s_nocache), NEXTVAL(s_nocache), NEXTVAL(s_desc),
       NEXTVAL(s_desc), NEXTVAL(s_desc), NEXTVAL(`s odd ``name```);
SELECT NEXTVAL(s_cycled), NEXTVAL(s_cycled), NEXTVAL(s_cycled), NEXTVAL(s_cycled);

CREATE TABLE orders (
  id BIGINT NOT NULL DEFAULT NEXTVAL(s_nocache) PRIMARY KEY,
  code BIGINT DEFAULT (NEXT VALUE FOR `s odd ``name```),
  note VARCHAR(20),
  secret INT INVISIBLE DEFAULT 42 COMMENT 'invisible'
);
INSERT INTO orders (note) VALUES ('first'), ('second');
INSERT INTO orders (id, note, secret) VALUES (1, 'explicit', NULL);

CREATE TABLE all_hidden_but_id (id INT PRIMARY KEY, a INT INVISIBLE, b TEXT INVISIBLE);
INSERT INTO all_hidden_but_id (id, a, b) VALUES (1, 10, 'ten'), (2, NULL, 'two; it''s');

CREATE TABLE hist (id INT PRIMARY KEY, v VARCHAR(10), hidden INT INVISIBLE) WITH SYSTEM VERSIONING;
INSERT INTO hist (id, v, hidden) VALUES (1, 'one', 11), (2, 'two', 22), (3, 'three', 33);
UPDATE hist SET v = 'ONE' WHERE id = 1;
DELETE FROM hist WHERE id = 2;

CREATE TABLE hist_explicit (
  id INT NOT NULL AUTO_INCREMENT,
  a INT,
  rs TIMESTAMP(6) GENERATED ALWAYS AS ROW START INVISIBLE,
  re TIMESTAMP(6) GENERATED ALWAYS AS ROW END INVISIBLE,
  PRIMARY KEY (id, re),
  PERIOD FOR SYSTEM_TIME (rs, re)
) WITH SYSTEM VERSIONING;
INSERT INTO hist_explicit (a) VALUES (1), (2);
UPDATE hist_explicit SET a = 20 WHERE a = 2;

CREATE TABLE hist_partial (id INT PRIMARY KEY, kept INT, untracked INT WITHOUT SYSTEM VERSIONING)
  WITH SYSTEM VERSIONING;
INSERT INTO hist_partial VALUES (1, 1, 1);
UPDATE hist_partial SET kept = 2;

SET time_zone = '+02:00';
SET sql_mode = 'ANSI_QUOTES';
CREATE DEFINER = `synco_nobody`@`localhost` EVENT ev_every ON SCHEDULE EVERY 1 HOUR
  STARTS '2035-01-01 00:00:00' ENDS '2036-01-01 00:00:00' ON COMPLETION PRESERVE DISABLE ON SLAVE
  COMMENT 'every; hour' DO INSERT INTO "orders" (note) VALUES ('event');
SET time_zone = '+00:00';
SET sql_mode = DEFAULT;
DELIMITER ;;
CREATE EVENT ev_at ON SCHEDULE AT '2035-06-01 12:00:00' DISABLE DO
BEGIN
  INSERT INTO orders (note) VALUES ('a;b');
  INSERT INTO orders (note) VALUES ('c');
END;;
DELIMITER ;
CREATE EVENT ev_enabled ON SCHEDULE EVERY '1:30' HOUR_MINUTE STARTS '2035-01-01 00:00:00' ENABLE
  DO DELETE FROM hist WHERE id > 1000;
"""
SEQUENCES = ("s odd `name`", "s_cycled", "s_default", "s_desc", "s_nocache", "s_restarted", "s_unused")
NOCACHE = ("s odd `name`", "s_cycled", "s_nocache", "s_restarted")


def qi(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def schema_dump(url, *also: str) -> str:
    """``mariadb-dump --no-data --events --routines --triggers`` of ``url``, with its name (and
    those in ``also``) replaced by ``DB`` and DEFINER clauses removed (they name who loaded it)."""
    exe = shutil.which("mariadb-dump") or shutil.which("mysqldump")
    if not exe:
        pytest.fail("mariadb-dump (or mysqldump) is needed to compare schemas")
    client = mysql_client(url)
    run = subprocess.run([exe, *client[1:-1], "--no-data", "--events", "--routines", "--triggers",
                          "--skip-dump-date", "--skip-comments", url.database],
                         capture_output=True, timeout=120, check=True)
    text = run.stdout.decode()
    for name in sorted((url.database, *also), key=len, reverse=True):
        text = text.replace(name, "DB")
    return re.sub(r"DEFINER=`[^`]*`@`[^`]*`", "", text)


def columns(url, table: str) -> list[str]:
    """Every column whose value is stored and written (invisible ones too, not ROW START/END)."""
    return [r[0] for r in execute(url, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                                       f"'{url.database}' AND TABLE_NAME = '{table}' AND IS_GENERATED = 'NEVER' "
                                       "ORDER BY ORDINAL_POSITION")]


def contents(url) -> dict:
    """Rows of the tables (named columns: invisible ones included), the stored state of each
    sequence, and the events' status and schedule as the server reads them."""
    out = {}
    for table, kind in execute(url, "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                                    f"WHERE TABLE_SCHEMA = '{url.database}' ORDER BY TABLE_NAME"):
        if kind == "SEQUENCE":
            out[table] = execute(url, f"SELECT * FROM {qi(table)}")
        else:
            cols = ", ".join(qi(c) for c in columns(url, table))
            out[table] = execute(url, f"SELECT {cols} FROM {qi(table)} ORDER BY 1")
    out["events"] = execute(url, "SELECT EVENT_NAME, STATUS, TIME_ZONE, SQL_MODE, EVENT_TYPE, EXECUTE_AT, "
                                 "INTERVAL_VALUE, INTERVAL_FIELD, STARTS, ENDS, ON_COMPLETION, EVENT_COMMENT, "
                                 "EVENT_DEFINITION FROM information_schema.EVENTS "
                                 f"WHERE EVENT_SCHEMA = '{url.database}' ORDER BY EVENT_NAME")
    return out


@pytest.fixture
def objects_db(mysql_db):
    url = mysql_db("objects")
    load_sql(url, FIXTURE)
    return url


def assert_same_objects(source, copy) -> None:
    assert schema_dump(copy) == schema_dump(source)
    before = contents(source)
    assert contents(copy) == before
    # the contents themselves are what the fixture made (not two equally wrong copies)
    assert before["orders"] == ((1, 4, "explicit", None), (110, 2, "first", 42), (115, 3, "second", 42))
    assert before["all_hidden_but_id"] == ((1, 10, "ten"), (2, None, "two; it's"))
    assert before["hist"] == ((1, "ONE", 11), (3, "three", 33))
    assert [e[:2] for e in before["events"]] == [("ev_at", "DISABLED"), ("ev_enabled", "ENABLED"),
                                                  ("ev_every", "SLAVESIDE_DISABLED")]
    assert before["events"][2][2:4] == ("+02:00", "ANSI_QUOTES")
    # history is not copied: the copy's versioned tables hold their current rows only
    for table, current in (("hist", 2), ("hist_explicit", 2), ("hist_partial", 1)):
        assert execute(copy, f"SELECT COUNT(*) FROM {table} FOR SYSTEM_TIME ALL") == ((current,),)
        assert execute(source, f"SELECT COUNT(*) FROM {table} FOR SYSTEM_TIME ALL")[0][0] > current
    # the events belong to whoever loaded them, not to the source's definer
    assert {r[0] for r in execute(copy, "SELECT DEFINER FROM information_schema.EVENTS "
                                        f"WHERE EVENT_SCHEMA = '{copy.database}'")} \
        == {execute(copy, "SELECT CURRENT_USER()")[0][0]}
    # sequences continue where the source's continue: uncached ones at the very next value,
    # cached ones after the block the source holds in memory (as after a restart of the source)
    for name in NOCACHE:
        assert execute(copy, f"SELECT NEXTVAL({qi(name)})") == execute(source, f"SELECT NEXTVAL({qi(name)})")
    assert execute(source, "SELECT NEXTVAL(s_default)") == ((3,),)
    assert execute(copy, "SELECT NEXTVAL(s_default)") == ((1001,),)
    # defaults call the copy's own sequences, and invisible columns keep their defaults
    execute(copy, "INSERT INTO orders (note) VALUES ('new')")
    execute(source, "INSERT INTO orders (note) VALUES ('new')")
    row = "SELECT id, code, note, secret FROM orders WHERE note = 'new'"
    assert execute(copy, row) == execute(source, row)


def test_objects_round_trip_through_the_loader(objects_db, mysql_db):
    copy = mysql_db("objects_copy", create=False)
    copy_database(objects_db, copy)
    assert copy.database + "__synco_new" not in {r[0] for r in execute(copy, "SHOW DATABASES", database="")}
    # read back by the dumper, the copy is the source (what 'synco verify' and an unchanged
    # download compare)
    assert dump_chunks(copy) == dump_chunks(objects_db)
    assert_same_objects(objects_db, copy)


def test_objects_round_trip_through_a_script(objects_db, mysql_db):
    copy = mysql_db("objects_sql")
    script = sql_script(objects_db)
    load_sql(copy, script)
    load_sql(copy, script)  # a second load over the first gives the same again
    assert_same_objects(objects_db, copy)


def test_schema_of_the_objects(objects_db):
    with Dumper(objects_db) as dumper:
        schema = dumper.schema()
        tables = dumper.tables()
    assert [s["name"] for s in schema["sequences"]] == list(SEQUENCES)
    assert tables == ["all_hidden_but_id", "hist", "hist_explicit", "hist_partial", "orders"]
    orders = next(t for t in schema["tables"] if t["name"] == "orders")
    assert "nextval(`s_nocache`)" in orders["create"] and objects_db.database not in orders["create"]
    assert orders["columns"] == ["id", "code", "note", "secret"]
    events = {e["name"]: e for e in schema["events"]}
    assert events["ev_every"]["time_zone"] == "+02:00" and events["ev_every"]["sql_mode"] == "ANSI_QUOTES"
    assert all("DEFINER" not in e["create"] for e in events.values())
    cycled = next(s for s in schema["sequences"] if s["name"] == "s_cycled")
    assert (cycled["next"], cycled["round"]) == (2, 1)


def test_swap_moves_events_and_sequences_both_ways(objects_db, mysql_db):
    """A target with its own events, sequences and versioned tables is replaced; its previous
    copy keeps them (its defaults call the target's sequences: the name a default was made with
    stays); restore brings them back."""
    target = mysql_db("objects_target")
    execute(target, "CREATE SEQUENCE s_default START WITH 50 NOCACHE", "SELECT NEXTVAL(s_default)",
            "CREATE TABLE old_t (id INT PRIMARY KEY DEFAULT NEXTVAL(s_default), v INT) WITH SYSTEM VERSIONING",
            "INSERT INTO old_t (v) VALUES (1)",
            "CREATE EVENT ev_every ON SCHEDULE EVERY 2 DAY STARTS '2035-01-01' DISABLE DO DELETE FROM old_t",
            "CREATE EVENT ev_old ON SCHEDULE AT '2035-01-01' ENABLE DO DELETE FROM old_t")
    old_dump, old = schema_dump(target), contents(target)
    prev = target.with_database(target.database + "__synco_prev")
    copy_database(objects_db, target)
    assert schema_dump(target) == schema_dump(objects_db)
    assert contents(target) == contents(objects_db)
    assert schema_dump(prev, target.database) == old_dump
    assert contents(prev) == old
    assert "restored" in restore(target)
    assert schema_dump(target) == old_dump and contents(target) == old
    execute(target, "INSERT INTO old_t (v) VALUES (2)")
    assert execute(target, "SELECT id FROM old_t WHERE v = 2") == ((52,),)
    assert schema_dump(prev, target.database) == schema_dump(objects_db)


def test_everything_refused_is_named_in_one_message(mysql_db):
    """MariaDB's packages (sql_mode ORACLE) are still refused: every one, grouped by kind."""
    url = mysql_db("refused")
    execute(url, "CREATE TABLE t (id INT PRIMARY KEY)", "SET SESSION sql_mode = 'ORACLE'",
            "CREATE PACKAGE pkg_a AS FUNCTION f RETURN INT; END;",
            "CREATE PACKAGE BODY pkg_a AS FUNCTION f RETURN INT AS BEGIN RETURN 1; END; END;",
            "CREATE PACKAGE pkg_b AS PROCEDURE p; END;",
            "SET SESSION sql_mode = DEFAULT", "CREATE EVENT ev ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1")
    with Dumper(url) as dumper, pytest.raises(DatabaseError) as info:
        dumper.schema()
    assert str(info.value) == (f"database {url.database!r} contains 3 objects synco cannot copy yet: "
                               "2 packages 'pkg_a', 'pkg_b'; package body 'pkg_a'")
    assert "mariadb-dump" in info.value.hint
    execute(url, "SET SESSION sql_mode = 'ORACLE'", "DROP PACKAGE pkg_b")
    with Dumper(url) as dumper, pytest.raises(DatabaseError) as info:
        dumper.schema()
    assert "2 objects" in str(info.value) and "package 'pkg_a'; package body 'pkg_a'" in str(info.value)


def test_a_statement_the_local_server_rejects_is_named(objects_db, mysql_db):
    """A table whose definition this server rejects: the message names the table and the statement,
    the hint calls it a compatibility problem and says the target was left unchanged; so it is."""
    target = mysql_db("objects_target")
    load_sql(target, FIXTURE)
    before, before_dump = contents(target), schema_dump(target)
    schema, chunks = dump_chunks(objects_db)
    hist = next(t for t in schema["tables"] if t["name"] == "hist")
    hist["create"] = hist["create"].replace("COLLATE=utf8mb4_general_ci", "COLLATE=utf8mb4_0900_ai_ci")
    loader = Loader(target)
    with pytest.raises(DatabaseError) as info:
        loader.begin(schema)
    loader.abort()
    message = str(info.value)
    assert message.startswith("cannot create table 'hist': Unknown collation: 'utf8mb4_0900_ai_ci' (error 1273); "
                              "the statement: CREATE TABLE `hist` ( `id` int(11) NOT NULL,"), message
    assert "\n" not in message and len(message) < 300
    assert "compatibility problem" in info.value.hint and "not a connection one" in info.value.hint
    assert f"{target.database!r} was left unchanged" in info.value.hint and "URL" not in info.value.hint
    assert contents(target) == before and schema_dump(target) == before_dump


def test_rows_the_local_server_rejects_are_named(objects_db, mysql_db):
    target = mysql_db("objects_target", create=False)
    schema, chunks = dump_chunks(objects_db)
    loader = Loader(target)
    loader.begin(schema)
    with pytest.raises(DatabaseError) as info:
        loader.load("orders", b"INSERT INTO `orders` (`id`,`nope`) VALUES (1,2);\n")
    loader.abort()
    assert str(info.value) == ("cannot load rows into table 'orders': Unknown column 'nope' in 'INSERT INTO' "
                               "(error 1054); the statement: INSERT INTO `orders` (`id`,`nope`) VALUES (1,2)")
    assert "compatibility problem" in info.value.hint
    assert target.database not in {r[0] for r in execute(objects_db, "SHOW DATABASES", database="")}


def test_an_event_the_local_server_rejects_rolls_the_swap_back(objects_db, mysql_db):
    """Events are created after the tables moved: one that fails undoes the swap, and the message
    names it and its statement."""
    target = mysql_db("objects_target")
    load_sql(target, FIXTURE)
    execute(target, "DROP EVENT ev_at", "INSERT INTO orders (note) VALUES ('only in the target')")
    before, before_dump = contents(target), schema_dump(target)
    schema, chunks = dump_chunks(objects_db)
    ev = next(e for e in schema["events"] if e["name"] == "ev_at")
    ev["create"] = ev["create"].replace("ON SCHEDULE AT", "ON SCHEDULE SOMETIME")
    loader = Loader(target)
    loader.begin(schema)
    for table, table_chunks in chunks.items():
        for chunk in table_chunks:
            loader.load(table, chunk)
    with pytest.raises(DatabaseError) as info:
        loader.commit()
    message = str(info.value)
    assert message.startswith(f"cannot create event 'ev_at' in {target.database!r}: You have an error"), message
    assert "the statement: CREATE EVENT `ev_at` ON SCHEDULE SOMETIME" in message
    assert message.endswith("; nothing was changed") and "compatibility problem" in info.value.hint
    assert contents(target) == before and schema_dump(target) == before_dump
