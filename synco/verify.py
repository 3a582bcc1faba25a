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

from .state import state_dir

VERSION = 1


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


def record_import(url: DatabaseUrl, manifest: dict, folder: Path | None = None) -> float:
    """Fingerprint the freshly imported database and record it with the manifest's chunk lists;
    returns the seconds the fingerprint took. Raises (SyncoError, OSError) on failure, after
    removing any older record."""
    forget(url, folder)
    start = time.monotonic()
    prints = engines.fingerprint(url)
    took = time.monotonic() - start
    tables = {}
    for table in manifest["tables"]:
        name = table["name"]
        tables[name] = {"rows": table["rows"], "chunks": [c["sha256"] for c in table["chunks"]],
                        "fingerprint": prints.get(name)}
    doc = {"version": VERSION, "target": target_key(url), "imported": int(time.time()),
           "tables": tables, "fingerprints": prints}
    _write(record_path(url, folder), doc)
    return took


def load_record(url: DatabaseUrl, folder: Path | None = None) -> dict | None:
    """The last import's record of ``url``'s database, or None (missing, unreadable, foreign)."""
    try:
        doc = json.loads(record_path(url, folder).read_bytes())
    except (OSError, ValueError):
        return None
    if (not isinstance(doc, dict) or doc.get("version") != VERSION
            or doc.get("target") != target_key(url) or not isinstance(doc.get("fingerprints"), dict)
            or not isinstance(doc.get("tables"), dict)):
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
