"""A fingerprint of each table: what an import produced, so that a later look can tell whether
the local copy was edited since.

Per table, in one read transaction: the row count and a SHA-256 of the table's CREATE statement
and of every row's record as the dump writes it (length-prefixed, in rowid or key order), so two
files give the same fingerprint exactly when the dump would publish the same rows. One read of
each table in Python (about the dump's own speed); nothing leaves the machine.
"""

from __future__ import annotations

import hashlib

from ...dburl import DatabaseUrl
from ...errors import DatabaseError
from .dump import Dumper


def fingerprint(url: DatabaseUrl, tables: list[str] | None = None) -> dict[str, dict]:
    """``{table: {"rows": int, "hash": str}}`` for ``tables`` (default: every table; names as the
    dump names them)."""
    with Dumper(url) as dumper:
        found = dumper.tables()
        if tables is not None:
            unknown = sorted(set(tables) - set(found))
            if unknown:
                raise DatabaseError(f"table {unknown[0]} is not in {url.redacted}",
                                    hint="the database changed since the import; download again")
            found = [t for t in found if t in set(tables)]
        out = {}
        for name in found:
            digest = hashlib.sha256(dumper._table(name)["sql"].encode("utf-8", "surrogateescape") + b"\0")
            count = 0
            for record in dumper.rows(name):
                digest.update(len(record).to_bytes(8, "big") + record)
                count += 1
            out[name] = {"rows": count, "hash": digest.hexdigest()}
        return out
