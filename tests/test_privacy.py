"""Privacy rules in the dump (docs/privacy.md): table filters that keep foreign keys whole and
column fakes computed by the database, end to end through synco-source and synco on MariaDB and
PostgreSQL; determinism across sessions; the secret never published; the errors and detect."""

from __future__ import annotations

import datetime
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dbfixtures import mysql_connect, mysql_execute, url_text
from pgfixtures import pg_execute
from sourceproc import Source, StaticServer, env_with, synco
from synco_source import anonymize
from synco_source.format import SessionCrypto, Token

SECRET = "correct-horse-battery-staple-4711"
HASH = "$2y$10$ZeXxE2sigasEcLwFZ6t9fusfnR9FOlzfQFnnPqVkko8DLE/olXaLO"
CUTOFF = 11  # customers from this id on are kept (created >= 2024-01-11)
CUSTOMERS = 40

RULES = f"""
tables:
  sessions: skip
  customer: {{where: "created >= '2024-01-{CUTOFF:02d}'"}}
  audit: {{limit: 5, order: "at desc"}}
columns:
  customer.email: email
  customer.first_name: first_name
  customer.last_name: last_name
  customer.full_name: name
  customer.phone: phone
  customer.ip: ipv4
  customer.ip6: ipv6
  customer.iban: iban
  customer.note: text
  customer.born: date_shift
  customer.password: {{value: "{HASH}"}}
  customer.nick: {{null: true}}
  "*.customer_email": email
"""

SCHEMA = [
    "CREATE TABLE customer (id INT PRIMARY KEY, email VARCHAR(100) UNIQUE, first_name VARCHAR(40), "
    "last_name VARCHAR(40), full_name VARCHAR(80), phone VARCHAR(30), ip VARCHAR(45), ip6 VARCHAR(45), "
    "iban VARCHAR(34), note TEXT, born DATE, password VARCHAR(100) NOT NULL, nick VARCHAR(10), "
    "created DATE NOT NULL)",
    "CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT, customer_email VARCHAR(100), total INT, "
    "CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES customer (id))",
    "CREATE TABLE order_line (id INT PRIMARY KEY, order_id INT NOT NULL, qty INT, "
    "CONSTRAINT line_order FOREIGN KEY (order_id) REFERENCES orders (id))",
    "CREATE TABLE sessions (id INT PRIMARY KEY, data VARCHAR(100))",
    "CREATE TABLE audit (id INT PRIMARY KEY, at DATE)",
]


def source_values(i: int) -> dict:
    """Customer ``i``'s row; every seventh has NULLs in the nullable columns."""
    null = i % 7 == 0
    return {"id": i, "email": None if null else f"person{i}@mail.example",
            "first_name": None if null else f"Firstname{i}", "last_name": f"Lastname{i}",
            "full_name": f"Firstname{i} Lastname{i}", "phone": f"+43 660 {i:07d}",
            "ip": f"192.168.7.{i}", "ip6": f"fe80::{i:x}", "iban": f"AT61190430023457{i:04d}",
            "note": f"called on {i} March about the parcel", "born": None if null else f"1980-02-{(i % 28) + 1:02d}",
            "password": f"$2y$10$realhash{i:040d}", "nick": f"nick{i}", "created": f"2024-01-{i:02d}" if i <= 31
            else f"2024-02-{i - 31:02d}"}


def fill(execute) -> list[dict]:
    rows = [source_values(i) for i in range(1, CUSTOMERS + 1)]
    statements = list(SCHEMA)
    for row in rows:
        values = ", ".join("NULL" if v is None else str(v) if isinstance(v, int) else "'" + v + "'"
                           for v in row.values())
        statements.append(f"INSERT INTO customer ({', '.join(row)}) VALUES ({values})")
    for i in range(1, CUSTOMERS + 1):  # two orders per customer, one without a customer
        for k in (0, 1):
            order = 2 * i + k
            email = "NULL" if rows[i - 1]["email"] is None else f"'{rows[i - 1]['email']}'"
            statements.append(f"INSERT INTO orders VALUES ({order}, {'NULL' if k and i == 3 else i}, "
                              f"{email}, {i * 10 + k})")
            statements.append(f"INSERT INTO order_line VALUES ({order}, {order}, {k + 1})")
    statements += [f"INSERT INTO sessions VALUES ({i}, 'session of person{i}@mail.example')" for i in range(1, 4)]
    statements += [f"INSERT INTO audit VALUES ({i}, '2024-03-{i:02d}')" for i in range(1, 21)]
    execute(*statements)
    return rows


