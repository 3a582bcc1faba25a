"""Database engines: one subpackage per engine, dump and load side by side.

An engine offers three things, looked up by ``url.engine`` and imported only when used (so the
server binary does not load a driver it does not need):

``Dumper(url)`` — a context manager holding one connection in one consistent snapshot:
    ``schema() -> dict``          JSON-able description of everything but the rows (goes into the
                                  database manifest unchanged; only the same engine reads it)
    ``tables() -> list[str]``     the tables whose rows are dumped, in a stable order
    ``rows(table) -> Iterator[bytes]``  one record per row, deterministic bytes, deterministic order
    ``encode_chunk(table, rows) -> bytes``  the plaintext of one database chunk
    ``select(sql) -> list[tuple]``  a query in the same snapshot (framework plugins choosing files)

``Loader(url)`` — loads into a shadow database and swaps it in at the end:
    ``recover() -> list[str]``    take the target's run lock (one run per target), finish or roll
                                  back an earlier, killed run's swap, drop its stale shadow
                                  database; what was done, one line each for the user (also in
                                  ``notes``). describe_target() and begin() run it first.
    ``describe_target() -> int``  number of tables now in the target database (0: absent or empty)
    ``begin(schema)``             create the shadow database and the tables
    ``load(table, chunk)``        load one chunk's plaintext (a loader that works in the
                                  background may report a chunk's failure at a later load() or
                                  at commit(), never later)
    ``commit()``                  add what comes after the data, swap, keep the previous database
    ``abort()``                   drop the shadow database; the target is untouched

``SqlWriter(fileobj)`` — the same three calls as a Loader, writing a plain SQL script instead.

``restore(url)`` — swap the kept previous database back in (after ``recover``).

``recover(url) -> list[str]`` — ``Loader.recover`` on its own.

``fingerprint(url, tables=None) -> dict[str, dict]`` — ``{table: {"rows": int, "hash": str}}``,
computed by the server (one or two reads of each table, nothing but numbers to the client), to
tell later whether a table was edited; compare fingerprints taken on the same server.

Engines: ``mysql`` (MySQL and MariaDB), ``postgresql``, ``sqlite`` (a file: ``url.database`` is its
absolute path, the shadow and previous databases are files next to it; docs/sqlite.md).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..dburl import DatabaseUrl
from ..errors import UsageError

_MODULES = {"mysql": "synco_source.engines.mysql", "postgresql": "synco_source.engines.postgresql",
            "sqlite": "synco_source.engines.sqlite"}


def engine_module(engine: str) -> ModuleType:
    try:
        name = _MODULES[engine]
    except KeyError:
        raise UsageError(f"unknown database engine {engine!r}") from None
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("synco_source.engines."):
            raise UsageError(f"the {engine} engine is not available in this version of synco") from None
        raise


def resolve(url: DatabaseUrl) -> DatabaseUrl:
    """The URL the engine will connect to, for messages (MySQL's ``localhost`` may be a socket)."""
    return getattr(engine_module(url.engine), "resolve", lambda u: u)(url)


def dumper(url: DatabaseUrl):
    return engine_module(url.engine).Dumper(url)


def loader(url: DatabaseUrl):
    return engine_module(url.engine).Loader(url)


def sql_writer(engine: str, fileobj):
    return engine_module(engine).SqlWriter(fileobj)


def restore(url: DatabaseUrl) -> str:
    return engine_module(url.engine).restore(url)


def recover(url: DatabaseUrl) -> list[str]:
    """Finish or roll back what an earlier, killed run left in ``url``'s database server; what
    was done, one line each (the same step a loader takes first)."""
    target = loader(url)
    try:
        return target.recover()
    finally:
        target.close()


def fingerprint(url: DatabaseUrl, tables: list[str] | None = None) -> dict[str, dict]:
    """Rows and a content hash of each table of ``url``'s database (``tables``: only these)."""
    return engine_module(url.engine).fingerprint(url, tables)
