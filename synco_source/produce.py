"""Fill a session: dump the database and index the file sets, then publish the meta as ready."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import anonymize, engines, files, format
from .chunking import cut_rows
from .dburl import DatabaseUrl
from .session import ChunkStore, Session

DB_SET = "db"
PAUSE_ENV = "SYNCO_TEST_DUMP_PAUSE"  # tests: seconds to wait after each part
PART_BYTES = 8 << 20  # a large table is published in parts of about this many plaintext bytes


@dataclass
class Plan:
    """What one session publishes."""

    database: DatabaseUrl | None = None
    file_sets: dict[str, Path] = field(default_factory=dict)
    skip_table_data: Callable[[str], bool] = lambda table: False
    # file set name -> selector(select, table names) -> a FileSelection (see synco_frameworks.base)
    file_selectors: dict[str, Callable] = field(default_factory=dict)
    # synco.yaml's tables:/columns: rules and the presets (anonymize.Rules), run in the dump
    privacy: anonymize.Rules | None = None


def bare_name(table: str) -> str:
    """A table's name without its schema, as framework plugins name tables."""
    return table.rsplit(".", 1)[-1].strip('"`')


class Progress:
    """Republishes the meta with progress at most once a second."""

    def __init__(self, session: Session, say: Callable[[str], None]) -> None:
        self.session = session
        self.say = say
        self.last = 0.0
        self.info: dict = {}

    def update(self, force: bool = False, **info) -> None:
        self.info.update(info)
        now = time.monotonic()
        if force or now - self.last >= 1.0:
            self.last = now
            self.session.publish_meta("dumping", progress=dict(self.info))


class SkipReport:
    """Says which files of a set were not published and why (links, files that vanished while
    indexed): the first few by name, then only how many more."""

    SHOWN = 10

    def __init__(self, set_name: str, say: Callable[[str], None]) -> None:
        self.set_name, self.say, self.count = set_name, say, 0

    def __call__(self, path: str, why: str) -> None:
        self.count += 1
        if self.count <= self.SHOWN:
            self.say(f"files {self.set_name}: not published: {path!r} ({why})")

    def summary(self) -> None:
        if self.count > self.SHOWN:
            self.say(f"files {self.set_name}: {self.count - self.SHOWN} more not published")


def dump_database(url: DatabaseUrl, store: ChunkStore, progress: Progress, plan: Plan,
                  selections: dict) -> dict:
    """Dump the database; the plan's file selectors run in the same snapshot, into ``selections``."""
    pause = float(os.environ.get(PAUSE_ENV) or 0)
    with engines.dumper(url) as dumper:
        if plan.privacy is not None and plan.privacy.active():
            # before schema(): the table plans take the fakes and filters when they are made
            resolved = anonymize.prepare(dumper, url.engine, url.database, plan.privacy,
                                         lambda t: plan.skip_table_data(t) or plan.skip_table_data(bare_name(t)))
            for line in anonymize.summary(resolved, bare_name):
                progress.say(line)
        schema = dumper.schema()
        names = dumper.tables()
        head = {"engine": url.engine, "database": url.database}
        # the parts (docs/FORMAT.md §6.4): the schema first, then runs of each table's chunks
        # once they are written, so a client can import while the rest is still being dumped
        _publish_part(store.session, format.schema_part_label(DB_SET),
                      {**head, "schema": schema, "tables": []})
        progress.update(force=True, step="database", parts=0, tables_done=0, tables=len(names))
        tables, parts = [], 0

        def publish(table: str, chunks: list[dict], **extra) -> None:
            nonlocal parts
            parts += 1
            piece = {"name": table, "rows": sum(c["rows"] for c in chunks), "chunks": chunks}
            _publish_part(store.session, format.table_part_label(DB_SET, parts),
                          {**head, "schema": {}, "tables": [{**piece, **extra}]})
            progress.update(force=True, parts=parts, bytes=store.stored_bytes)
            if pause:
                time.sleep(pause)

        for number, table in enumerate(names, 1):
            if plan.skip_table_data(table) or plan.skip_table_data(bare_name(table)):
                tables.append({"name": table, "rows": 0, "chunks": [], "skipped": True})
                publish(table, [], skipped=True)
                continue
            progress.update(force=True, step="database", table=table,
                            tables_done=number - 1, tables=len(names))
            chunks, pending, pending_bytes, published = [], [], 0, False
            for batch in cut_rows(dumper.rows(table)):
                plain = dumper.encode_chunk(table, batch)
                pending.append((len(batch), store.put(plain)))
                pending_bytes += len(plain)
                progress.update(bytes=store.stored_bytes)
                if pending_bytes >= PART_BYTES:
                    piece = [dict(f.result(), rows=n) for n, f in pending]  # all written now
                    publish(table, piece)
                    chunks += piece
                    pending, pending_bytes, published = [], 0, True
            piece = [dict(f.result(), rows=n) for n, f in pending]
            chunks += piece
            if piece or not published:
                publish(table, piece)
            tables.append({"name": table, "rows": sum(c["rows"] for c in chunks), "chunks": chunks})
        bare = {bare_name(t) for t in names}
        for name, selector in plan.file_selectors.items():
            if name in plan.file_sets:
                selections[name] = selector(dumper.select, bare)
    return {"engine": url.engine, "database": url.database, "schema": schema, "tables": tables}


