"""Doctrine database URLs (Symfony's DATABASE_URL, Flow's ``backendOptions.url``) to synco's.

Doctrine spells some schemes differently from ``synco_source.dburl``: ``mysql2``, ``pdo-mysql``,
``pdo-pgsql``, ``postgres``; ``sqlite``/``pdo-sqlite``/``sqlite3`` are refused as SQLite. Query
parameters such as ``serverVersion`` and ``charset`` are kept and ignored by the engines;
``unix_socket`` names a socket.
"""

from __future__ import annotations

from synco_source import dburl
from synco_source.dburl import DatabaseUrl
from synco_source.errors import UsageError

SCHEMES = {"mysql2": "mysql", "pdo-mysql": "mysql", "pdo-pgsql": "pgsql", "postgres": "postgresql",
           "pdo-sqlite": "sqlite", "sqlite3": "sqlite"}


def parse(text: str, where: str, key: str) -> DatabaseUrl:
    """``text`` as a synco URL; errors name ``where`` (a file) and ``key``."""
    scheme, sep, rest = text.strip().partition("://")
    if sep and scheme.lower() in SCHEMES:
        text = f"{SCHEMES[scheme.lower()]}://{rest}"
    try:
        url = dburl.parse(text)
    except UsageError as exc:
        raise UsageError(f"{where}: {key}: {exc}", hint=exc.hint) from None
    if not url.database:
        raise UsageError(f"{where}: {key} {url.redacted} names no database",
                         hint="add the database name after the last '/' (before any '?')")
    return url
