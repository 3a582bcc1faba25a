"""The MySQL engine copies every column type, value and object exactly (tests/mysql_all_types.sql)."""

from __future__ import annotations

import math
import random
import struct
from pathlib import Path

import pytest

from dbfixtures import mysql_execute as execute
from dbfixtures import (copy_database, load_sql, mysql_connect, mysql_fingerprint,
                        sql_script)
from synco_source.engines.mysql import Dumper

FIXTURE = Path(__file__).resolve().parent / "mysql_all_types.sql"


@pytest.fixture
def types_db(mysql_db):
    url = mysql_db("types")
    load_sql(url, FIXTURE)
    return url


def table_rows(url, table) -> list[bytes]:
    with Dumper(url) as dumper:
        return list(dumper.rows(table))


def test_all_types_round_trip(types_db, mysql_db):
    """Dump → chunks → Loader gives a database whose fingerprint (schema, every byte of every row,
    AUTO_INCREMENT counters, views, triggers and their order, routines) equals the source's."""
    target = mysql_db("types_copy", create=False)
    copy_database(types_db, target)
    assert mysql_fingerprint(target) == mysql_fingerprint(types_db)


def test_copied_objects_work(types_db, mysql_db):
    """Triggers fire in their original order, routines with ';' in their bodies run, views resolve."""
    target = mysql_db("types_copy", create=False)
    copy_database(types_db, target)
    for url in (types_db, target):
        execute(url, "INSERT INTO parent (id, name) VALUES (9, 'nine')")
        assert execute(url, "SELECT name, touched FROM parent WHERE id = 9") == (("NINE", 1010),)
        assert execute(url, "CALL p_count(@n)", "SELECT @n, f_strict()") == ((6, "semi;colon"),)
        assert execute(url, "SELECT * FROM v_mm ORDER BY id") == ((1, 2),)


def test_all_types_sql_script(types_db, mysql_db):
    """The SqlWriter script loads with the mariadb client into the same database."""
    target = mysql_db("types_sql")
    load_sql(target, sql_script(types_db))
    assert mysql_fingerprint(target) == mysql_fingerprint(types_db)


def test_row_literals(types_db):
    """Spot checks of the literal forms the server builds."""
    texts = table_rows(types_db, "texts")
    assert texts[0].startswith(b"(1,_utf8mb4'a',_utf8mb4'x,z',_utf8mb4'{")
    assert b"_latin1'\xe9\xe8\xff\xa0\xb5\\\\\\''" in texts[0]
    assert b"_sjis X'955C',_gbk X'815C',_big5 X'B35C',_ucs2 X'00610062005C0063'" in texts[0]
    assert b"_utf8mb4'line1\\nline2\r\\n;\\nINSERT" in texts[0]  # raw newlines escaped
    assert b"\n" not in b"".join(texts)
    assert texts[2] == b"(3" + b",NULL" * 13 + b")"
    bins = table_rows(types_db, "bins")
    assert bins[0].startswith(b"(1,_binary'\\0\\'\\\\\\Z',_binary'\\0\\'\\\\\\Z\xff\\n\r;'")
    assert bins[1] == b"(2,_binary'\\0\\0\\0\\0',_binary'',_binary'',_binary'',_binary'')"
    numbers = table_rows(types_db, "numbers")
    assert numbers[0].startswith(b"(1,18446744073709551615,-9223372036854775808,-128,00042,1,18446744073709551615,"
                                 b"12345678901234567890123456789012345.123456789012345678901234567890,")
    times = table_rows(types_db, "times")
    assert times[0] == (b"(1,'0000-00-00','0000-00-00 00:00:00.000000','0000-00-00 00:00:00',"
                        b"'0000-00-00 00:00:00.000000','-838:59:59','-00:00:00.000001',0)")
    gen = table_rows(types_db, "gen")
    assert gen == [b"(1,10,1)", b"(2,NULL,NULL)", b"(3,-5,7)"]  # generated columns left out


def test_schema(types_db):
    with Dumper(types_db) as dumper:
        schema = dumper.schema()
    tables = {t["name"]: t for t in schema["tables"]}
    assert tables["gen"]["columns"] == ["id", "a", "inv"]
    assert "AUTO_INCREMENT=1000" in tables["autoinc"]["create"]
    assert [v["name"] for v in schema["views"]] == ["odd view", "v_zz", "v_aa", "v_mm"]
    assert all("DEFINER=" not in o["create"] for o in schema["views"] + schema["routines"] + schema["triggers"])
    assert [t["name"] for t in schema["triggers"]] == ["child_au", "parent_bi0", "parent_bi", "parent_bi2"]
    assert {r["name"] for r in schema["routines"]} == {"f_add", "f_strict", "p_count"}
    assert schema["charset"] == "utf8mb4"


def test_float_and_double_text_round_trips(mysql_db):
    """The FLOAT (widened to double) and DOUBLE texts parse back to the exact stored values."""
    url = mysql_db("floats")
    rng = random.Random(7)
    doubles, floats = [], []
    while len(doubles) < 2000:
        d = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        f = struct.unpack("<f", rng.getrandbits(32).to_bytes(4, "little"))[0]
        if math.isfinite(d) and math.isfinite(f) and d != 0 and f != 0:
            doubles.append(d)
            floats.append(f)
    conn = mysql_connect(url, url.database)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE fl (id INT PRIMARY KEY, f FLOAT, d DOUBLE)")
        cur.executemany("INSERT INTO fl VALUES (%s, %s, %s)",
                        [(i, repr(f), repr(d)) for i, (f, d) in enumerate(zip(floats, doubles))])
        cur.execute("SELECT COUNT(*) FROM fl WHERE d IS NULL OR f IS NULL")
        assert cur.fetchone() == (0,)
    conn.close()
    for i, row in enumerate(table_rows(url, "fl")):
        _, f_text, d_text = row[1:-1].split(b",")
        assert float(d_text) == doubles[i], row
        assert struct.pack("<f", float(f_text)) == struct.pack("<f", floats[i]), row
        digits = d_text.lstrip(b"-").split(b"e")[0].replace(b".", b"").strip(b"0")
        assert len(digits) <= 17, row  # shortest round-trip digits (sometimes without exponent)