def write_rules(folder: Path, rules: str = RULES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "synco.yaml").write_text(rules)
    return folder


def session_plaintext(publish: Path, token_text: str) -> tuple[dict, list[bytes], list[bytes]]:
    """The database manifest, every chunk's plaintext and every other opened object (meta, key,
    manifests and parts) of the session in ``publish``."""
    token = Token.decode(token_text)
    sc = SessionCrypto(token.key, token.session_id)
    folder = publish / token.session_id.hex()
    meta = sc.open_meta((folder / "meta").read_bytes())
    (entry,) = [s for s in meta["sets"] if s["name"] == "db"]
    manifest = sc.open_manifest(entry["manifest"], (folder / "o" / entry["manifest"]).read_bytes(), "db")
    chunks = [sc.open_chunk(c["id"], (folder / "o" / c["id"]).read_bytes(), c["size"], c["sha256"])
              for t in manifest["tables"] for c in t["chunks"]]
    import json
    return manifest, chunks, [json.dumps(meta).encode(), json.dumps(manifest).encode()]


def serve_and_download(cwd: Path, src_url: str, dst_url: str, tmp_path: Path, monkeypatch,
                       extra: tuple[str, ...] = ()) -> tuple[dict, list[bytes], list[bytes], str, str]:
    monkeypatch.setenv(anonymize.SECRET_ENV, SECRET)
    publish = tmp_path / f"public-{len(list(tmp_path.iterdir()))}"
    publish.mkdir()
    with StaticServer(publish) as web:
        with Source(["--publish-dir", str(publish), "--base-url", web.url, *extra], cwd=cwd,
                    db_url=src_url) as source:
            source.wait_ready()
            manifest, chunks, others = session_plaintext(publish, source.token)
            result = synco("download", source.token, "--yes", db_url=dst_url)
            assert result.code == 0, result.stderr + source.stderr
    return manifest, chunks, others, source.stderr, result.stderr


def check_copy(rows: list[dict], got: dict[str, list[tuple]], engine: str) -> None:
    """The local copy: filtered rows with their children, fakes of the right shapes."""
    kept = [r for r in rows if r["id"] >= CUTOFF]
    customers = {c[0]: c for c in got["customer"]}
    assert sorted(customers) == [r["id"] for r in kept]
    assert sorted(o[0] for o in got["orders"]) == sorted([7] + [2 * r["id"] + k for r in kept for k in (0, 1)])
    assert sorted(line[1] for line in got["order_line"]) == sorted(o[0] for o in got["orders"])
    assert got["sessions"] == []
    assert sorted(a[1] for a in got["audit"]) == [datetime.date(2024, 3, d) for d in range(16, 21)]
    shifts = set()
    emails = set()
    for r in kept:
        (_id, email, first, last, full, phone, ip, ip6, iban, note, born, password, nick,
         created) = customers[r["id"]]
        if r["email"] is None:
            assert email is None and first is None and born is None
        else:
            assert re.fullmatch(r"u[0-9a-f]{16}@example\.org", email), email
            emails.add(email)
            assert first in anonymize.FIRST_NAMES
            shifts.add((born - datetime.date.fromisoformat(r["born"])).days)
        assert last in anonymize.LAST_NAMES
        assert full.split(" ")[0] in anonymize.FIRST_NAMES and full.split(" ")[1] in anonymize.LAST_NAMES
        assert re.fullmatch(r"\+49 151 \d{8}", phone), phone
        assert re.fullmatch(r"10\.\d{1,3}\.\d{1,3}\.\d{1,3}", ip), ip
        assert re.fullmatch(r"2001:db8(:[0-9a-f]{4}){6}", ip6), ip6
        assert re.fullmatch(r"DE\d{20}", iban) and int(iban[4:] + "1314" + iban[2:4]) % 97 == 1, iban
        assert re.fullmatch(r"text-[0-9a-f]{16}", note), note
        assert password == HASH and nick is None
        assert str(created) == r["created"]  # no rule: as it was
    assert len(emails) == len([r for r in kept if r["email"]])
    assert len(shifts) == 1 and shifts != {0} and abs(next(iter(shifts))) <= 365
    fake_of = {c[0]: c[1] for c in got["customer"]}
    for order_id, customer_id, customer_email, _total in got["orders"]:
        if customer_id is not None:
            assert customer_email == fake_of[customer_id]  # the same fake in both tables: joins work


