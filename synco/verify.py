"""What the last import put into a local database, and whether the database still holds it.

After a database import has been swapped in, the client asks the local server for a fingerprint
of each table (``engines.fingerprint``: row count and a content hash, computed by the server) and
records it next to the manifest's row count and chunk hash list of that table. ``synco verify``
(and ``--verify`` on download and pull) takes the fingerprint again and names the tables that
differ: rows changed, tables added or dropped since the import. A later re-import can use the
same record to prove a table unchanged (the chunk list says the server's table is the same, the
fingerprint that the local one still is).

One versioned JSON document per target database (engine, host, port, database name), under
platformdirs' user state folder, written atomically like synco/state.py's file hashes. A
missing, corrupt or foreign record reads as "no record"; failing to write it never fails a pull
(the previous record is removed first, so a stale one never vouches for a new database).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from synco_source import engines
from synco_source.dburl import DatabaseUrl
from synco_source.errors import SyncoError

from .state import state_dir

VERSION = 2  # 2: the schema's digest (an older record reads as no record)


def target_key(url: DatabaseUrl) -> str:
    """engine, host, port and database name: which local database a record is about."""
    url = engines.resolve(url)
    return "\0".join([url.engine, str(url.host or ""), str(url.port or ""), url.database or ""])


def record_path(url: DatabaseUrl, folder: Path | None = None) -> Path:
    name = hashlib.sha256(target_key(url).encode()).hexdigest()[:32]
    return (folder or state_dir() / "imports") / f"{name}.json"


def _write(path: Path, doc: dict) -> None:
    """Atomically replace ``path`` with ``doc`` (a temporary file renamed over it)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(json.dumps(doc, separators=(",", ":")).encode())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def forget(url: DatabaseUrl, folder: Path | None = None) -> None:
    """Remove the record (before an import replaces the database it vouches for)."""
    try:
        record_path(url, folder).unlink(missing_ok=True)
    except OSError:
        pass


def record_import(url: DatabaseUrl, manifest: dict, folder: Path | None = None,
                  prints: dict | None = None) -> float:
    """Fingerprint the freshly imported database and record it with the manifest's chunk lists;
    returns the seconds the fingerprint took. ``prints``: the fingerprint the loader took of the
    imported tables before its swap (PostgreSQL's, while it built the indexes); None: take it
    now. Raises (SyncoError, OSError) on failure, after removing any older record."""
    forget(url, folder)
    start = time.monotonic()
    if prints is None:
        prints = engines.fingerprint(url)
    took = time.monotonic() - start
    tables = {}
    for table in manifest["tables"]:
        name = table["name"]
        tables[name] = {"rows": table["rows"], "chunks": [c["sha256"] for c in table["chunks"]],
                        "fingerprint": prints.get(name)}
    doc = {"version": VERSION, "target": target_key(url), "imported": int(time.time()),
           "schema": schema_digest(manifest["schema"]), "tables": tables, "fingerprints": prints}
    _write(record_path(url, folder), doc)
    return took


def refresh_fingerprints(url: DatabaseUrl, folder: Path | None = None) -> None:
    """Take the fingerprints again after a step that is part of the import changed rows (the
    WordPress URL rewrite): the record then vouches for the database as the import left it. The
    server's chunk lists and schema stay as recorded. Without a record there is nothing to do."""
    doc = load_record(url, folder)
    if doc is None:
        return
    prints = engines.fingerprint(url)
    for name, table in doc["tables"].items():
        if isinstance(table, dict):
            table["fingerprint"] = prints.get(name)
    doc["fingerprints"] = prints
    _write(record_path(url, folder), doc)


def load_record(url: DatabaseUrl, folder: Path | None = None) -> dict | None:
    """The last import's record of ``url``'s database, or None (missing, unreadable, foreign)."""
    try:
        doc = json.loads(record_path(url, folder).read_bytes())
    except (OSError, ValueError):
        return None
    if (not isinstance(doc, dict) or doc.get("version") != VERSION
            or doc.get("target") != target_key(url) or not isinstance(doc.get("fingerprints"), dict)
            or not isinstance(doc.get("tables"), dict) or not isinstance(doc.get("schema"), str)):
        return None
    return doc


