"""The MySQL swap under kill -9, Ctrl-C and other connections' locks.

A child process runs a real download (or restore) and kills itself with SIGKILL at a named point
of the swap (``SYNCO_TEST_SWAP_FAULT``); the next run must find either the old database untouched
or the swap finished (new in the target, the complete old one as the previous copy), with every
view, trigger and routine. The random-moment kills through the real programs are in
bench/bench_swap_faults.py."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from dbfixtures import copy_database, dump_chunks, mysql_connect
from dbfixtures import mysql_fingerprint as tables_fingerprint
from dbfixtures import mysql_execute as execute
from synco_source import engines
from synco_source.engines import mysql
from synco_source.engines.common import FAULT_ENV
from synco_source.engines.mysql import locks, swap
from synco_source.errors import DatabaseError

TESTS = Path(__file__).resolve().parent

OLD = ("CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO a VALUES (1, 'old'), (2, 'old')",
       "CREATE TABLE log (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(40))",
       "CREATE TABLE only_old (x INT)", "INSERT INTO only_old VALUES (7)",
       "CREATE VIEW v_a AS SELECT id FROM a",
       "CREATE VIEW v_v AS SELECT id FROM v_a WHERE id > 1",
       "CREATE TRIGGER trg AFTER INSERT ON a FOR EACH ROW INSERT INTO log (what) VALUES ('old')",
       "CREATE TRIGGER trg2 AFTER INSERT ON a FOR EACH ROW FOLLOWS trg INSERT INTO log (what) VALUES ('old2')",
       "SET SESSION sql_mode = 'ANSI_QUOTES'",
       "CREATE FUNCTION f() RETURNS INT DETERMINISTIC RETURN 1",
       "SET SESSION sql_mode = DEFAULT",
       "CREATE PROCEDURE p() SELECT 'old'",
       "CREATE SEQUENCE seq START WITH 7 NOCACHE", "SELECT NEXTVAL(seq)",
       "CREATE EVENT ev ON SCHEDULE EVERY 1 DAY STARTS '2035-01-01' DISABLE DO DELETE FROM a",
       "CREATE EVENT ev_old ON SCHEDULE AT '2035-01-01' DISABLE ON SLAVE DO DELETE FROM only_old")
NEW = ("ALTER DATABASE CHARACTER SET latin1 COLLATE latin1_swedish_ci",
       "CREATE TABLE a (id INT PRIMARY KEY, w INT)", "INSERT INTO a VALUES (10, 1)",
       "CREATE TABLE log (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(40))",
       "CREATE TABLE only_new (y INT)", "INSERT INTO only_new VALUES (8)",
       "CREATE VIEW v_a AS SELECT id, w FROM a",
       "CREATE TRIGGER trg BEFORE INSERT ON a FOR EACH ROW INSERT INTO log (what) VALUES ('new')",
       "CREATE FUNCTION f() RETURNS INT DETERMINISTIC RETURN 2",
       "CREATE SEQUENCE seq START WITH 100 INCREMENT BY 10 NOCACHE", "SELECT NEXTVAL(seq)",
       "CREATE TABLE hist (id INT PRIMARY KEY DEFAULT NEXTVAL(seq), v INT) WITH SYSTEM VERSIONING",
       "INSERT INTO hist (v) VALUES (1)", "UPDATE hist SET v = 2",
       "SET SESSION time_zone = '+05:00'",
       "CREATE EVENT ev ON SCHEDULE EVERY 2 HOUR STARTS '2035-01-01' ENABLE DO DELETE FROM hist")

CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from dbfixtures import copy_database
    from synco_source import engines
    from synco_source.dburl import parse
    what, dst = sys.argv[2], parse(sys.argv[3])
    try:
        if what == "download":
            copy_database(parse(sys.argv[4]), dst)
        else:
            print(engines.restore(dst))
    except BaseException as exc:  # show what a failing clean-up would hide
        import traceback
        if exc.__context__ is not None:
            traceback.print_exception(exc.__context__)
        raise
""")