def source_strings(rows: list[dict]) -> list[bytes]:
    out = []
    for r in rows:
        for key in ("email", "first_name", "last_name", "phone", "ip", "ip6", "iban", "note", "password", "nick"):
            if r[key] is not None:
                out.append(r[key].encode())
    return out


def assert_nothing_leaks(rows, chunks, others, stderr_text) -> None:
    published = b"\n".join(chunks + others)
    for value in source_strings([r for r in rows if r["id"] >= CUTOFF]):
        assert value not in published, value
    for secret in (SECRET.encode(), anonymize.derived_key(SECRET).encode()):
        assert secret not in published
        assert secret.decode() not in stderr_text


# --- MariaDB ------------------------------------------------------------------------------

def mysql_rows(url, table: str) -> list[tuple]:
    conn = mysql_connect(url, url.database)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT * FROM `{table}` ORDER BY id")
            return list(cur.fetchall())
    finally:
        conn.close()


def test_mysql_rules_end_to_end(mysql_db, tmp_path, monkeypatch):
    src, dst = mysql_db("src"), mysql_db("dst", create=False)
    rows = fill(lambda *s: mysql_execute(src, *s, database=src.database))
    folder = write_rules(tmp_path / "app")
    manifest, chunks, others, out, err = serve_and_download(folder, url_text(src), url_text(dst), tmp_path,
                                                            monkeypatch)
    got = {t: mysql_rows(dst, t) for t in ("customer", "orders", "order_line", "sessions", "audit")}
    check_copy(rows, got, "mysql")
    assert_nothing_leaks(rows, chunks, others, out + err)
    assert "anonymized: customer.email (email)" in out
    assert "orders (follows the foreign key to customer)" in out
    # a second session gives the same chunks: incremental pulls keep working
    manifest2, _chunks, _others, _out, err2 = serve_and_download(folder, url_text(src), url_text(dst),
                                                                 tmp_path, monkeypatch)
    assert [c["sha256"] for t in manifest2["tables"] for c in t["chunks"]] == \
        [c["sha256"] for t in manifest["tables"] for c in t["chunks"]]


# --- PostgreSQL -----------------------------------------------------------------------------

def pg_rows(url, table: str) -> list[tuple]:
    return pg_execute(url, f"SELECT * FROM {table} ORDER BY id")


def test_postgresql_rules_end_to_end_with_foreign_keys_validated(pg_db, tmp_path, monkeypatch):
    src, dst = pg_db("src"), pg_db("dst", create=False)
    rows = fill(lambda *s: pg_execute(src, *s))
    folder = write_rules(tmp_path / "app")
    manifest, chunks, others, out, err = serve_and_download(folder, url_text(src), url_text(dst), tmp_path,
                                                            monkeypatch)
    got = {t: pg_rows(dst, t) for t in ("customer", "orders", "order_line", "sessions", "audit")}
    check_copy(rows, got, "postgresql")
    assert_nothing_leaks(rows, chunks, others, out + err)
    fks = pg_execute(dst, "SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f' ORDER BY 1")
    assert fks == [("line_order", True), ("orders_customer", True)]
    manifest2, _chunks, _others, _out, _err = serve_and_download(folder, url_text(src), url_text(dst),
                                                                 tmp_path, monkeypatch)
    assert [c["sha256"] for t in manifest2["tables"] for c in t["chunks"]] == \
        [c["sha256"] for t in manifest["tables"] for c in t["chunks"]]


