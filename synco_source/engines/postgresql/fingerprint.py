"""A cheap fingerprint of each table, computed by the server: what an import produced, so that a
later look can tell whether the local copy was edited since.

Per table (leaf partitions too, named as the dump names them): in one REPEATABLE READ snapshot,
``count(*)``, the exact (numeric) sum of a 64-bit hash of every row and the XOR of a second one
with another seed (order does not matter; duplicates do not cancel in the sum), hashed together
with the column definitions. The row hash is ``hash_record_extended(row, seed)``, the server's
hash of each column's binary value; a table with a column type that has no hash function
(``point``, ``json``, ``xml``…) hashes each row's text instead (``hashtextextended(row::text)``,
fixed by the session settings), about three times slower. Compare fingerprints taken on one
server (hashes may change between major versions). Cost: one sequential read of each table by
the server (about 8 s per GB of table here, 30 s with the text fallback); one row of numbers per
table reaches the client.
"""

from __future__ import annotations

import hashlib

import psycopg

from ...dburl import DatabaseUrl
from ...errors import DatabaseError
from .catalog import USER_NS, not_extension
from .sql import connect, failing, query

_TABLES = f"""
SELECT c.oid, (pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname))
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence <> 't' AND {USER_NS} AND {not_extension('pg_class', 'c.oid')}
ORDER BY n.nspname, c.relname"""

_COLUMNS = """
SELECT a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull
       THEN ' not null' ELSE '' END || ' ' || a.attgenerated::text
FROM pg_catalog.pg_attribute a WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum"""


_HASHES = ("SELECT count(*), COALESCE(sum({f}(t, 0)), 0), COALESCE(bit_xor({f}(t, 1)), 0) "
           "FROM ONLY {name} t")


def _row_hashes(conn, name: str) -> tuple:
    try:
        with conn.transaction():  # a savepoint: a type without a hash function fails the query
            return query(conn, _HASHES.format(f="pg_catalog.hash_record_extended", name=name))[0]
    except psycopg.errors.UndefinedFunction:
        text = _HASHES.format(f="pg_catalog.hashtextextended", name=name).replace("(t, ", "(t::text, ")
        return query(conn, text)[0]


def table_oids(conn) -> dict[str, int]:
    """The tables a fingerprint covers: ``{name: oid}``."""
    return {name: oid for oid, name in query(conn, _TABLES)}


def columns(conn, oid: int) -> str:
    """A table's column definitions as the fingerprint hashes them."""
    return "\n".join(r[0] for r in query(conn, _COLUMNS, (oid,)))


def combine(columns: str, hashes: tuple) -> dict:
    """One table's fingerprint from its column definitions and its row hashes (``_row_hashes``)."""
    rows, one, two = hashes
    text = f"{columns}\0{rows}\0{one}\0{two}"
    return {"rows": int(rows), "hash": hashlib.sha256(text.encode()).hexdigest()}


def row_hashes(conn, name: str) -> tuple:
    """Count and row hashes of one table, in a read-only transaction of their own (the loader
    takes them of each table while other tables' indexes are built, post.py)."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return _row_hashes(conn, name)


def fingerprint(url: DatabaseUrl, tables: list[str] | None = None) -> dict[str, dict]:
    """``{table: {"rows": int, "hash": str}}`` for ``tables`` (default: every table with rows of
    its own; names as ``schema.table``, quoted where needed, as in the dump)."""
    conn = connect(url)
    try:
        with failing(f"cannot fingerprint the tables of {url.redacted}"):
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                found = table_oids(conn)
                if tables is not None:
                    unknown = sorted(set(tables) - set(found))
                    if unknown:
                        raise DatabaseError(f"table {unknown[0]} is not in {url.redacted}",
                                            hint="the database changed since the import; download again")
                    found = {n: o for n, o in found.items() if n in set(tables)}
                return {name: combine(columns(conn, oid), _row_hashes(conn, name))
                        for name, oid in found.items()}
    finally:
        conn.close()