class _NoDatabase(Exception):
    pass


def _select_without_database(plan: Plan, selections: dict) -> None:
    """With no database dumped (--no-db), the file selectors that need no query still choose
    (Laravel's storage set leaves out public/); one that queries the database keeps its whole set."""
    def select(sql: str) -> list[tuple]:
        raise _NoDatabase

    for name, selector in plan.file_selectors.items():
        if name in plan.file_sets:
            try:
                selections[name] = selector(select, set())
            except _NoDatabase:
                continue


def produce(session: Session, plan: Plan, say: Callable[[str], None]) -> list[dict]:
    """Publish everything in ``plan`` into ``session``; returns the meta's list of sets."""
    progress = Progress(session, say)
    sets, selections = [], {}
    started = time.monotonic()
    with ChunkStore(session) as store:
        if plan.database is not None:
            where = engines.resolve(plan.database).redacted
            say(f"dumping database {plan.database.database} from {where}")
            body = dump_database(plan.database, store, progress, plan, selections)
            sets.append(_publish_manifest(session, DB_SET, "database", body))
            rows = sum(t["rows"] for t in body["tables"])
            say(f"database: {len(body['tables'])} tables, {rows} rows")
            left_out = [t["name"] for t in body["tables"] if t.get("skipped")]
            if left_out:
                say(f"rows left out (use --all to include them): {', '.join(left_out)}")
        if plan.database is None:
            _select_without_database(plan, selections)
        for name, root in plan.file_sets.items():
            say(f"indexing file set {name} in {root}")
            progress.update(force=True, step="files", set=name)
            chosen = selections.get(name)
            for note in (chosen.notes if chosen else []):
                say(note)
            skips = SkipReport(name, say)
            body = files.index(root, store.put, lambda n: progress.update(bytes=store.stored_bytes),
                               include=chosen.include if chosen else None,
                               public=chosen.public if chosen else None,
                               public_url=chosen.public_url if chosen else None,
                               on_skip=skips)
            sets.append(_publish_manifest(session, name, "files", body))
            skips.summary()
            say(f"files {name}: {len(body['entries'])} files, {body['size']} bytes"
                + (f", {len(body['skipped'])} not published (links, special or vanished files)"
                   if body["skipped"] else ""))
        store.drain()
    session.publish_meta("ready", sets=sets)
    say(f"ready: {store.count} objects, {store.stored_bytes:,} bytes (compressed and encrypted) in "
        f"{time.monotonic() - started:.1f} s")
    return sets


def _publish_part(session: Session, label: str, body: dict) -> None:
    """One part of the database (a database manifest named by its label), written before the
    meta that counts it."""
    manifest = {"format": format.FORMAT_VERSION, "name": label, "kind": "database", **body}
    object_name, blob = session.crypto.seal_manifest(label, manifest)
    session.write_object(object_name, blob)


def _publish_manifest(session: Session, name: str, kind: str, body: dict) -> dict:
    manifest = {"format": format.FORMAT_VERSION, "name": name, "kind": kind, **body}
    object_name, blob = session.crypto.seal_manifest(name, manifest)
    session.write_object(object_name, blob)
    size = body.get("size") or sum(c["size"] for t in body.get("tables", []) for c in t["chunks"])
    return {"name": name, "kind": kind, "manifest": object_name, "size": size}
