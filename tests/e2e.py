"""Shared pieces of the end-to-end tests: a small shop database, a file set, and checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dbfixtures import mysql_connect

MARKER = "PLAINTEXT-MARKER-7f3a9c"


def make_shop(url) -> None:
    """A small database: several chunks of rows, a view, a trigger, a blob, a marker row."""
    conn = mysql_connect(url, url.database)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE customer (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(80), "
                    "note TEXT, created DATETIME(6)) CHARACTER SET utf8mb4")
        cur.execute("INSERT INTO customer (name, note, created) SELECT CONCAT('customer ', seq), "
                    "REPEAT(MD5(seq), 4), '2024-01-01' + INTERVAL seq SECOND FROM seq_1_to_20000")
        cur.execute("CREATE TABLE secret (id INT PRIMARY KEY, value VARCHAR(100), picture BLOB)")
        cur.execute("INSERT INTO secret VALUES (1, %s, 0x00FF27), (2, 'é🐬', NULL)", (MARKER,))
        cur.execute("CREATE TABLE audit (id INT PRIMARY KEY AUTO_INCREMENT, what VARCHAR(40))")
        cur.execute("CREATE VIEW customer_names AS SELECT id, name FROM customer")
        cur.execute("CREATE TRIGGER secret_audit AFTER INSERT ON secret FOR EACH ROW "
                    "INSERT INTO audit (what) VALUES (NEW.value)")
    conn.close()


def make_local(url) -> None:
    """What a developer's database looks like before a download: something to keep."""
    conn = mysql_connect(url, url.database)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE local_only (id INT PRIMARY KEY, v VARCHAR(10))")
        cur.execute("INSERT INTO local_only VALUES (1, 'mine')")
        cur.execute("CREATE VIEW local_view AS SELECT v FROM local_only")
    conn.close()


def make_files(root: Path) -> Path:
    (root / "img" / "2024").mkdir(parents=True)
    (root / "img" / "2024" / "a.jpg").write_bytes(os.urandom(300_000))
    (root / "doc.txt").write_text(f"hello {MARKER}\n")
    (root / "empty").write_bytes(b"")
    (root / "big.bin").write_bytes(os.urandom(5_000_000))
    os.chmod(root / "doc.txt", 0o600)
    os.utime(root / "doc.txt", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    return root


def tree(root: Path) -> dict:
    """Path → (content, mode, mtime_ns) of every regular file under ``root``."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            out[path.relative_to(root).as_posix()] = (path.read_bytes(), st.st_mode & 0o7777,
                                                      st.st_mtime_ns)
    return out


def databases(server) -> set[str]:
    conn = mysql_connect(server)
    with conn.cursor() as cur:
        cur.execute("SHOW DATABASES")
        names = {row[0] for row in cur.fetchall()}
    conn.close()
    return names


def one_error_line(stderr: str) -> str:
    """The stderr of a failed run: exactly one error line (plus an optional hint), no traceback."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("synco: error:")]
    assert len(errors) == 1, stderr
    return errors[0]


@pytest.fixture
def shop(mysql_db):
    url = mysql_db("shop")
    make_shop(url)
    return url
