#!/usr/bin/env python3
"""Generate a MariaDB benchmark database of about a given size, server-side.

Three tables, filled with INSERT ... SELECT from MariaDB's SEQUENCE engine (``seq_1_to_N``), so no
row passes through Python:

- ``narrow``: id, int, short varchar, datetime, decimal (+ one secondary index); millions of rows.
- ``wide``: 20 columns of mixed types (utf8mb4 text incl. non-ASCII, dates, a TIMESTAMP, NULLs,
  doubles, decimals) and a ~1 KB text column per row.
- ``blobs``: ~100 KB LONGBLOB per row, half pseudo-random (incompressible), half repetitive text.

Content is a pure function of ``--seed`` and the row id (MD5/SHA2 of "seed:id:..."), so reruns with
the same arguments give byte-identical tables. Sizes are calibrated against the uncompressed
``mariadb-dump`` output: ``--size-mb 1000`` gives a dump of about 1000 MB (40% narrow, 30% wide,
30% blobs). InnoDB's on-disk size differs (page overhead, index); both are reported.

Usage::

    .venv/bin/python bench/gen_mysql.py --size-mb 1000            # ~1 GB (default)
    .venv/bin/python bench/gen_mysql.py --size-mb 50 --db synco_bench_small --force

The database is created if needed. An existing database generated with the same size and seed is
left alone (the parameters are kept in the tables' comments); otherwise ``--force`` is required to
drop and regenerate it. Requires MariaDB >= 10.0 (SEQUENCE engine).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import urllib.parse
from dataclasses import dataclass

import pymysql

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import genlib  # noqa: E402

DEFAULT_URL = "mysql://root@127.0.0.1:3306/synco_bench"

# Share of the target size per table, and the approximate number of bytes one row takes in an
# uncompressed mariadb-dump (measured; see calibrate notes in bench/README.md).
SHARES = {"narrow": 0.40, "wide": 0.30, "blobs": 0.30}
DUMP_BYTES_PER_ROW = {"narrow": 70, "wide": 1300, "blobs": 104_400}
BLOB_RANDOM_BYTES = 51_200      # 800 x 64-byte SHA-512 digests
BLOB_TEXT_BYTES = 51_200        # repetitive, compresses well
CHUNK_ROWS = {"narrow": 500_000, "wide": 25_000, "blobs": 200}
# Secondary indexes, added after the load (a sorted index build is much faster than maintaining the
# index row by row with a small buffer pool).
POST_LOAD = ["ALTER TABLE narrow ADD KEY idx_user (user_id)"]

SCHEMA = {
    "narrow": """
