#!/usr/bin/env python3
"""Generate a deterministic PostgreSQL benchmark database (narrow rows, wide rows, bytea blobs).

All rows are produced server-side with ``INSERT … SELECT … FROM generate_series`` and core
functions only (md5, sha512, repeat, string_agg; no extension such as pgcrypto), on a few
connections in parallel, so a GB takes well under a minute on 2 cores. Every value is a function
of ``--seed`` and the row id (MD5/SHA-512 of ``'seed:…:id'``), not of random(): reruns, and runs
with another ``--jobs``, produce identical tables. Sizes are calibrated against the uncompressed
``pg_dump`` output: ``--size-mb 1000`` gives a plain dump of about 1000 MB (40% narrow, 30% wide,
30% blobs; bytea is dumped as hex, so a 100 KB blob takes ~205 KB of dump). The database's own
size on disk (heap + TOAST + indexes) is reported too.

Usage::

    .venv/bin/python bench/gen_pg.py --size-mb 1000            # ~1 GB (default)
    .venv/bin/python bench/gen_pg.py --size-mb 50 --db-url postgresql://postgres@127.0.0.1:5432/synco_bench_small --force

The database is created if needed. An existing database generated with the same size and seed is
left alone (the parameters are kept in the tables' comments); otherwise ``--force`` is required to
drop and regenerate it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import urllib.parse
from dataclasses import dataclass

import psycopg
from psycopg import sql

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import genlib  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/synco_bench"

# Share of the target size per table, and the bytes one row takes in an uncompressed pg_dump
# (COPY text format; measured on generated data, see bench/README.md).
SHARES = {"narrow": 0.40, "wide": 0.30, "blobs": 0.30}
DUMP_BYTES_PER_ROW = {"narrow": 63, "wide": 1270, "blobs": 204_870}
BLOB_RANDOM_BYTES = 51_200      # 800 x 64-byte SHA-512 digests: incompressible
BLOB_TEXT_BYTES = 51_200        # repetitive, compresses well
CHUNK_ROWS = {"narrow": 250_000, "wide": 20_000, "blobs": 100}
# Secondary indexes, built after the load (faster than maintaining them row by row).
POST_LOAD = [
    "ALTER TABLE narrow ADD PRIMARY KEY (id)",
    "ALTER TABLE wide ADD PRIMARY KEY (id)",
    "ALTER TABLE blobs ADD PRIMARY KEY (id)",
    "CREATE INDEX narrow_user_id_idx ON narrow (user_id)",
    "CREATE INDEX wide_account_created_idx ON wide (account_id, created_at)",
    "CREATE UNIQUE INDEX wide_email_key ON wide (email)",
]

SCHEMA = {
    "narrow": """
CREATE TABLE narrow (
  id bigint NOT NULL,
  user_id integer NOT NULL,
  code varchar(32) NOT NULL,
  created_at timestamp NOT NULL,
  amount numeric(12,2) NOT NULL
)""",
    "wide": """
CREATE TABLE wide (
  id bigint NOT NULL,
  account_id integer NOT NULL,
  status smallint NOT NULL,
  email varchar(120) NOT NULL,
  first_name varchar(60) NOT NULL,
  last_name varchar(60) NOT NULL,
  city varchar(60) NOT NULL,
  country char(2) NOT NULL,
  phone varchar(24),
  uuid uuid NOT NULL,
  ip inet NOT NULL,
  birth_date date,
  created_at timestamp NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT '2000-01-01 00:00:00+00',
  score double precision NOT NULL,
  balance numeric(14,4) NOT NULL,
  flags bigint NOT NULL,
  is_active boolean NOT NULL,
  tags text[] NOT NULL,
  bio text NOT NULL
)""",
    "blobs": """
