"""synco verify through the real programs: a download records the imported tables' fingerprints
(synco/verify.py), and verify names each table edited, added or dropped since, on both engines."""

from __future__ import annotations

import json
import os
from pathlib import Path

from dbfixtures import mysql_execute, url_text
from pgfixtures import pg_execute
from sourceproc import synco
from test_incremental import published

from synco.verify import compare

DIFFERS = 12  # LocalCopyDiffers


def verify(url) -> tuple[int, str]:
    run = synco("verify", db_url=url_text(url))
    return run.code, run.stderr


def reported(stderr: str) -> dict[str, str]:
    """table -> 'changed' / 'added' / 'dropped', from verify's lines."""
    out = {}
    for line in stderr.splitlines():
        for kind in ("changed", "added", "dropped"):
            prefix = f"{kind}:"
            if prefix in line:
                out[line.split(prefix, 1)[1].split()[0]] = kind
    return out


def test_compare_names_each_kind_of_difference():
    one = {"a": {"rows": 1, "hash": "x"}, "b": {"rows": 2, "hash": "y"}, "c": {"rows": 3, "hash": "z"}}
    now = {"a": {"rows": 1, "hash": "x"}, "b": {"rows": 3, "hash": "w"}, "d": {"rows": 0, "hash": "v"}}
    result = compare(one, now)
    assert (result.changed, result.added, result.dropped) == (["b"], ["d"], ["c"])
    assert not result.identical and compare(one, dict(one)).identical


def test_mysql_verify_names_each_edited_added_and_dropped_table(mysql_db, tmp_path):
    src = mysql_db("src")
    mysql_execute(src, *[stmt for name in ("one", "two", "three", "four") for stmt in (
        f"CREATE TABLE {name} (id INT PRIMARY KEY, note VARCHAR(40))",
        f"INSERT INTO {name} SELECT seq, CONCAT('{name} ', seq) FROM seq_1_to_2000")])
    dst = mysql_db("dst", create=False)
    code, err = verify(dst)
    assert code == 0 and "no record of an import" in err, err
    with published(url_text(src), tmp_path) as session:
        run = synco("download", session.token, "--yes", "--verify", db_url=url_text(dst))
    assert run.code == 0, run.stderr
    assert "all 4 tables are as the last import left them" in run.stderr
    code, err = verify(dst)
    assert code == 0 and "all 4 tables are as the last import left them" in err, err

    steps = [("UPDATE one SET note = 'edited' WHERE id = 1000", {"one": "changed"}),
             ("INSERT INTO two VALUES (5000, 'new')", {"two": "changed"}),
             ("DELETE FROM three WHERE id = 7", {"three": "changed"}),
             ("DROP TABLE four", {"four": "dropped"}),
             ("CREATE TABLE five (id INT)", {"five": "added"})]
    want: dict[str, str] = {}
    for statement, more in steps:
        mysql_execute(dst, statement)
        want.update(more)
        code, err = verify(dst)
        assert code == DIFFERS, err
        assert reported(err) == want, err
        assert "differs from the last import" in err


def test_postgresql_verify_names_each_edited_added_and_dropped_table(pg_db, tmp_path):
    src = pg_db("src")
    pg_execute(src, *[stmt for name in ("one", "two", "three", "four") for stmt in (
        f"CREATE TABLE {name} (id int PRIMARY KEY, note text)",
        f"INSERT INTO {name} SELECT g, '{name} ' || g FROM generate_series(1, 2000) g")])
    dst = pg_db("dst", create=False)
    with published(url_text(src), tmp_path) as session:
        run = synco("download", session.token, "--yes", db_url=url_text(dst))
    assert run.code == 0, run.stderr
    code, err = verify(dst)
    assert code == 0 and "all 4 tables are as the last import left them" in err, err

    steps = [("UPDATE one SET note = 'edited' WHERE id = 1000", {"public.one": "changed"}),
             ("INSERT INTO two VALUES (5000, 'new')", {"public.two": "changed"}),
             ("DELETE FROM three WHERE id = 7", {"public.three": "changed"}),
             ("DROP TABLE four", {"public.four": "dropped"}),
             ("CREATE TABLE five (id int)", {"public.five": "added"})]
    want: dict[str, str] = {}
    for statement, more in steps:
        pg_execute(dst, statement)
        want.update(more)
        code, err = verify(dst)
        assert code == DIFFERS, err
        assert reported(err) == want, err


def test_the_record_holds_chunk_lists_and_a_new_import_replaces_it(mysql_db, tmp_path):
    src = mysql_db("src")
    mysql_execute(src, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t SELECT seq FROM seq_1_to_100")
    dst = mysql_db("dst", create=False)
    with published(url_text(src), tmp_path) as session:
        assert synco("download", session.token, "--yes", db_url=url_text(dst)).code == 0
        chunks = [c["sha256"] for c in session.manifest["tables"][0]["chunks"]]
    (path,) = (Path(os.environ["XDG_STATE_HOME"]) / "synco" / "imports").glob("*.json")
    doc = json.loads(path.read_text())
    assert doc["version"] == 2 and len(doc["schema"]) == 64
    assert doc["tables"]["t"]["chunks"] == chunks and doc["tables"]["t"]["rows"] == 100
    assert doc["tables"]["t"]["fingerprint"] == doc["fingerprints"]["t"]
    mysql_execute(dst, "DELETE FROM t")
    assert verify(dst)[0] == DIFFERS
    with published(url_text(src), tmp_path) as session:
        assert synco("download", session.token, "--yes", db_url=url_text(dst)).code == 0
    assert verify(dst)[0] == 0