@dataclass
class Comparison:
    """How the local database differs from what the last import put there."""

    changed: list[str] = field(default_factory=list)   # same table, other rows or columns
    added: list[str] = field(default_factory=list)     # in the database, not imported
    dropped: list[str] = field(default_factory=list)   # imported, no longer there
    rows: dict[str, tuple[int, int]] = field(default_factory=dict)  # changed: (recorded, now)
    tables: int = 0
    seconds: float = 0.0

    @property
    def identical(self) -> bool:
        return not (self.changed or self.added or self.dropped)

    def lines(self) -> list[str]:
        out = []
        for name in self.changed:
            was, now = self.rows[name]
            out.append(f"changed: {name} ({was:,} rows imported, {now:,} now)" if was != now
                       else f"changed: {name} (rows edited, {now:,} rows)")
        out += [f"added:   {name} (not in the last import)" for name in self.added]
        out += [f"dropped: {name} (imported, no longer there)" for name in self.dropped]
        return out


def compare(recorded: dict[str, dict], now: dict[str, dict]) -> Comparison:
    """Compare two ``engines.fingerprint`` results, table by table."""
    result = Comparison(tables=len(recorded))
    for name in sorted(set(recorded) | set(now)):
        if name not in now:
            result.dropped.append(name)
        elif name not in recorded:
            result.added.append(name)
        elif recorded[name] != now[name]:
            result.changed.append(name)
            result.rows[name] = (int(recorded[name]["rows"]), int(now[name]["rows"]))
    return result


def check(url: DatabaseUrl, folder: Path | None = None) -> Comparison | None:
    """Fingerprint ``url``'s database now and compare with the last import (None: no record)."""
    record = load_record(url, folder)
    if record is None:
        return None
    start = time.monotonic()
    now = engines.fingerprint(url)
    result = compare(record["fingerprints"], now)
    result.seconds = time.monotonic() - start
    return result


def schema_digest(schema: dict) -> str:
    """SHA-256 of a database manifest's schema without what describes the server rather than the
    database (its version): the same for a source and for a faithful copy of it, read back by the
    engine's own dumper (tests/test_unchanged.py checks this on every sample database)."""
    kept = {k: v for k, v in schema.items() if not k.startswith("server_version")}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def local_schema_digest(url: DatabaseUrl) -> str | None:
    """The digest of the local database's schema as the engine's dumper reads it (None: it cannot
    be read, e.g. the developer added an object kind synco does not copy)."""
    try:
        with engines.dumper(url) as dumper:
            return schema_digest(dumper.schema())
    except SyncoError:
        return None


class Unchanged:
    """Evidence that an import can be left out: the local database is still exactly what the last
    import put there, and the server has exactly what it had then.

    - the server's schema is the one imported then (its digest is in the record), and the local
      schema, read back now by the engine's own dumper, is the same: no local DDL (an added
      index, a changed view, an advanced sequence or AUTO_INCREMENT counter) went unnoticed;
    - every table's chunk list (and row count) in the new manifest is the recorded one: the
      server's rows are byte for byte the same;
    - the local fingerprints are the recorded ones: no local row was edited.

    The first two are checked as the manifest comes in (``matches``), the fingerprint, the
    expensive part (one read of every table by the local server), last (``data_unchanged``).
    Any doubt means a full import, never a kept edit."""

    def __init__(self, url: DatabaseUrl, record: dict) -> None:
        self.url, self.record = url, record

    @classmethod
    def start(cls, url: DatabaseUrl, schema: dict, folder: Path | None = None) -> "Unchanged | None":
        record = load_record(url, folder)
        if record is None or record["schema"] != schema_digest(schema):
            return None
        if local_schema_digest(url) != record["schema"]:
            return None
        return cls(url, record)

    def matches(self, tables: list[dict], complete: bool = True) -> bool:
        """Whether ``tables`` (manifest entries, in order) are the recorded ones; with
        ``complete`` false the last may still grow (parts of a session still dumping)."""
        recorded = self.record["tables"]
        if complete and len(tables) != len(recorded):
            return False
        for i, table in enumerate(tables):
            rec = recorded.get(table["name"])
            if not isinstance(rec, dict) or not isinstance(rec.get("chunks"), list):
                return False
            chunks = [c["sha256"] for c in table["chunks"]]
            if complete or i < len(tables) - 1:
                if rec["chunks"] != chunks or rec.get("rows") != table["rows"]:
                    return False
            elif rec["chunks"][:len(chunks)] != chunks:
                return False
        return True

    def data_unchanged(self) -> tuple[bool, float]:
        """Fingerprint the local tables now: (all as recorded, seconds it took)."""
        start = time.monotonic()
        try:
            same = compare(self.record["fingerprints"], engines.fingerprint(self.url)).identical
        except SyncoError:
            same = False
        return same, time.monotonic() - start
