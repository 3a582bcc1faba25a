"""A cheap fingerprint of each table, computed by the server: what an import produced, so that a
later look can tell whether the local copy was edited since.

Per table (leaf partitions too, named as the dump names them): in one REPEATABLE READ snapshot,
``count(*)`` and two sums of 64-bit hashes of every row's text (``hashtextextended(row::text,
seed)`` for two seeds, summed exactly as numeric: order does not matter, duplicates do not
cancel), hashed together with the column definitions. The row text is fixed by the session
settings (DateStyle, extra_float_digits, bytea_output, TimeZone), so the fingerprint of the same
rows is the same in any database of the same server major version; compare fingerprints taken
on one server. Cost: one sequential read of each table by the server, the row-to-text
conversion being most of it; one row of numbers per table reaches the client.
"""

from __future__ import annotations

import hashlib

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


def fingerprint(url: DatabaseUrl, tables: list[str] | None = None) -> dict[str, dict]:
    """``{table: {"rows": int, "hash": str}}`` for ``tables`` (default: every table with rows of
    its own; names as ``schema.table``, quoted where needed, as in the dump)."""
    conn = connect(url)
    try:
        with failing(f"cannot fingerprint the tables of {url.redacted}"):
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                found = {name: oid for oid, name in query(conn, _TABLES)}
                if tables is not None:
                    unknown = sorted(set(tables) - set(found))
                    if unknown:
                        raise DatabaseError(f"table {unknown[0]} is not in {url.redacted}",
                                            hint="the database changed since the import; download again")
                    found = {n: o for n, o in found.items() if n in set(tables)}
                out = {}
                for name, oid in found.items():
                    columns = "\n".join(r[0] for r in query(conn, _COLUMNS, (oid,)))
                    rows, one, two = query(
                        conn, "SELECT count(*), COALESCE(sum(pg_catalog.hashtextextended(r, 0)::numeric), 0), "
                              "COALESCE(sum(pg_catalog.hashtextextended(r, 1)::numeric), 0) "
                              f"FROM (SELECT t::text AS r FROM ONLY {name} t) s")[0]
                    text = f"{columns}\0{rows}\0{one}\0{two}"
                    out[name] = {"rows": int(rows), "hash": hashlib.sha256(text.encode()).hexdigest()}
                return out
    finally:
        conn.close()