CREATE TABLE blobs (
  id bigint NOT NULL,
  name varchar(100) NOT NULL,
  mime varchar(40) NOT NULL,
  created_at timestamp NOT NULL,
  data bytea NOT NULL
)""",
}

# Each INSERT selects from g(id, h) where h = md5('seed:id') (32 hex chars); {lo}/{hi} are the id
# range, {seed} the seed (an int, so safe to inline).
G = "(SELECT i AS id, md5('{seed}:' || i) AS h FROM generate_series({lo}, {hi}) AS i) AS g"


def _hx(start: int, n: int = 8) -> str:
    """Unsigned integer (bigint) from n (<= 15) hex digits of h starting at 1-based position start."""
    return f"('x' || substr(g.h, {start}, {n}))::bit({4 * n})::bigint"


def _pick(expr: str, *items: str) -> str:
    """(ARRAY[items])[1 + expr % len]; items are SQL literals."""
    return f"(ARRAY[{', '.join(items)}])[1 + ({expr}) % {len(items)}]"


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _sha(tag: str, fn: str = "sha512") -> str:
    return f"encode({fn}(convert_to('{{seed}}:{tag}:' || g.id, 'UTF8')), 'hex')"


INSERT = {
    "narrow": f"""
INSERT INTO narrow (id, user_id, code, created_at, amount)
SELECT g.id,
       {_hx(1)} % 5000000,
       'c_' || substr(g.h, 9, 10 + (g.id % 12)::int),
       timestamp '2018-01-01 00:00:00' + ({_hx(21)} % 220000000) * interval '1 second',
       ({_hx(13)} % 100000000) / 100.0
FROM {G}""",
    "wide": f"""
INSERT INTO wide (id, account_id, status, email, first_name, last_name, city, country, phone,
                  uuid, ip, birth_date, created_at, updated_at, score, balance, flags, is_active,
                  tags, bio)
SELECT g.id,
       {_hx(1)} % 1000000,
       {_hx(9, 2)} % 5,
       {_pick(_hx(11, 2), *map(_lit, ['anna', 'bob', 'chloé', 'dmitri', 'eve', 'fatima']))}
         || '.' || substr(g.h, 13, 8) || '.' || g.id || '@'
         || {_pick(_hx(21, 2), *map(_lit, ['example.com', 'mail.example.org', 'exämple.de',
                                            'corp.example.net']))},
       {_pick(_hx(11, 2), *map(_lit, ['Anna', 'Bob', 'Chloé', 'Dmitri', 'Eve', 'Fatima']))},
       {_pick(_hx(23, 2), *map(_lit, ['Müller', 'Smith', 'García', 'Nguyễn', "O'Brien",
                                      'Kowalski', 'Tanaka', 'Rossi']))},
       {_pick(_hx(25, 2), *map(_lit, ['Zürich', 'São Paulo', '東京', 'Kraków', 'New York', 'Lyon',
                                      'Cape Town', 'Reykjavík']))},
       {_pick(_hx(25, 2), *map(_lit, ['CH', 'BR', 'JP', 'PL', 'US', 'FR', 'ZA', 'IS']))},
       CASE WHEN {{nulls}} AND {_hx(27, 2)} % 7 = 0 THEN NULL ELSE '+' || {_hx(1, 11)} END,
       (substr(g.h, 1, 8) || '-' || substr(g.h, 9, 4) || '-' || substr(g.h, 13, 4) || '-'
        || substr(g.h, 17, 4) || '-' || substr(g.h, 21, 12))::uuid,
       ({_hx(1, 2)} || '.' || {_hx(3, 2)} || '.' || {_hx(5, 2)} || '.' || {_hx(7, 2)})::inet,
       CASE WHEN {{nulls}} AND {_hx(29, 2)} % 5 = 0 THEN NULL
            ELSE date '1950-01-01' + ({_hx(13)} % 20000)::int END,
       timestamp '2015-01-01 00:00:00' + ({_hx(17)} % 300000000) * interval '1 second',
       timestamptz '2021-01-01 00:00:00+00' + ({_hx(21)} % 100000000) * interval '1 second',
       {_hx(1)} / 4294967296.0 * 1000,
       ({_hx(9)} % 1000000000000) / 10000.0 - 50000,
       {_hx(25)},
       {_hx(31, 2)} % 2 = 1,
       ARRAY[{_pick(_hx(1, 1), *map(_lit, ['new', 'vip', 'trial', 'legacy', 'beta']))},
             {_pick(_hx(2, 1), *map(_lit, ['eu', 'us', 'apac', 'latam']))},
             substr(g.h, 3, 6)],
       'Lorem ipsum dolor sit amet, consectetur adipiscing elit; row ' || g.id || '. '
         || {_sha('b1')} || ' Sed do eiusmod tempor incididunt ut labore '
         || 'et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation '
         || 'ullamco laboris nisi ut aliquip ex ea commodo consequat. '
         || {_sha('b2')} || ' Duis aute irure dolor in reprehenderit in voluptate velit esse '
         || 'cillum dolore eu fugiat nulla pariatur — naïve café, Grüße, 日本語のテキスト. '
         || {_sha('b3')} || E' Excepteur sint occaecat\\tcupidatat non proident,\\nsunt in culpa '
         || 'qui officia deserunt mollit anim id est laborum. Ref ' || substr(g.h, 1, 16) || ' / '
         || {_sha('b4', 'sha384')} || '.'