def mysql_fingerprint(url) -> dict:
    """dbfixtures' fingerprint, plus what it leaves out: events, the sequences' state, and the
    system-versioned tables (definition and current rows; their history is not copied); a default
    calling a sequence names the database it was made in (the target's, also in the previous
    copy): that name is blanked."""
    out = tables_fingerprint(url)
    target = url.database.removesuffix("__synco_prev")
    for table in out["tables"].values():
        table["create"] = table["create"].replace(f"`{target}`.", "`DB`.")
    kinds = dict(execute(url, "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                              f"WHERE TABLE_SCHEMA = '{url.database}'"))
    out["sequences"] = {name: execute(url, f"SELECT * FROM `{name}`") for name, k in kinds.items()
                        if k == "SEQUENCE"}
    out["versioned"] = {name: (execute(url, f"SHOW CREATE TABLE `{name}`")[0][1].replace(f"`{target}`.", "`DB`."),
                               execute(url, f"SELECT * FROM `{name}` ORDER BY 1"))
                        for name, k in kinds.items() if k == "SYSTEM VERSIONED"}
    out["events"] = {}
    for (name,) in execute(url, "SELECT EVENT_NAME FROM information_schema.EVENTS "
                                f"WHERE EVENT_SCHEMA = '{url.database}'"):
        shown = execute(url, f"SHOW CREATE EVENT `{name}`")[0]
        out["events"][name] = (shown[1], shown[2], re.sub(r" DEFINER=\S+@\S+", "", shown[3]))
    return out


def url_text(url) -> str:
    auth = url.user + (f":{url.password}" if url.password else "")
    if url.socket:
        return f"mysql://{auth}@localhost/{url.database}?socket={url.socket}"
    return f"mysql://{auth}@{url.host}:{url.port}/{url.database}"


def child(what: str, dst, src=None, fault: str | None = None, **popen) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    if fault:
        env[FAULT_ENV] = fault
    args = [sys.executable, "-c", CHILD, str(TESTS), what, url_text(dst)] + ([url_text(src)] if src else [])
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **popen)


def run_child(*args, **kwargs) -> tuple[int, str]:
    proc = child(*args, **kwargs)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out + err


def databases(url) -> set[str]:
    return {r[0] for r in execute(url, "SHOW DATABASES", database="")}


def prev_of(url):
    return url.with_database(url.database + "__synco_prev")


@pytest.fixture
def pair(mysql_db):
    """(source with the new content, target with the old content, their fingerprints)."""
    src, dst = mysql_db("new"), mysql_db("old")
    execute(src, *NEW)
    execute(dst, *OLD)
    new, old = mysql_fingerprint(src), mysql_fingerprint(dst)
    assert old["events"].keys() == {"ev", "ev_old"} and new["events"].keys() == {"ev"}
    assert old["sequences"] and new["sequences"] and new["versioned"]
    return src, dst, new, old


@pytest.mark.parametrize("point,finished", [("journal", False), ("prev", False), ("triggers", False),
                                            ("renamed", True), ("finish-target", True),
                                            ("finish-keep", True)])
def test_download_killed_in_the_swap_is_rolled_back_or_finished(pair, point, finished):
    src, dst, new, old = pair
    code, output = run_child("download", dst, src, fault=point)
    assert code == -signal.SIGKILL, output
    assert swap.pending(mysql_connect(dst), dst.database + "__synco_new")
    notes = engines.recover(dst)
    assert len(notes) == 1 and ("finished" if finished else "rolled back") in notes[0], notes
    assert dst.database + "__synco_new" not in databases(dst)
    if finished:
        assert mysql_fingerprint(dst) == new
        assert mysql_fingerprint(prev_of(dst)) == old
        assert "restored" in mysql.restore(dst)
        assert mysql_fingerprint(dst) == old
    else:
        assert mysql_fingerprint(dst) == old
    assert engines.recover(dst) == []


@pytest.mark.parametrize("point,finished", [("journal", False), ("triggers", False), ("renamed", True),
                                            ("finish-target", True), ("finish-keep", True)])
def test_restore_killed_in_the_swap_is_rolled_back_or_finished(pair, point, finished):
    src, dst, new, old = pair
    copy_database(src, dst)
    code, output = run_child("restore", dst, fault=point)
    assert code == -signal.SIGKILL, output
    # `synco restore` again: it finishes the stopped restore, or rolls it back and restores
    message = mysql.restore(dst)
    assert ("finished the restore" if finished else "rolled back the restore") in message, message
    assert mysql_fingerprint(dst) == old
    assert mysql_fingerprint(prev_of(dst)) == new
    assert dst.database + "__synco_new" not in databases(dst)


def test_killed_while_undoing_a_failed_swap(pair):
    """A new view that cannot be created makes the swap rename everything back; a kill right
    after that rename leaves a journal that the next run rolls back."""
    src, dst, new, old = pair
    execute(src, "CREATE VIEW v_bad AS SELECT w FROM a")
    script = CHILD.replace("what, dst = ", "import synco_source.engines.mysql.dump as d\n"
                           "orig = d.Dumper.schema\n"
                           "def bad(self):\n"
                           "    s = orig(self)\n"
                           "    for v in s['views']:\n"
                           "        if v['name'] == 'v_bad': v['create'] = v['create'].replace('`w`', '`nope`', 1)\n"
                           "    return s\n"
                           "d.Dumper.schema = bad\n"
                           "what, dst = ")
    assert "d.Dumper.schema = bad" in script
    env = dict(os.environ, **{FAULT_ENV: "undone"})
    run = subprocess.run([sys.executable, "-c", script, str(TESTS), "download", url_text(dst), url_text(src)],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == -signal.SIGKILL, run.stderr
    notes = engines.recover(dst)
    assert "rolled back" in notes[0]
    assert mysql_fingerprint(dst) == old


def test_failed_finish_is_undone_in_the_same_run(pair):
    src, dst, new, old = pair
    schema, chunks = dump_chunks(src)
    schema["triggers"][0]["create"] = schema["triggers"][0]["create"].replace(" ON a ", " ON no_table ")
    loader = mysql.Loader(dst)
    loader.begin(schema)
    for table, cs in chunks.items():
        for c in cs:
            loader.load(table, c)
    with pytest.raises(DatabaseError) as info:
        loader.commit()
    assert "cannot create trigger 'trg'" in str(info.value) and "nothing was changed" in str(info.value)
    loader.abort()
    assert mysql_fingerprint(dst) == old
    assert {dst.database + "__synco_new", dst.database + "__synco_prev"}.isdisjoint(databases(dst))


def test_stale_shadow_of_a_dead_run_is_removed_and_said(pair):
    src, dst, new, old = pair
    execute(dst, f"CREATE DATABASE `{dst.database}__synco_new`", database="")
    execute(dst, "CREATE TABLE half (id INT)", database=dst.database + "__synco_new")
    loader = mysql.Loader(dst)
    try:
        assert loader.describe_target() == 4  # a sequence is a table
        assert len(loader.notes) == 1 and "removed" in loader.notes[0] and "__synco_new" in loader.notes[0]
    finally:
        loader.close()
    assert dst.database + "__synco_new" not in databases(dst)


def test_a_second_run_on_the_same_target_is_refused(pair, monkeypatch):
    src, dst, new, old = pair
    monkeypatch.setattr(locks, "RUN_LOCK_WAIT", 0)
    first = mysql.Loader(dst)
    try:
        first.recover()
        with pytest.raises(DatabaseError, match=r"another synco run \(connection \d+\)"):
            mysql.Loader(dst).recover()
    finally:
        first.close()
    mysql.Loader(dst).recover()  # released with the first run's connection


def open_transaction(url, database: str | None):
    """Another client with a transaction open that has read table ``a`` of ``url``."""
    conn = mysql_connect(url, database)
    with conn.cursor() as cur:
        cur.execute("START TRANSACTION")
        cur.execute(f"SELECT * FROM `{url.database}`.a")
        cur.fetchall()
    return conn


def test_open_transaction_in_the_target_is_refused_before_anything(pair):
    src, dst, new, old = pair
    blocker = open_transaction(dst, dst.database)
    try:
        schema, chunks = dump_chunks(src)
        loader = mysql.Loader(dst)
        with pytest.raises(DatabaseError) as info:
            loader.begin(schema)
        loader.abort()
        text = str(info.value)
        assert f"connection {blocker.thread_id()} (root@" in text and "open transaction" in text, text
        assert "nothing was changed" in text and "synco does not kill" in info.value.hint
    finally:
        blocker.close()
    assert mysql_fingerprint(dst) == old


def test_lock_wait_is_bounded_and_names_the_blocker(pair, monkeypatch):
    """A transaction from a connection in another database escapes the check; the swap waits
    LOCK_WAIT seconds, rolls back and names it."""
    src, dst, new, old = pair
    monkeypatch.setattr(locks, "LOCK_WAIT", 1)
    schema, chunks = dump_chunks(src)
    loader = mysql.Loader(dst)
    loader.begin(schema)
    for table, cs in chunks.items():
        for c in cs:
            loader.load(table, c)
    blocker = open_transaction(dst, None)
    try:
        start = time.monotonic()
        with pytest.raises(DatabaseError) as info:
            loader.commit()
        took = time.monotonic() - start
        loader.abort()
    finally:
        blocker.close()
    text = str(info.value)
    assert took < 10, took
    assert "waited 1 s for a lock on" in text and f"connection {blocker.thread_id()}" in text, text
    assert "nothing was changed" in text and "\n" not in text
    assert mysql_fingerprint(dst) == old
    assert {dst.database + "__synco_new", dst.database + "__synco_prev"}.isdisjoint(databases(dst))


CTRL_C_CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from dbfixtures import dump_chunks
    from synco_source.dburl import parse
    from synco_source.engines import mysql
    from synco_source.engines.mysql import locks
    locks.LOCK_WAIT = 60
    src, dst = parse(sys.argv[2]), parse(sys.argv[3])
    schema, chunks = dump_chunks(src)
    loader = mysql.Loader(dst)
    loader.begin(schema)
    for table, cs in chunks.items():
        for c in cs:
            loader.load(table, c)
    print("loaded", flush=True)
    sys.stdin.readline()
    try:
        loader.commit()
    except KeyboardInterrupt:
        loader.abort()
        print("interrupted", flush=True)
""")


def test_ctrl_c_while_the_swap_waits_for_a_lock_rolls_back_at_once(pair):
    src, dst, new, old = pair
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C_CHILD, str(TESTS), url_text(src), url_text(dst)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    blocker = None
    try:
        line = proc.stdout.readline()
        assert line == "loaded\n", line
        blocker = open_transaction(dst, None)  # in no database: the check misses it, the swap waits
        proc.stdin.write("go\n")
        proc.stdin.flush()
        time.sleep(2)
        assert proc.poll() is None, "the swap should be waiting for the lock"
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
        if blocker:
            blocker.close()
    assert "interrupted" in out, err
    assert took < 5, took
    assert mysql_fingerprint(dst) == old
    assert {dst.database + "__synco_new", dst.database + "__synco_prev"}.isdisjoint(databases(dst))


def test_ctrl_c_after_the_rename_is_ignored_and_the_swap_finishes(pair, monkeypatch):
    """From the rename on the swap runs to its end; a Ctrl-C then changes nothing."""
    src, dst, new, old = pair
    fired = threading.Event()
    real_finish = swap.Swap.finish

    def finish_with_ctrl_c(self):
        os.kill(os.getpid(), signal.SIGINT)  # ignored: the swap is past its point of no return
        fired.set()
        return real_finish(self)

    monkeypatch.setattr(swap.Swap, "finish", finish_with_ctrl_c)
    copy_database(src, dst)
    assert fired.is_set()
    assert mysql_fingerprint(dst) == new
    assert mysql_fingerprint(prev_of(dst)) == old


# ---------------------------------------------------------------------------------------------
# PostgreSQL: the renames commit together; what a killed run leaves is its shadow database

PG_CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from pgfixtures import pg_copy_database
    from synco_source.dburl import parse
    pg_copy_database(parse(sys.argv[2]), parse(sys.argv[3]))
""")


def pg_url_text(url) -> str:
    auth = url.user + (f":{url.password}" if url.password else "")
    host = url.socket or url.host
    return f"postgresql://{auth}@{host if not url.socket else 'localhost'}:{url.port}/{url.database}" + \
        (f"?socket={url.socket}" if url.socket else "")


@pytest.fixture
def pg_pair(pg_db):
    from pgfixtures import pg_execute, pg_fingerprint

    src, dst = pg_db("new"), pg_db("old")
    pg_execute(src, "CREATE TABLE a (id int PRIMARY KEY, w int)", "INSERT INTO a VALUES (10, 1)",
               "CREATE VIEW v AS SELECT w FROM a")
    pg_execute(dst, "CREATE TABLE a (id int PRIMARY KEY, v text)", "INSERT INTO a VALUES (1, 'old')",
               "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
               "CREATE TRIGGER t BEFORE INSERT ON a FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()")
    return src, dst, pg_fingerprint(src), pg_fingerprint(dst)


@pytest.mark.parametrize("point,finished", [("pg-prev-dropped", False), ("pg-renamed-uncommitted", False),
                                            ("pg-renamed", True)])
def test_pg_download_killed_in_the_swap(pg_pair, point, finished):
    from pgfixtures import pg_databases, pg_fingerprint

    from synco_source.engines import postgresql

    src, dst, new, old = pg_pair
    env = dict(os.environ, **{FAULT_ENV: point})
    run = subprocess.run([sys.executable, "-c", PG_CHILD, str(TESTS), pg_url_text(src), pg_url_text(dst)],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == -signal.SIGKILL, run.stderr
    notes = engines.recover(dst)
    assert bool(notes) != finished and all("removed" in n for n in notes), notes
    assert dst.database + "__synco_new" not in pg_databases(dst)
    if finished:
        assert pg_fingerprint(dst) == new
        assert pg_fingerprint(prev_of(dst)) == old
        assert "restored" in postgresql.restore(dst)
    assert pg_fingerprint(dst) == old


def test_pg_second_run_is_refused(pg_pair, monkeypatch):
    from synco_source.engines import postgresql
    from synco_source.engines.postgresql import load as pg_load

    src, dst, new, old = pg_pair
    monkeypatch.setattr(pg_load, "RUN_LOCK_WAIT", 0.2)
    first = postgresql.Loader(dst)
    try:
        first.recover()
        with pytest.raises(DatabaseError, match="another synco run"):
            postgresql.restore(dst)
    finally:
        first.close()


TWICE_CHILD = CTRL_C_CHILD.replace('''print("loaded", flush=True)
sys.stdin.readline()''', '''from synco_source.engines.mysql import swap
from synco_source.errors import DatabaseError
real_rename = swap.Swap._rename

def rename(self):  # the triggers are dropped: let the parent lock the table now
    print("renaming", flush=True)
    sys.stdin.readline()
    return real_rename(self)

swap.Swap._rename = rename''').replace('''    print("interrupted", flush=True)''', '''    print("interrupted", flush=True)
except DatabaseError as exc:
    loader.abort()
    print(exc, flush=True)''')
assert "renaming" in TWICE_CHILD and "except DatabaseError" in TWICE_CHILD


def test_second_ctrl_c_stops_a_blocked_rollback_and_the_next_run_finishes_it(pair):
    """The rollback must re-create a trigger on a table another connection has locked meanwhile;
    a second Ctrl-C stops it there. The journal stays, and the next run rolls back."""
    src, dst, new, old = pair
    proc = subprocess.Popen([sys.executable, "-c", TWICE_CHILD, str(TESTS), url_text(src), url_text(dst)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    blocker = None
    try:
        line = proc.stdout.readline()
        assert line == "renaming\n", line
        blocker = open_transaction(dst, None)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        time.sleep(1.5)  # the RENAME waits for the blocker
        proc.send_signal(signal.SIGINT)
        time.sleep(1.5)  # rolled back up to the trigger, which waits for the blocker too
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        if blocker:
            blocker.close()
    assert "interrupted during the swap; it could not be rolled back (interrupted again)" in out, out + err
    assert swap.pending(mysql_connect(dst), dst.database + "__synco_new")
    notes = engines.recover(dst)
    assert "rolled back" in notes[0]
    assert mysql_fingerprint(dst) == old


def test_a_statement_with_non_utf8_bytes_is_named_not_a_crash(pair):
    """Another client's running statement may hold bytes that are not UTF-8 (a binary literal);
    the check reads it as bytes and still names the connection."""
    src, dst, new, old = pair
    other = mysql_connect(dst, dst.database)
    worker = threading.Thread(target=lambda: other.query(b"SELECT SLEEP(3), _binary'\xed\xa0\xff'"))
    worker.start()
    try:
        time.sleep(0.5)
        loader = mysql.Loader(dst)
        with pytest.raises(DatabaseError) as info:
            loader.begin(dump_chunks(src)[0])
        loader.abort()
        assert f"connection {other.thread_id()}" in str(info.value) and "SELECT SLEEP(3)" in str(info.value)
    finally:
        worker.join()
        other.close()


def test_a_connection_that_just_ended_does_not_count_as_busy(pair):
    """Right after a client reads the target and disconnects (the download's own check of the
    local schema does so just before the import), the server may still list its last statement
    as running for a moment: the lock check looks again instead of refusing the import."""
    src, dst, new, old = pair
    conn = mysql_connect(dst)
    try:
        for _ in range(60):
            with mysql.Dumper(dst) as dumper:
                dumper.schema()  # its last statement reads a sequence
            locks.refuse_if_busy(conn, [dst.database], dst.database)
    finally:
        conn.close()
