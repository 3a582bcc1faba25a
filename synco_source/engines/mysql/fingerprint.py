"""A cheap fingerprint of each table, computed by the server: what an import produced, so that a
later look can tell whether the local copy was edited since.

Per base table: ``COUNT(*)`` and ``CHECKSUM TABLE … EXTENDED`` (the server reads every row once
and adds up a CRC32 of each, all columns, NULLs included, modulo 2**32; order does not matter,
duplicates do not cancel), hashed together with the column definitions, so a changed column shows
even in an empty table. 32 bits catch an accidental edit but are no defence against a chosen one.
The checksum depends on the server's row format, so compare fingerprints taken on the same server
(as after an import and later), not across servers. Cost: two full reads of each table by the
server (about 20-28 s per GB of InnoDB table here, two thirds of it the checksum); nothing but
two numbers per table comes to the client.
"""

from __future__ import annotations

import hashlib

from ...dburl import DatabaseUrl
from ...errors import DatabaseError
from . import catalog
from .sql import connect, failing, qi, query, resolve_localhost


def _columns(conn, db: str) -> dict[str, str]:
    rows = query(conn, "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, "
                       "COALESCE(GENERATION_EXPRESSION, '') FROM information_schema.COLUMNS "
                       "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION", (db,))
    out: dict[str, list[str]] = {}
    for table, *col in rows:
        out.setdefault(table, []).append("\t".join(str(c) for c in col))
    return {t: "\n".join(cols) for t, cols in out.items()}


def fingerprint(url: DatabaseUrl, tables: list[str] | None = None) -> dict[str, dict]:
    """``{table: {"rows": int, "hash": str}}`` for ``tables`` (default: every base table)."""
    url = resolve_localhost(url)
    db = url.database
    conn = connect(url)
    try:
        with failing(f"cannot fingerprint the tables of {url.redacted}"):
            names = catalog.base_tables(conn, db, strict=False)
            if tables is not None:
                unknown = sorted(set(tables) - set(names))
                if unknown:
                    raise DatabaseError(f"table {unknown[0]!r} is not in {url.redacted}",
                                        hint="the database changed since the import; download again")
                names = [n for n in names if n in set(tables)]
            columns = _columns(conn, db)
            out = {}
            for name in names:
                where = f"{qi(db)}.{qi(name)}"
                checksum = query(conn, f"CHECKSUM TABLE {where} EXTENDED")[0][1]
                rows = query(conn, f"SELECT COUNT(*) FROM {where}")[0][0]
                text = f"{columns.get(name, '')}\0{rows}\0{checksum}"
                out[name] = {"rows": int(rows), "hash": hashlib.sha256(text.encode()).hexdigest()}
            return out
    finally:
        conn.close()