CREATE TABLE narrow (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  user_id INT UNSIGNED NOT NULL,
  code VARCHAR(32) NOT NULL,
  created_at DATETIME NOT NULL,
  amount DECIMAL(12,2) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='{comment}'""",
    "wide": """
CREATE TABLE wide (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  account_id INT UNSIGNED NOT NULL,
  status TINYINT NOT NULL,
  email VARCHAR(120) NOT NULL,
  first_name VARCHAR(60) NOT NULL,
  last_name VARCHAR(60) NOT NULL,
  city VARCHAR(60) NOT NULL,
  country CHAR(2) NOT NULL,
  phone VARCHAR(24) NULL,
  uuid CHAR(36) NOT NULL,
  ip VARCHAR(45) NOT NULL,
  birth_date DATE NULL,
  created_at DATETIME NOT NULL,
  updated_at TIMESTAMP NOT NULL DEFAULT '2000-01-01 00:00:00',
  score DOUBLE NOT NULL,
  balance DECIMAL(14,4) NOT NULL,
  flags INT UNSIGNED NOT NULL,
  is_active TINYINT(1) NOT NULL,
  tags VARCHAR(200) NOT NULL,
  bio TEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='{comment}'""",
    "blobs": """
CREATE TABLE blobs (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  name VARCHAR(100) NOT NULL,
  mime VARCHAR(40) NOT NULL,
  created_at DATETIME NOT NULL,
  data LONGBLOB NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='{comment}'""",
}

# Each INSERT selects from the derived table g(seq, h) where h = MD5('seed:seq') (32 hex chars);
# {lo}/{hi} are the id range, {seed} the seed string (digits only, so safe to inline).
H = "(SELECT seq, MD5(CONCAT('{seed}:', seq)) AS h FROM seq_{lo}_to_{hi})"


def _hx(start: int, n: int = 8) -> str:
    """Unsigned int from n hex digits of h starting at 1-based position start."""
    return f"CONV(SUBSTRING(g.h, {start}, {n}), 16, 10)"


INSERT = {
    "narrow": f"""
INSERT INTO narrow (id, user_id, code, created_at, amount)
SELECT g.seq,
       {_hx(1)} % 5000000,
       CONCAT('c_', SUBSTRING(g.h, 9, 10 + g.seq % 12)),
       '2018-01-01 00:00:00' + INTERVAL ({_hx(21)} % 220000000) SECOND,
       ({_hx(13)} % 100000000) / 100
FROM {H} AS g""",
    "wide": f"""
INSERT INTO wide (id, account_id, status, email, first_name, last_name, city, country, phone,
                  uuid, ip, birth_date, created_at, updated_at, score, balance, flags, is_active,
                  tags, bio)
SELECT g.seq,
       {_hx(1)} % 1000000,
       {_hx(9, 2)} % 5,
       CONCAT(ELT(1 + {_hx(11, 2)} % 6, 'anna', 'bob', 'chloé', 'dmitri', 'eve', 'fatima'),
              '.', SUBSTRING(g.h, 13, 8), '@', ELT(1 + {_hx(21, 2)} % 4, 'example.com',
              'mail.example.org', 'exämple.de', 'corp.example.net')),
       ELT(1 + {_hx(11, 2)} % 6, 'Anna', 'Bob', 'Chloé', 'Dmitri', 'Eve', 'Fatima'),
       ELT(1 + {_hx(23, 2)} % 8, 'Müller', 'Smith', 'García', 'Nguyễn', 'O''Brien', 'Kowalski',
           'Tanaka', 'Rossi'),
       ELT(1 + {_hx(25, 2)} % 8, 'Zürich', 'São Paulo', '東京', 'Kraków', 'New York', 'Lyon',
           'Cape Town', 'Reykjavík'),
       ELT(1 + {_hx(25, 2)} % 8, 'CH', 'BR', 'JP', 'PL', 'US', 'FR', 'ZA', 'IS'),
       IF({{nulls}} AND {_hx(27, 2)} % 7 = 0, NULL, CONCAT('+', {_hx(1, 11)})),
       CONCAT_WS('-', SUBSTRING(g.h, 1, 8), SUBSTRING(g.h, 9, 4), SUBSTRING(g.h, 13, 4),
                 SUBSTRING(g.h, 17, 4), SUBSTRING(g.h, 21, 12)),
       CONCAT_WS('.', {_hx(1, 2)}, {_hx(3, 2)}, {_hx(5, 2)}, {_hx(7, 2)}),
       IF({{nulls}} AND {_hx(29, 2)} % 5 = 0, NULL, '1950-01-01' + INTERVAL ({_hx(13)} % 20000) DAY),
       '2015-01-01 00:00:00' + INTERVAL ({_hx(17)} % 300000000) SECOND,
       '2021-01-01 00:00:00' + INTERVAL ({_hx(21)} % 100000000) SECOND,
       {_hx(1)} / 4294967296.0 * 1000,
       ({_hx(9)} % 1000000000000) / 10000 - 50000,
       {_hx(25)},
       {_hx(31, 2)} % 2,
       CONCAT_WS(',', ELT(1 + {_hx(1, 1)} % 5, 'new', 'vip', 'trial', 'legacy', 'beta'),
                 ELT(1 + {_hx(2, 1)} % 4, 'eu', 'us', 'apac', 'latam'), SUBSTRING(g.h, 3, 6)),
       CONCAT('Lorem ipsum dolor sit amet, consectetur adipiscing elit; row ', g.seq, '. ',
              SHA2(CONCAT('{{seed}}:b1:', g.seq), 512), ' Sed do eiusmod tempor incididunt ut labore ',
              'et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ',
              'ullamco laboris nisi ut aliquip ex ea commodo consequat. ',
              SHA2(CONCAT('{{seed}}:b2:', g.seq), 512), ' Duis aute irure dolor in reprehenderit ',
              'in voluptate velit esse cillum dolore eu fugiat nulla pariatur — naïve café, ',
              'Grüße, 日本語のテキスト. ', SHA2(CONCAT('{{seed}}:b3:', g.seq), 512),
              ' Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia ',
              'deserunt mollit anim id est laborum. Ref ', SUBSTRING(g.h, 1, 16), ' / ',
              SHA2(CONCAT('{{seed}}:b4:', g.seq), 384), '.')
FROM {H} AS g""",
    "blobs": f"""
INSERT INTO blobs (id, name, mime, created_at, data)
SELECT g.seq,
       CONCAT('file_', SUBSTRING(g.h, 1, 12), ELT(1 + {_hx(13, 2)} % 3, '.pdf', '.png', '.bin')),
       ELT(1 + {_hx(13, 2)} % 3, 'application/pdf', 'image/png', 'application/octet-stream'),
       '2019-01-01 00:00:00' + INTERVAL ({_hx(17)} % 150000000) SECOND,
       CONCAT((SELECT GROUP_CONCAT(UNHEX(SHA2(CONCAT('{{seed}}:r:', g.seq, ':', s.seq), 512))
                                   SEPARATOR '')
               FROM seq_1_to_{BLOB_RANDOM_BYTES // 64} AS s),
              LEFT(REPEAT(CONCAT('%PDF-1.4 obj ', g.seq, ' stream BT /F1 12 Tf (synco benchmark ',
                                 'payload, mostly repetitive) Tj ET endstream\\n'), 800),
                   {BLOB_TEXT_BYTES}))
FROM {H} AS g""",
}


@dataclass
class Conn:
    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "root"
    password: str = ""
    unix_socket: str | None = None

    def connect(self, db: str | None = None, **kw) -> pymysql.connections.Connection:
        return pymysql.connect(host=self.host, port=self.port, user=self.user,
                               password=self.password, unix_socket=self.unix_socket,
                               database=db, charset="utf8mb4", autocommit=True, **kw)


def parse_url(url: str) -> tuple[Conn, str]:
    """mysql://user[:password]@host[:port]/db (or mariadb://) -> (Conn, db)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("mysql", "mariadb"):
        raise SystemExit(f"unsupported URL scheme {u.scheme!r} (want mysql://)")
    db = u.path.lstrip("/")
    if not db:
        raise SystemExit("the URL needs a database name: mysql://root@127.0.0.1:3306/NAME")
    q = urllib.parse.parse_qs(u.query)
    return Conn(host=u.hostname or "127.0.0.1", port=u.port or 3306,
                user=urllib.parse.unquote(u.username or "root"),
                password=urllib.parse.unquote(u.password or ""),
                unix_socket=(q.get("unix_socket") or [None])[0]), db


def plan(size_mb: float) -> dict[str, int]:
    """Rows per table for an uncompressed dump of about size_mb MB."""
    return genlib.plan(size_mb, SHARES, DUMP_BYTES_PER_ROW)


def existing_comment(c, db: str) -> dict[str, str] | None:
    c.execute("SELECT table_name, table_comment FROM information_schema.tables "
              "WHERE table_schema = %s", (db,))
    rows = c.fetchall()
    return {r[0]: r[1] for r in rows} if rows else None


def table_sizes(c, db: str) -> dict[str, tuple[int, int]]:
    """table -> (rows (exact), data_length + index_length bytes (InnoDB estimate))."""
    out = {}
    c.execute(f"ANALYZE TABLE `{db}`.narrow, `{db}`.wide, `{db}`.blobs")
    c.fetchall()
    for t in SHARES:
        c.execute(f"SELECT COUNT(*) FROM `{db}`.`{t}`")
        n = c.fetchone()[0]
        c.execute("SELECT data_length + index_length FROM information_schema.tables "
                  "WHERE table_schema = %s AND table_name = %s", (db, t))
        out[t] = (n, int(c.fetchone()[0]))
    return out


def generate(conn: Conn, db: str, size_mb: float, seed: int = 1, force: bool = False,
             jobs: int = 2, nulls: bool = True,
             log=lambda m: print(m, file=sys.stderr, flush=True)) -> dict:
    """Create and fill `db`; returns {'seconds', 'rows', 'innodb_bytes', 'skipped'}."""
    if not 0 < size_mb <= 1_000_000:
        raise ValueError("size_mb out of range")
    seed = int(seed)
    comment = genlib.comment_for(size_mb, seed, nulls)
    rows = plan(size_mb)
    t0 = time.monotonic()
    with conn.connect() as cx, cx.cursor() as c:
        if genlib.reusable(existing_comment(c, db), SHARES, comment, force, db, log):
            sizes = table_sizes(c, db)
            return {"seconds": 0.0, "rows": {t: s[0] for t, s in sizes.items()},
                    "innodb_bytes": sum(s[1] for s in sizes.values()), "skipped": True}
        c.execute(f"DROP DATABASE IF EXISTS `{db}`")
        c.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
        c.execute(f"USE `{db}`")
        c.execute("SET SESSION unique_checks = 0, foreign_key_checks = 0, "
                  "group_concat_max_len = 1048576, max_statement_time = 0")
        for t in SHARES:
            # The real comment is set only once the load is complete, so an interrupted run is
            # never mistaken for a finished one.
            c.execute(SCHEMA[t].format(comment="synco-bench gen incomplete"))
    # Fill the tables with `jobs` connections working through id ranges.
    work = [(t, lo, min(rows[t], lo + CHUNK_ROWS[t] - 1))
            for t in SHARES for lo in range(1, rows[t] + 1, CHUNK_ROWS[t])]

    @contextlib.contextmanager
    def session():
        with conn.connect(db) as wx, wx.cursor() as wc:
            wc.execute("SET SESSION unique_checks = 0, foreign_key_checks = 0, "
                       "group_concat_max_len = 1048576")
            yield wc

    genlib.fill(work, jobs, session, lambda wc, item: wc.execute(
        INSERT[item[0]].format(seed=seed, lo=item[1], hi=item[2], nulls=int(nulls))))
    log(f"gen: rows loaded in {time.monotonic() - t0:.1f}s "
        f"({', '.join(f'{t} {n:,}' for t, n in rows.items())})")
    with conn.connect(db) as cx, cx.cursor() as c:
        for stmt in POST_LOAD:
            c.execute(stmt)
        for t in SHARES:
            c.execute(f"ALTER TABLE `{t}` COMMENT = %s", (comment,))
        seconds = time.monotonic() - t0
        sizes = table_sizes(c, db)
    innodb = sum(s[1] for s in sizes.values())
    log(f"gen: `{db}` done in {seconds:.1f}s, InnoDB data+index {innodb / 1e6:.0f} MB")
    return {"seconds": seconds, "rows": {t: s[0] for t, s in sizes.items()},
            "innodb_bytes": innodb, "skipped": False}


def drop_database(conn: Conn, db: str) -> None:
    with conn.connect() as cx, cx.cursor() as c:
        c.execute(f"DROP DATABASE IF EXISTS `{db}`")


def main(argv: list[str] | None = None) -> int:
    return genlib.main(argv, __doc__, default_url=DEFAULT_URL, dump="dump", parse_url=parse_url,
                       generate=generate, drop=drop_database,
                       summary=lambda r: f"InnoDB {r['innodb_bytes'] / 1e6:.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
