"""``synco download``: the library core behind the command (the CLI only builds the options).

1. decode the token; poll the session's meta until the server is ready (or failed);
2. fetch and open the manifests of the wanted sets; check every destination before any download;
3. download the files that differ into staging folders;
4. stream the database chunks into the engine's loader (a shadow database) or into a SQL file;
5. only then swap the database in and move the files into place.

Any failure or Ctrl-C before step 5 drops the shadow database and the staging folders, so the
local database and files stay exactly as they were.

Chunks whose plaintext hash is in the local chunk cache (``cache.py``, docs/cache.md) are read
from it instead of fetched; every chunk fetched goes into the cache as soon as it has verified, so
a pull that stops keeps what it had, and the start of a large object in flight is kept too and
continued with a ``Range`` request next time.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from synco_source import crypto, engines, format
from synco_source.dburl import DatabaseUrl
from synco_source.errors import (IntegrityError, ServerUnreachable, SessionNotFound,
                                 SourceFailed, SyncoError, UsageError)

from . import files, guard, keys, state, verify
from .cache import ChunkCache
from .fetch import MANIFEST_LIMIT, META_LIMIT, Remote, chunk_limit, ordered
from .parts import EarlyImport, joined
from .sqlfile import SqlFile
from .ui import UI

DB_SET = "db"           # the database's set name (synco_source.produce.DB_SET)
CLOCK_SKEW = 300        # seconds a meta's 'expires' may lie behind this machine's clock
PARTIAL_MIN = 1 << 20   # objects at least this large keep their received start across runs


@dataclass
class DownloadOptions:
    token: str = ""
    db_url: DatabaseUrl | None = None
    file_dirs: dict[str, Path] = field(default_factory=dict)
    only: list[str] = field(default_factory=list)
    output: Path | None = None
    poll_interval: float = 1.0
    transport: httpx.BaseTransport | None = None  # tests plug in an in-process transport
    allow_remote_target: bool = False  # replace a database on a host that is not this machine
    local_hosts: list[str] = field(default_factory=list)  # hosts the local project calls its own
    no_cache: bool = False           # neither read nor write the chunk cache
    cache_size: int | None = None    # bytes; None: the configured size, else the default
    cache_dir: Path | None = None    # None: platformdirs' user cache folder
    reload: bool = False             # import even when the local copy is provably current


@dataclass
class Summary:
    tables: int = 0
    rows: int = 0
    database: str = ""
    files_written: int = 0
    files_present: int = 0
    bytes_fetched: int = 0    # received, compressed and encrypted: from the session and the site
    previous: str = ""
    chunks_fetched: int = 0   # chunk objects received from the session
    chunks_cached: int = 0    # chunks read from the local cache instead
    unchanged: bool = False   # the local database was already what the server has: not imported


def describe_progress(meta: dict) -> str:
    progress = meta.get("progress", {})
    text = f"server is {meta['state']}"
    if progress.get("step") == "database" and progress.get("tables"):
        text += (f": table {progress.get('table')} ({progress.get('tables_done', 0) + 1}"
                 f"/{progress['tables']})")
    elif progress.get("step") == "files":
        text += f": files {progress.get('set')}"
    if progress.get("bytes"):
        text += f", {progress['bytes'] / 1e6:.1f} MB encrypted"
    return text


def get_meta(remote, sc: format.SessionCrypto) -> dict:
    """The meta, refused once its ``expires`` has passed: a replayed old meta must not keep the
    client polling (or downloading) a session the source has given up."""
    if isinstance(remote, Remote):
        blob = remote.get(format.META_PATH, limit=META_LIMIT)
    else:
        blob = remote.get(format.META_PATH)
    meta = sc.open_meta(blob)
    expires = meta.get("expires")
    if isinstance(expires, (int, float)) and time.time() > expires + CLOCK_SKEW:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(expires))
        raise SessionNotFound(f"the session expired at {when}", url=getattr(remote, "base_url", "the source"))
    return meta


def wait_ready(remote: Remote, sc: format.SessionCrypto, ui: UI, interval: float,
               early=None) -> dict:
    """The meta once the session is ready, or already while it dumps when ``early(meta)`` says
    so (the database's parts can be imported before the server is done, FORMAT.md §6.4)."""
    last_seq = 0
    with ui.status("waiting for the server") as update:
        while True:
            meta = get_meta(remote, sc)
            if meta["seq"] >= last_seq:
                last_seq = meta["seq"]
                if meta["state"] == "ready" or (early is not None and early(meta)):
                    return meta
                if meta["state"] == "failed":
                    raise SourceFailed(meta.get("message", "no reason given"))
                update(describe_progress(meta))
            time.sleep(interval)


def select_sets(meta: dict, only: list[str]) -> list[dict]:
    sets = meta.get("sets", [])
    if not only:
        return sets
    names = {s["name"] for s in sets}
    for word in only:
        if word not in ("db", "files") and word not in names:
            raise UsageError(f"--only {word}: this session has no such set",
                             hint=f"it has: db, files, {', '.join(sorted(names))}")
    return [s for s in sets if s["name"] in only
            or (s["kind"] == "files" and "files" in only)]


def interleave(tables: list[dict]) -> list[tuple[str, dict]]:
    """(table, chunk) pairs, each table's chunks in order, the tables advancing together by
    bytes: a loader that fills several tables at once (PostgreSQL's lanes) always has work for
    each of them, and a sequential loader does not mind the order."""
    queues = [(t["name"], list(reversed(t["chunks"]))) for t in tables if t["chunks"]]
    done = {name: 0 for name, _ in queues}
    items = []
    while queues:
        name, chunks = min(queues, key=lambda q: done[q[0]])
        chunk = chunks.pop()
        items.append((name, chunk))
        done[name] += chunk["size"]
        if not chunks:
            queues = [q for q in queues if q[0] != name]
    return items


def check_destinations(sets: list[dict], opts: DownloadOptions) -> None:
    for entry in sets:
        if entry["kind"] == "database" and opts.db_url is None and opts.output is None:
            raise UsageError("no local database given for the database of this session",
                             hint="pass --db-url (or set SYNCO_DB_URL), --output FILE, or --only files")
        if entry["kind"] == "files" and entry["name"] not in opts.file_dirs:
            raise UsageError(f"no local folder given for file set {entry['name']!r}",
                             hint=f"pass --files-dir {entry['name']}=PATH, or --only db")


class Download:
    """One download. ``remote`` is the session's object source (anything with ``get(path)``
    and ``close()``: HTTP or the pipe of ``synco pull``) and ``sc`` its keys; by default both
    come from the token in ``opts``."""

    def __init__(self, opts: DownloadOptions, ui: UI, *, remote=None,
                 sc: format.SessionCrypto | None = None) -> None:
        self.opts = opts
        self.ui = ui
        if remote is None or sc is None:
            token = format.Token.decode(opts.token)
            remote = Remote(token.url, transport=opts.transport)
            try:
                sc = keys.token_crypto(token, remote)  # version 2: unwrapped with our key
            except BaseException:
                remote.close()
                raise
            remote.unlock(sc.key, sc.session_id)  # a bucket's SSE-C objects (FORMAT.md §12)
        self.sc = sc
        self.session_hex = sc.session_id.hex()
        self.remote = remote
        self.summary = Summary()
        self.lock = threading.Lock()
        self.on_fetched = lambda n: None
        self.public: dict[str, Remote] = {}
        self.cache = None if opts.no_cache else ChunkCache(opts.cache_dir, max_size=opts.cache_size,
                                                           warn=ui.warn)
        self.unchanged: verify.Unchanged | None = None  # while the import may be left out
        self.kept = ""  # where the swap keeps the database it replaces

    # ------------------------------------------------------------ objects

    def _get(self, path: str, offset: int = 0, limit: int | None = None, sink=None) -> bytes:
        """``remote.get``, with the size limit and the sink where the remote takes them (HTTP);
        another object source (the pipe) has only ``get(path, offset)``."""
        if isinstance(self.remote, Remote):
            return self.remote.get(path, offset, limit=limit, sink=sink)
        data = self.remote.get(path, offset) if offset else self.remote.get(path)
        if limit is not None and offset + len(data) > limit:
            raise IntegrityError(f"the source sent more than {limit:,} bytes for {path}")
        return data

    def _object(self, name: str, what: str, offset: int = 0, limit: int | None = None,
                sink=None) -> bytes:
        """Object ``o/<name>``. A 404 for it while the meta still answers is one missing object
        (an incomplete session), not a session that is gone."""
        try:
            return self._get(format.object_path(name), offset, limit, sink)
        except SessionNotFound:
            get_meta(self.remote, self.sc)  # raises SessionNotFound itself if the session is gone
            raise IntegrityError(f"the session lacks object {name[:12]} ({what}) that it lists",
                                 hint="the session on the server is incomplete; run synco-source "
                                      "again and use the new token") from None

    def fetch_chunk(self, chunk: dict) -> bytes:
        if self.cache is not None:
            plain = self.cache.get(chunk["sha256"], chunk["size"])
            if plain is not None:
                with self.lock:
                    self.summary.chunks_cached += 1
                self.on_fetched(len(plain))
                return plain
        partial = None
        if self.cache is not None and chunk["size"] >= PARTIAL_MIN:
            partial = self.cache.partial(chunk["id"], self.session_hex)
        try:
            plain, packed = self._receive(chunk, partial)
        finally:
            if partial is not None:
                partial.close()
        if self.cache is not None:
            self.cache.put(chunk["sha256"], plain, packed)
        if partial is not None:
            partial.done()
        with self.lock:
            self.summary.chunks_fetched += 1
        self.on_fetched(len(plain))
        return plain

    def _receive(self, chunk: dict, partial) -> tuple[bytes, bytes | None]:
        """Fetch and open one chunk, continuing a kept partial body; a kept start that does not
        open (damaged, or from an object that was not this one) is dropped and the whole object
        fetched again."""
        limit = chunk_limit(chunk["size"])
        what = f"chunk {chunk['id'][:12]}"
        start = partial.read() if partial is not None else b""
        if len(start) > limit:
            partial.reset()
            start = b""
        sink = partial.append if partial is not None else None
        rest = self._object(chunk["id"], what, len(start), limit, sink)
        try:
            return self._open_chunk(chunk, start + rest)
        except IntegrityError:
            if not start:
                raise
        partial.reset()
        blob = self._object(chunk["id"], what, 0, limit, partial.append)
        return self._open_chunk(chunk, blob)

    def _open_chunk(self, chunk: dict, blob: bytes) -> tuple[bytes, bytes | None]:
        """Open and check a chunk like ``SessionCrypto.open_chunk``, also returning the sealed
        body when it is a Zstandard frame: the cache stores that as it is."""
        name, size = chunk["id"], chunk["size"]
        what = f"chunk {name[:12]}"
        compression, body = crypto.open_(self.sc.key, self.sc.session_id, crypto.ROLE_CHUNK, name,
                                         blob, what)
        packed = body if compression == crypto.COMPRESS_ZSTD else None
        plain = format.decompress(body, size, what) if packed is not None else body
        if len(plain) != size or hashlib.sha256(plain).hexdigest() != chunk["sha256"]:
            raise IntegrityError(f"{what} does not match its manifest entry")
        return plain, packed

    def manifest(self, entry: dict) -> dict:
        blob = self._object(entry["manifest"], f"manifest of {entry['name']!r}",
                            limit=MANIFEST_LIMIT)
        return self.sc.open_manifest(entry["manifest"], blob, entry["name"], entry["kind"])

    def _announce(self, database: dict | None, plans: list[files.FileSetPlan],
                  seen: dict[str, bool]) -> None:
        """Say how much the cache already has: "1,012 of 1,065 chunks cached, 21 MB to fetch of
        423 MB"; ``seen`` tells for the chunks of tables imported already whether the cache had
        them before they were fetched."""
        chunks = {}
        if database:
            for table in database["tables"]:
                for chunk in table["chunks"]:
                    chunks[chunk["sha256"]] = chunk["size"]
        for plan in plans:
            for entry in plan.needed:
                for chunk in entry.get("chunks", []):
                    chunks[chunk["sha256"]] = chunk["size"]
        if self.cache is None or not chunks:
            return
        if database:
            self.cache.note_database_size(sum(chunks.values()))
        cached = [sha for sha in chunks if (seen[sha] if sha in seen else self.cache.has(sha))]
        total = sum(chunks.values())
        missing = total - sum(chunks[sha] for sha in cached)
        self.ui.info(f"{len(cached):,} of {len(chunks):,} chunks cached, {_mb(missing)} to fetch "
                     f"of {_mb(total)} (sizes before compression)")

    def _streams(self, meta: dict) -> bool:
        """Whether to import the database's parts while the server still dumps: it publishes
        them, the database is wanted, and there is somewhere to put it."""
        wanted = not self.opts.only or DB_SET in self.opts.only
        return (wanted and (self.opts.db_url is not None or self.opts.output is not None)
                and format.published_parts(meta) is not None)

    def run(self) -> Summary:
        with self.remote:
            meta = wait_ready(self.remote, self.sc, self.ui, self.opts.poll_interval,
                              early=self._streams)
            early = None  # the database imported while the server dumped: target, tables
            try:
                if meta["state"] != "ready":
                    early = self._stream(meta)
                    meta = early.meta
                sets = select_sets(meta, self.opts.only)
                check_destinations(sets, self.opts)
                for folder in self.opts.file_dirs.values():
                    for leftover in files.sweep(folder):
                        self.ui.info(f"removed {leftover}, left behind by an earlier run that was stopped")
                self._owed_files(sets)
                manifests = [(s, self.manifest(s)) for s in sets]
                database = next((m for s, m in manifests if s["kind"] == "database"), None)
                plans = [files.plan(s["name"], m, self.opts.file_dirs[s["name"]])
                         for s, m in manifests if s["kind"] == "files"]
                rest = None  # with early: the tables (and rest of a table) still to load
                if early is not None:
                    rest = early.check(database)
                    target = early.target
                else:
                    target = self._open_target(database) if database else None
                if self.unchanged is not None and database is not None:
                    if self._still_unchanged(database):
                        target.close()
                        target, database = None, None
                    elif early is not None:  # nothing of it was loaded while the server dumped
                        target.begin(database["schema"])
                        rest = database["tables"]
            except BaseException:
                if early is not None:
                    self._abort(early.target)
                raise
            try:
                self._announce(database, plans, early.seen if early else {})
                self._transfer(database, target, plans, rest)
                self._say_done()
                # every byte the session sent (meta, key, manifests, parts, chunks): the server's
                # line for this download counts the same
                self.summary.bytes_fetched += getattr(self.remote, "received", 0)
            finally:
                for remote in self.public.values():
                    remote.close()
                if self.cache is not None:
                    self.cache.evict()
        return self.summary

    def _say_done(self) -> None:
        """Tell the session's listener that this download is complete (FORMAT.md §7, optional:
        ``serve --once`` then ends). One short request, no retry, any answer or none is fine."""
        if isinstance(self.remote, Remote) and not self.remote.presigned:  # not to a bucket
            try:
                self.remote.client.get(format.META_PATH + "?done", timeout=2.0)
            except httpx.HTTPError:
                pass

    def _open_target(self, manifest: dict):
        """The loader (or SQL writer) for the database, after asking before replacing one."""
        if self.opts.output is not None:
            return SqlFile(self.opts.output, manifest["engine"])
        url = self.opts.db_url
        if url.engine != manifest["engine"]:
            raise UsageError(f"the session holds a {manifest['engine']} database but --db-url "
                             f"is {url.engine}", hint=f"give a {manifest['engine']} URL")
        guard.check_target(url, allow=self.opts.allow_remote_target, local_hosts=self.opts.local_hosts)
        loader = engines.loader(url)
        count = loader.describe_target()
        for note in getattr(loader, "notes", None) or []:  # a killed run's leftovers, cleaned up
            self.ui.info(note)
        if count:
            self.ui.confirm(f"replace database {url.database} ({count} tables) on "
                            f"{loader.url.redacted}? "
                            f"the current one is kept for 'synco restore'",
                            "pass --yes to replace it without asking")
            self.kept = loader.prev
        if count and not self.opts.reload:
            self.unchanged = verify.Unchanged.start(url, manifest["schema"])
        return loader

    def _still_unchanged(self, database: dict) -> bool:
        """Whether the import can be left out (verify.Unchanged): the server's tables are the ones
        last imported, and the local ones still are too."""
        evidence, self.unchanged = self.unchanged, None
        if not evidence.matches(database["tables"]):
            return False
        name = self.opts.db_url.database
        self.ui.info(f"the server's database is what the last pull imported into {name}; "
                     "checking that the local copy was not changed since")
        same, took = evidence.data_unchanged()
        if not same:
            self.ui.info(f"the local database {name} was changed since the last pull "
                         f"(checked in {took:.1f} s): importing it again")
            return False
        self.ui.info(f"database {name} is already what the server has (all "
                     f"{len(database['tables'])} tables checked in {took:.1f} s): nothing to import")
        self.summary.unchanged = True
        self._summarize(database)
        return True

    def _transfer(self, database: dict | None, target, plans: list[files.FileSetPlan],
                  rest: list[dict] | None = None) -> None:
        """Fetch and put in place. With ``rest``, the target has begun and holds all the
        database but ``rest`` already (imported while the server dumped)."""
        stagings = [files.Staging(p, self.session_hex) for p in plans]
        tables = database["tables"] if database and rest is None else rest or []
        db_bytes = sum(c["size"] for t in tables for c in t["chunks"])
        total = db_bytes + sum(p.needed_bytes for p in plans)
        with self.ui.progress() as bars:
            fetched = bars.add_task("download", total=total)
            self.on_fetched = lambda n: bars.advance(fetched, n)
            for staging in stagings:
                staging.__enter__()
            try:
                for staging in stagings:
                    self._stage_files(staging)
                    self.ui.will_change(f"the files of set {staging.plan.name!r}")
                if database:
                    imported = bars.add_task("import", total=db_bytes)
                    self._load(database, target, lambda n: bars.advance(imported, n), rest)
                    if self.opts.output is None:  # a kill between swap and files leaves a note
                        for staging in stagings:
                            state.owe_files(staging.plan.root, self.opts.db_url.database)
                    target.commit()
                    self.summary.previous = self.kept
                    prints = getattr(target, "fingerprint", None)  # taken before the swap
                    target = None
                    self.ui.did_change("the database", f"the SQL file {self.opts.output} was written"
                                       if self.opts.output is not None else
                                       f"the database {self.opts.db_url.database} was replaced")
                    self._record_import(database, prints)
                for staging in stagings:
                    self._commit_files(staging)
            finally:
                if target is not None:
                    self._abort(target)
                for staging in stagings:
                    staging.__exit__(None, None, None)
        for plan in plans:
            self.summary.files_written += len(plan.needed)
            self.summary.files_present += len(plan.present)

    def _owed_files(self, sets: list[dict]) -> None:
        """Say when an earlier run replaced the database but was stopped before it put the files
        of a folder in place: this run brings them (its plan compares every file), unless the
        folder's set is left out."""
        chosen = {s["name"] for s in sets if s["kind"] == "files"}
        for name, folder in self.opts.file_dirs.items():
            note = state.owed_files(folder)
            if note is None:
                continue
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(note["since"]))
            text = (f"the run of {when} stopped after it replaced the database {note['database']} "
                    f"and before it put the files of {folder} in place")
            if name in chosen:
                self.ui.info(f"{text}; this run brings them up to date")
            else:
                self.ui.warn(f"{text}; sync them too (leave out --only)")

    def _commit_files(self, staging: files.Staging) -> None:
        """Move a set's staged files into place, telling the UI what changed (also how far a
        failure or Ctrl-C got), so that no message claims "nothing was changed" after it."""
        what = f"the files of set {staging.plan.name!r}"
        try:
            staging.commit()
        except BaseException:
            if staging.committed:
                self.ui.did_change(what, f"{staging.committed} of {len(staging.staged)} new files "
                                         f"of set {staging.plan.name!r} were put in place")
                self.ui.will_change(what)
            raise
        state.files_paid(staging.plan.root)
        if staging.staged:
            self.ui.did_change(what, f"{what} were updated")
        elif what in self.ui.pending:
            self.ui.pending.remove(what)

    def _record_import(self, database: dict, prints: dict | None = None) -> None:
        """Fingerprint the database just swapped in, for synco verify (synco/verify.py), unless
        the loader took it already (``prints``); a failure only costs the record."""
        if self.opts.output is not None:
            return
        from . import verify

        try:
            verify.record_import(self.opts.db_url, database, prints=prints)
        except (SyncoError, OSError) as exc:
            self.ui.warn(f"could not record the imported tables for 'synco verify': {exc}")

    def _abort(self, target) -> None:
        """Undo the unfinished import; a failure here must not hide the reason we stopped."""
        try:
            target.abort()
        except SyncoError as exc:
            self.ui.warn(f"could not clean up after the failed import: {exc}")

    def _stage_files(self, staging: files.Staging) -> None:
        """Fetch the set's missing files: chunks from the session, public files from the
        application's own web server (checked against the manifest's size and SHA-256)."""
        needed = staging.plan.needed
        items = [piece for e in needed
                 for piece in ([("public", e, staging.plan.public_url)] if "url" in e
                               else [("chunk", c, None) for c in e["chunks"]])]
        results = ordered(items, self._fetch_piece)
        for entry in needed:
            count = 1 if "url" in entry else len(entry["chunks"])
            staging.write(entry, (next(results)[1] for _ in range(count)))

    def _fetch_piece(self, item: tuple) -> bytes:
        kind, what, public_url = item
        if kind == "chunk":
            return self.fetch_chunk(what)
        with self.lock:
            if public_url not in self.public:
                self.public[public_url] = Remote(public_url, transport=self.opts.transport)
            remote = self.public[public_url]
        try:
            data = remote.get(what["url"], limit=what["size"])
        except SessionNotFound:
            raise ServerUnreachable(f"public file {what['path']} is not at {public_url}"
                                    f"{what['url']} (HTTP 404)", url=public_url,
                                    hint="publish the resources on the server (e.g. ./flow "
                                         "resource:publish) and run again") from None
        if len(data) != what["size"]:
            raise IntegrityError(f"public file {what['path']} from {public_url} has "
                                 f"{len(data)} bytes, the manifest says {what['size']}")
        with self.lock:
            self.summary.bytes_fetched += len(data)
        self.on_fetched(len(data))
        return data

    def _load(self, manifest: dict, target, advance, rest: list[dict] | None = None) -> None:
        if rest is None:
            target.begin(manifest["schema"])
        self._load_tables(manifest["tables"] if rest is None else rest, target, advance)
        self._summarize(manifest)

    def _summarize(self, manifest: dict) -> None:
        """The summary's database lines: what the local database (or SQL file) now holds."""
        self.summary.tables = len(manifest["tables"])
        self.summary.rows = sum(t["rows"] for t in manifest["tables"])
        self.summary.database = str(self.opts.output or self.opts.db_url.database)


    def _load_tables(self, tables: list[dict], target, advance) -> None:
        items = interleave(tables)
        for (table, chunk), plain in ordered(items, lambda item: self.fetch_chunk(item[1])):
            target.load(table, plain)
            advance(len(plain))

    # ------------------------------------------------------------ import while the server dumps

    def _part(self, label: str, table: bool) -> dict:
        name = self.sc.manifest_name(label)
        blob = self._object(name, f"part {label!r}", limit=MANIFEST_LIMIT)
        return self.sc.open_part(name, blob, label, table)

    def _stream(self, meta: dict) -> "EarlyImport":
        """Import the database's tables as the server publishes their parts (FORMAT.md §6.4),
        until its meta says ready; what was loaded is checked against the full manifest then."""
        head = self._part(format.schema_part_label(DB_SET), table=False)
        early = EarlyImport(self._open_target(head), head)
        try:
            if self.unchanged is None:  # else the import waits until a table is seen to differ
                early.target.begin(head["schema"])
            self._stream_tables(early, meta)
        except BaseException:
            self._abort(early.target)
            raise
        return early

    def _stream_tables(self, early: "EarlyImport", meta: dict) -> None:
        last_seq = meta["seq"]
        with self.ui.progress() as bars:
            total = 0
            fetched = bars.add_task("download", total=total)
            imported = bars.add_task("import", total=total)
            self.on_fetched = lambda n: bars.advance(fetched, n)
            while True:
                if meta["state"] == "ready":
                    early.meta = meta
                    return
                if meta["state"] == "failed":
                    raise SourceFailed(meta.get("message", "no reason given"))
                count = format.published_parts(meta)
                if count is None or count < early.parts:
                    raise IntegrityError("the session's meta took back parts of the database it "
                                         "had published", hint="run synco-source again")
                if count > early.parts:
                    numbers = range(early.parts + 1, count + 1)
                    parts = ordered(numbers, lambda n: self._part(
                        format.table_part_label(DB_SET, n), table=True))
                    batch = joined([early.add(part) for _, part in parts])
                    self._note_cached(batch, early.seen)
                    if self.unchanged is not None and not self.unchanged.matches(early.tables, complete=False):
                        self.unchanged = None  # a table differs: import after all, all of it so far
                        early.target.begin(early.head["schema"])
                        batch = early.tables
                    if self.unchanged is None:
                        total += sum(c["size"] for t in batch for c in t["chunks"])
                        for task in (fetched, imported):
                            bars.update(task, total=total)
                        self._load_tables(batch, early.target, lambda n: bars.advance(imported, n))
                else:
                    time.sleep(self.opts.poll_interval)
                while True:
                    newer = get_meta(self.remote, self.sc)
                    if newer["seq"] >= last_seq:
                        break
                    time.sleep(self.opts.poll_interval)
                meta, last_seq = newer, newer["seq"]

    def _note_cached(self, tables: list[dict], seen: dict[str, bool]) -> None:
        """Remember, before fetching, which chunks the cache had (for the announcement)."""
        if self.cache is None:
            return
        for table in tables:
            for chunk in table["chunks"]:
                if chunk["sha256"] not in seen:
                    seen[chunk["sha256"]] = self.cache.has(chunk["sha256"])


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 10e6 else f"{n / 1e6:.1f} MB"


def download(opts: DownloadOptions, ui: UI) -> Summary:
    return Download(opts, ui).run()