def test_same_value_same_fake_on_both_engines(mysql_db, pg_db, tmp_path, monkeypatch):
    """The fake is a function of the value and the secret alone: a MariaDB and a PostgreSQL copy
    of the same rows agree (and so do tables of one database)."""
    my_src, my_dst = mysql_db("src"), mysql_db("dst", create=False)
    pg_src, pg_dst = pg_db("src"), pg_db("dst", create=False)
    fill(lambda *s: mysql_execute(my_src, *s, database=my_src.database))
    fill(lambda *s: pg_execute(pg_src, *s))
    folder = write_rules(tmp_path / "app")
    serve_and_download(folder, url_text(my_src), url_text(my_dst), tmp_path, monkeypatch)
    serve_and_download(folder, url_text(pg_src), url_text(pg_dst), tmp_path, monkeypatch)
    mine = [r[:10] for r in mysql_rows(my_dst, "customer")]
    theirs = [r[:10] for r in pg_rows(pg_dst, "customer")]
    assert mine == theirs


# --- errors, strict mode, detect -------------------------------------------------------------

def run_source(cwd: Path, db_url: str, *args: str, secret: str | None = SECRET) -> subprocess.CompletedProcess:
    env = env_with(SYNCO_DB_URL=db_url)
    env.pop(anonymize.SECRET_ENV, None)
    if secret:
        env[anonymize.SECRET_ENV] = secret
    return subprocess.run([sys.executable, "-m", "synco_source.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def serve_fails(cwd: Path, db_url: str, secret: str | None = SECRET) -> str:
    run = run_source(cwd, db_url, "serve", "--listen", "127.0.0.1:0", "--once", secret=secret)
    assert run.returncode != 0
    assert run.stdout == "", "no token printed"
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if ": error:" in line]
    assert len(errors) == 1, run.stderr
    return errors[0] + "\n" + run.stderr


@pytest.fixture
def small_mysql(mysql_db):
    src = mysql_db("src")
    fill(lambda *s: mysql_execute(src, *s, database=src.database))
    return url_text(src)


def test_column_rules_without_a_secret_are_one_error_line(small_mysql, tmp_path):
    folder = write_rules(tmp_path / "app")
    text = serve_fails(folder, small_mysql, secret=None)
    assert "column rules with fakes need a secret" in text
    assert anonymize.SECRET_ENV in text


def test_strict_mode_lists_every_unhandled_column(small_mysql, tmp_path):
    folder = write_rules(tmp_path / "app", "anonymize: strict\ncolumns:\n  customer.email: email\n"
                                            "  customer.first_name: keep\n")
    line = serve_fails(folder, small_mysql).splitlines()[0]
    for column in ("customer.last_name (last_name)", "customer.full_name (name)", "customer.phone (phone)",
                   "customer.ip (ipv4)", "customer.iban (iban)", "customer.born (date_shift)",
                   "customer.password ({null: true})", "orders.customer_email (email)"):
        assert column in line, line
    assert "customer.email" not in line.replace("orders.customer_email", "")
    assert "customer.first_name" not in line and "audit" not in line


def test_a_rule_naming_a_missing_column_says_the_closest(small_mysql, tmp_path):
    folder = write_rules(tmp_path / "app", "columns:\n  customer.emial: email\n")
    text = serve_fails(folder, small_mysql)
    assert "customer.emial: table customer has no column emial" in text
    assert "closest: email" in text


def test_an_invalid_where_is_the_database_error_naming_the_table(small_mysql, tmp_path):
    folder = write_rules(tmp_path / "app", "tables:\n  orders: {where: \"no_such_column > 1\"}\n")
    text = serve_fails(folder, small_mysql)
    assert "the privacy rules for table orders do not run" in text and "no_such_column" in text


def test_a_fake_that_does_not_fit_and_null_on_not_null(small_mysql, tmp_path):
    folder = write_rules(tmp_path / "app", "columns:\n  customer.created: email\n")
    assert "the fake email gives text; the column is date" in serve_fails(folder, small_mysql)
    write_rules(folder, "columns:\n  customer.password: {null: true}\n")
    assert "{null: true} on a NOT NULL column" in serve_fails(folder, small_mysql)
    write_rules(folder, "columns:\n  customer.email: first_name\n")
    assert "the column is unique and the fake first_name repeats values" in serve_fails(folder, small_mysql)


def test_detect_lists_the_rules_and_what_strict_mode_would_refuse(small_mysql, tmp_path):
    folder = write_rules(tmp_path / "app", RULES + "anonymize: strict\n")
    run = run_source(folder, small_mysql, "detect")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "anonymize secret: from $SYNCO_ANONYMIZE_SECRET" in out
    assert "rows of customer: where created >= '2024-01-11' (synco.yaml)" in out
    assert "rows of order_line: follows the foreign key to orders" in out
    assert "rows of audit: limit 5 order by at desc (synco.yaml)" in out
    assert "column customer.email: email (synco.yaml)" in out
    assert "column orders.customer_email: email (synco.yaml)" in out
    assert "rows left out: sessions" in out
    assert "strict mode refuses customer.full_name" not in out
    assert "strict mode refuses customer.id" not in out
    assert SECRET not in out + run.stderr


def test_a_rules_file_is_checked_on_load(tmp_path):
    from synco_frameworks import config
    from synco_source.errors import UsageError

    for text, message in (("columns:\n  email: email\n", "columns.email: must be TABLE.COLUMN"),
                          ("columns:\n  users.email: emali\n", "unknown fake 'emali' (did you mean email?)"),
                          ("tables:\n  users: {limit: many}\n", "limit must be a whole number"),
                          ("tables:\n  users: drop\n", "must be skip, {where: SQL}"),
                          ("anonymize: yes\n", "anonymize: must be strict or off")):
        write_rules(tmp_path, text)
        with pytest.raises(UsageError, match=re.escape(message)):
            config.load(tmp_path, {})


# --- the sample databases -------------------------------------------------------------------

SAMPLE_RULES = """
tables:
  customer: {where: "store_id = 1"}
columns:
  customer.email: email
  customer.first_name: first_name
  customer.last_name: last_name
  staff.email: email
  staff.password: {value: "x"}
  address.phone: phone
"""


def test_pagila_customers_of_one_store_with_payments_and_rentals(pagila_pg, pg_db, tmp_path, monkeypatch):
    """Pagila's payments are partitioned and reference customers and rentals: only those of the
    kept customers travel, and the copy imports with every foreign key validated."""
    dst = pg_db("dst", create=False)
    folder = write_rules(tmp_path / "app", SAMPLE_RULES)
    _manifest, chunks, _others, out, _err = serve_and_download(folder, url_text(pagila_pg), url_text(dst),
                                                               tmp_path, monkeypatch)
    kept = pg_execute(pagila_pg, "SELECT count(*) FROM customer WHERE store_id = 1")[0][0]
    assert pg_execute(dst, "SELECT count(*) FROM customer")[0][0] == kept
    # Pagila's last payment partition has no foreign keys: nothing leads a filter there
    others = "t.tableoid <> 'public.payment_p2022_07'::regclass"
    for table, where in (("rental", "true"), ("payment", others)):
        want = pg_execute(pagila_pg, f"SELECT count(*) FROM {table} t JOIN customer c USING (customer_id) "
                                     f"WHERE c.store_id = 1 AND {where}")[0][0]
        assert pg_execute(dst, f"SELECT count(*) FROM {table} t WHERE {where}")[0][0] == want > 0
    assert pg_execute(dst, "SELECT count(*) FROM payment_p2022_07") == \
        pg_execute(pagila_pg, "SELECT count(*) FROM payment_p2022_07")
    assert pg_execute(dst, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated") == [(0,)]
    assert pg_execute(dst, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'")[0][0] > 10
    emails = [r[0] for r in pg_execute(pagila_pg, "SELECT email FROM customer WHERE store_id = 1 AND email IS NOT NULL")]
    plain = b"".join(chunks)
    assert not any(e.encode() in plain for e in emails)
    assert pg_execute(dst, "SELECT count(*) FROM customer WHERE email NOT LIKE '%@example.org'") == [(0,)]
    assert "rental (follows the foreign key to customer)" in out


def test_sakila_customers_of_one_store_leave_no_orphans(sakila_db, mysql_db, tmp_path, monkeypatch):
    dst = mysql_db("dst", create=False)
    folder = write_rules(tmp_path / "app", SAMPLE_RULES)
    serve_and_download(folder, url_text(sakila_db), url_text(dst), tmp_path, monkeypatch)
    conn = mysql_connect(dst, dst.database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM customer WHERE store_id <> 1 OR email NOT LIKE '%@example.org'")
            assert cur.fetchone() == (0,)
            # every foreign key of the copy holds
            cur.execute("SELECT TABLE_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME "
                        "FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = %s "
                        "AND REFERENCED_TABLE_NAME IS NOT NULL", (dst.database,))
            for table, column, parent, pcol in cur.fetchall():
                cur.execute(f"SELECT COUNT(*) FROM `{table}` c WHERE c.`{column}` IS NOT NULL AND NOT EXISTS "
                            f"(SELECT 1 FROM `{parent}` p WHERE p.`{pcol}` = c.`{column}`)")
                assert cur.fetchone() == (0,), (table, column, parent)
            cur.execute("SELECT COUNT(*) FROM payment")
            assert 0 < cur.fetchone()[0] < 16049
    finally:
        conn.close()


def test_output_file_holds_the_fakes(mysql_db, tmp_path, monkeypatch):
    src = mysql_db("src")
    rows = fill(lambda *s: mysql_execute(src, *s, database=src.database))
    folder = write_rules(tmp_path / "app")
    monkeypatch.setenv(anonymize.SECRET_ENV, SECRET)
    with Source(["--listen", "127.0.0.1:0"], cwd=folder, db_url=url_text(src)) as source:
        result = synco("download", source.token, "--output", str(tmp_path / "dump.sql"))
        assert result.code == 0, result.stderr
    script = (tmp_path / "dump.sql").read_bytes()
    assert b"@example.org" in script
    for value in source_strings([r for r in rows if r["id"] >= CUTOFF]):
        assert value not in script


def test_postgresql_foreign_key_declared_on_a_partitioned_table(pg_db, tmp_path, monkeypatch):
    src, dst = pg_db("src"), pg_db("dst", create=False)
    pg_execute(src, "CREATE TABLE member (id int PRIMARY KEY, email text, active bool NOT NULL)",
               "CREATE TABLE visit (id int, member_id int REFERENCES member (id), day date NOT NULL, "
               "PRIMARY KEY (id, day)) PARTITION BY RANGE (day)",
               "CREATE TABLE visit_2023 PARTITION OF visit FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')",
               "CREATE TABLE visit_2024 PARTITION OF visit FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
               "INSERT INTO member SELECT g, 'm' || g || '@mail.example', g % 2 = 0 FROM generate_series(1, 50) g",
               "INSERT INTO visit SELECT g, 1 + g % 50, DATE '2023-06-01' + g FROM generate_series(1, 400) g")
    folder = write_rules(tmp_path / "app", "tables:\n  member: {where: active}\ncolumns:\n  member.email: email\n")
    serve_and_download(folder, url_text(src), url_text(dst), tmp_path, monkeypatch)
    assert pg_execute(dst, "SELECT count(*) FROM member") == [(25,)]
    assert pg_execute(dst, "SELECT count(*) FROM visit") == [(200,)]
    assert pg_execute(dst, "SELECT count(*) FROM visit v JOIN member m ON m.id = v.member_id") == [(200,)]
    assert pg_execute(dst, "SELECT bool_and(convalidated) FROM pg_constraint WHERE contype = 'f'") == [(True,)]


def test_detect_without_the_database_lists_the_rules_as_written(tmp_path):
    folder = write_rules(tmp_path / "app")
    run = run_source(folder, "mysql://nobody@127.0.0.1:1/shop", "detect")
    assert run.returncode == 0, run.stderr
    assert "column rule customer.email: email (synco.yaml)" in run.stdout
    assert "table rule audit: limit 5 order by at desc (synco.yaml)" in run.stdout
    assert "privacy rules not checked: cannot connect to" in run.stdout