FROM {G}""",
    "blobs": f"""
INSERT INTO blobs (id, name, mime, created_at, data)
SELECT g.id,
       'file_' || substr(g.h, 1, 12) || {_pick(_hx(13, 2), "'.pdf'", "'.png'", "'.bin'")},
       {_pick(_hx(13, 2), "'application/pdf'", "'image/png'", "'application/octet-stream'")},
       timestamp '2019-01-01 00:00:00' + ({_hx(17)} % 150000000) * interval '1 second',
       (SELECT string_agg(sha512(convert_to('{{seed}}:r:' || g.id || ':' || s, 'UTF8')), ''::bytea
                          ORDER BY s)
          FROM generate_series(1, {BLOB_RANDOM_BYTES // 64}) AS s)
       || convert_to(left(repeat('%PDF-1.4 obj ' || g.id || ' stream BT /F1 12 Tf (synco benchmark '
                                 || 'payload, mostly repetitive) Tj ET endstream' || chr(10), 800),
                          {BLOB_TEXT_BYTES}), 'UTF8')
FROM {G}""",
}


@dataclass
class Conn:
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str = ""

    def connect(self, db: str = "postgres", **kw) -> psycopg.Connection:
        return psycopg.connect(host=self.host, port=self.port, user=self.user,
                               password=self.password or None, dbname=db, autocommit=True, **kw)

    def url(self, db: str) -> str:
        q = urllib.parse.quote
        auth = q(self.user, safe="") + (":" + q(self.password, safe="") if self.password else "")
        return f"postgresql://{auth}@{self.host}:{self.port}/{db}"


def parse_url(url: str) -> tuple[Conn, str]:
    """postgresql://user[:password]@host[:port]/db (or postgres://) -> (Conn, db)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("postgresql", "postgres"):
        raise SystemExit(f"unsupported URL scheme {u.scheme!r} (want postgresql://)")
    db = urllib.parse.unquote(u.path.lstrip("/"))
    if not db:
        raise SystemExit("the URL needs a database name: postgresql://postgres@127.0.0.1:5432/NAME")
    return Conn(host=u.hostname or "127.0.0.1", port=u.port or 5432,
                user=urllib.parse.unquote(u.username or "postgres"),
                password=urllib.parse.unquote(u.password or "")), db


def plan(size_mb: float) -> dict[str, int]:
    """Rows per table for an uncompressed pg_dump of about size_mb MB."""
    return genlib.plan(size_mb, SHARES, DUMP_BYTES_PER_ROW)


def exists(conn: Conn, db: str) -> bool:
    with conn.connect() as cx:
        return cx.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone() is not None


def drop_database(conn: Conn, db: str) -> None:
    with conn.connect() as cx:
        cx.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(db)))


def existing_comment(conn: Conn, db: str) -> dict[str, str] | None:
    if not exists(conn, db):
        return None
    with conn.connect(db) as cx:
        rows = cx.execute("SELECT c.relname, coalesce(obj_description(c.oid, 'pg_class'), '') "
                          "FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace "
                          "AND c.relkind = 'r'").fetchall()
    return {r[0]: r[1] for r in rows}


def table_sizes(conn: Conn, db: str) -> dict[str, tuple[int, int]]:
    """table -> (rows (exact), heap + TOAST + index bytes)."""
    out = {}
    with conn.connect(db) as cx:
        for t in SHARES:
            n = cx.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
            b = cx.execute("SELECT pg_total_relation_size(%s::regclass)", (t,)).fetchone()[0]
            out[t] = (n, int(b))
    return out


def database_bytes(conn: Conn, db: str) -> int:
    with conn.connect() as cx:
        return int(cx.execute("SELECT pg_database_size(%s)", (db,)).fetchone()[0])


def generate(conn: Conn, db: str, size_mb: float, seed: int = 1, force: bool = False,
             jobs: int = 2, nulls: bool = True,
             log=lambda m: print(m, file=sys.stderr, flush=True)) -> dict:
    """Create and fill `db`; returns {'seconds', 'rows', 'db_bytes', 'table_bytes', 'skipped'}."""
    if not 0 < size_mb <= 1_000_000:
        raise ValueError("size_mb out of range")
    seed = int(seed)
    comment = genlib.comment_for(size_mb, seed, nulls)
    rows = plan(size_mb)
    t0 = time.monotonic()
    if genlib.reusable(existing_comment(conn, db), SHARES, comment, force, db, log):
        sizes = table_sizes(conn, db)
        return {"seconds": 0.0, "rows": {t: s[0] for t, s in sizes.items()},
                "table_bytes": sum(s[1] for s in sizes.values()),
                "db_bytes": database_bytes(conn, db), "skipped": True}
    drop_database(conn, db)
    with conn.connect() as cx:
        cx.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'")
                   .format(sql.Identifier(db)))
    with conn.connect(db) as cx:
        for t in SHARES:
            cx.execute(SCHEMA[t])
            # The real comment is set only once the load is complete, so an interrupted run is
            # never mistaken for a finished one.
            cx.execute(sql.SQL("COMMENT ON TABLE {} IS 'synco-bench gen incomplete'")
                       .format(sql.Identifier(t)))
    # Fill the tables with `jobs` connections working through id ranges (big blobs first).
    work = [(t, lo, min(rows[t], lo + CHUNK_ROWS[t] - 1))
            for t in ("blobs", "wide", "narrow") for lo in range(1, rows[t] + 1, CHUNK_ROWS[t])]

    @contextlib.contextmanager
    def session():
        with conn.connect(db) as wx:
            wx.execute("SET synchronous_commit = off")
            yield wx

    genlib.fill(work, jobs, session, lambda wx, item: wx.execute(
        INSERT[item[0]].format(seed=seed, lo=item[1], hi=item[2],
                               nulls="true" if nulls else "false")))
    log(f"gen: rows loaded in {time.monotonic() - t0:.1f}s "
        f"({', '.join(f'{t} {n:,}' for t, n in rows.items())})")
    with conn.connect(db) as cx:
        cx.execute("SET maintenance_work_mem = '256MB'")
        for stmt in POST_LOAD:
            cx.execute(stmt)
        # VACUUM sets the hint bits and the visibility map now, so the first reader (a timed dump)
        # does not pay for writing them; ANALYZE gives both loaders' index builds the same stats.
        for t in SHARES:
            cx.execute(sql.SQL("VACUUM (FREEZE, ANALYZE) {}").format(sql.Identifier(t)))
        for t in SHARES:
            cx.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(sql.Identifier(t),
                                                                   sql.Literal(comment)))
    seconds = time.monotonic() - t0
    sizes = table_sizes(conn, db)
    total = sum(s[1] for s in sizes.values())
    log(f"gen: `{db}` done in {seconds:.1f}s, tables+indexes {total / 1e6:.0f} MB")
    return {"seconds": seconds, "rows": {t: s[0] for t, s in sizes.items()},
            "table_bytes": total, "db_bytes": database_bytes(conn, db), "skipped": False}


def main(argv: list[str] | None = None) -> int:
    return genlib.main(argv, __doc__, default_url=DEFAULT_URL, dump="pg_dump", parse_url=parse_url,
                       generate=generate, drop=drop_database,
                       summary=lambda r: f"tables+indexes {r['table_bytes'] / 1e6:.0f} MB, "
                                         f"database {r['db_bytes'] / 1e6:.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
