"""Importing the database while the server still dumps (docs/FORMAT.md §6.4): the source
publishes the schema and then each table as a part, the client loads them as they appear and
checks them against the full manifest once the session is ready."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from dbfixtures import mysql_fingerprint, url_text
from e2e import databases, make_local, make_shop
from pgfixtures import pg_fingerprint
from sourceproc import Source
from synco.download import Download, DownloadOptions, get_meta
from synco.ui import UI
from synco_source import crypto, engines, format, produce as produce_module
from synco_source.errors import IntegrityError
from synco_source.produce import PAUSE_ENV, Plan, produce
from synco_source.session import Session

BASE = "http://synco.test/"


class QuietUI(UI):
    def __init__(self) -> None:
        super().__init__(assume_yes=True, quiet=True)
        self.infos: list[str] = []

    def info(self, message: str) -> None:
        self.infos.append(message)


class Watched:
    """A loader that asks the session for its state when the first table arrives."""

    def __init__(self, inner, box: dict) -> None:
        self.inner, self.box = inner, box

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def load(self, table: str, chunk: bytes) -> None:
        if "first" not in self.box:
            download = self.box["download"]
            self.box["first"] = (table, get_meta(download.remote, download.sc)["state"])
        self.inner.load(table, chunk)


def test_client_loads_tables_before_the_server_is_ready(mysql_db, monkeypatch):
    src, dst = mysql_db("src"), mysql_db("dst", create=False)
    make_shop(src)
    monkeypatch.setenv(PAUSE_ENV, "0.7")  # the source waits after each table's part
    box: dict = {}
    real = engines.loader
    monkeypatch.setattr(engines, "loader", lambda url: Watched(real(url), box))
    with Source(["--listen", "127.0.0.1:0"], db_url=url_text(src)) as source:
        box["download"] = Download(DownloadOptions(token=source.token, db_url=dst,
                                                   poll_interval=0.1), QuietUI())
        summary = box["download"].run()
    assert box["first"][1] == "dumping", box
    assert summary.tables >= 3 and summary.rows > 20000
    assert mysql_fingerprint(dst) == mysql_fingerprint(src)


def test_postgresql_lanes_take_tables_as_they_come(chinook_pg, pg_db, monkeypatch):
    """The lanes get one table at a time while the server dumps; the copy is still whole."""
    dst = pg_db("dst", create=False)
    monkeypatch.setenv(PAUSE_ENV, "0.2")
    box: dict = {}
    real = engines.loader
    monkeypatch.setattr(engines, "loader", lambda url: Watched(real(url), box))
    with Source(["--listen", "127.0.0.1:0"], db_url=url_text(chinook_pg)) as source:
        box["download"] = Download(DownloadOptions(token=source.token, db_url=dst,
                                                   poll_interval=0.1), QuietUI())
        box["download"].run()
    assert box["first"][1] == "dumping", box
    assert pg_fingerprint(dst) == pg_fingerprint(chinook_pg)


# ---------------------------------------------------------------- a session whose meta we script

class Scripted:
    """An httpx transport serving a finished session folder, but answering ``meta`` first with
    the given earlier metas (one per request, the last one repeated ``hold`` times), then with
    the ready one."""

    def __init__(self, folder: Path, session: Session, early: list[dict], hold: int = 3) -> None:
        self.folder, self.session = folder, session
        ready = session.crypto.open_meta((folder / "meta").read_bytes())
        seq = ready["seq"] + 10
        base = {k: v for k, v in ready.items() if k != "sets"}
        self.blobs = [session.crypto.seal_meta({**base, **m, "seq": seq}) for m in early]
        self.blobs += [self.blobs[-1]] * hold
        self.ready = session.crypto.seal_meta({**ready, "seq": seq + 1})
        self.metas = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        rel = request.url.path.split(f"/{self.session.id_hex}/", 1)[1]
        if rel == "meta":
            self.metas += 1
            blob = self.blobs[self.metas - 1] if self.metas <= len(self.blobs) else self.ready
            return httpx.Response(200, content=blob)
        path = self.folder / rel
        if not path.is_file():
            return httpx.Response(404)
        return httpx.Response(200, content=path.read_bytes())


def published(tmp_path: Path, src) -> tuple[Session, Path]:
    session = Session(tmp_path / "pub", BASE, ttl=3600)
    produce(session, Plan(database=src), lambda line: None)
    return session, session.folder


def run(session: Session, transport, dst) -> Download:
    opts = DownloadOptions(token=session.token.encode(), db_url=dst, poll_interval=0.02,
                           transport=httpx.MockTransport(transport), no_cache=True)
    download = Download(opts, QuietUI())
    download.run()
    return download


def early_meta(parts: int | None) -> dict:
    """A ``dumping`` meta: with ``parts``, or (None) as an older source writes it."""
    progress = {"step": "database"} if parts is None else {"step": "database", "parts": parts}
    return {"state": "dumping", "progress": progress}


@pytest.mark.parametrize("counts", [[0, 1, 2], [0]])
def test_parts_then_ready_load_the_same_database(counts, mysql_db, tmp_path):
    """Some tables from parts and the rest from the full manifest; or (ready right after the
    schema part) every table from the full manifest, into the import begun early."""
    src, dst = mysql_db("src"), mysql_db("dst", create=False)
    make_shop(src)
    session, folder = published(tmp_path, src)
    transport = Scripted(folder, session, [early_meta(n) for n in counts])
    download = run(session, transport, dst)
    assert mysql_fingerprint(dst) == mysql_fingerprint(src)
    assert download.summary.rows > 20000


def test_a_table_in_several_parts_partly_loaded_when_ready(mysql_db, tmp_path, monkeypatch):
    """A part per chunk; the session turns ready while table customer is half imported: the
    rest of its chunks come from the full manifest."""
    monkeypatch.setattr(produce_module, "PART_BYTES", 1)
    src, dst = mysql_db("src"), mysql_db("dst", create=False)
    make_shop(src)
    session, folder = published(tmp_path, src)
    names, number = [], 1
    while (folder / "o" / session.crypto.manifest_name(format.table_part_label("db", number))).exists():
        label = format.table_part_label("db", number)
        name = session.crypto.manifest_name(label)
        names.append(session.crypto.open_part(name, (folder / "o" / name).read_bytes(), label,
                                              True)["tables"][0]["name"])
        number += 1
    assert names.count("customer") >= 3, names
    half = names.index("customer") + 2  # two of customer's parts, not all
    transport = Scripted(folder, session, [early_meta(n) for n in range(half + 1)])
    run(session, transport, dst)
    assert mysql_fingerprint(dst) == mysql_fingerprint(src)


def test_parts_that_the_full_manifest_contradicts_abort_with_nothing_changed(
        mysql_db, mysql_server, tmp_path):
    src, dst = mysql_db("src"), mysql_db("dst")
    make_shop(src)
    make_local(dst)
    before = mysql_fingerprint(dst)
    session, folder = published(tmp_path, src)
    # the part of table customer is resealed without the first chunk the full manifest lists
    for number in range(1, 10):
        label = format.table_part_label("db", number)
        name = session.crypto.manifest_name(label)
        part = session.crypto.open_part(name, (folder / "o" / name).read_bytes(), label, True)
        if part["tables"][0]["name"] == "customer":
            break
    assert len(part["tables"][0]["chunks"]) > 1
    part["tables"][0]["chunks"].pop(0)
    (folder / "o" / name).write_bytes(session.crypto.seal_json(crypto.ROLE_MANIFEST, name, part))
    transport = Scripted(folder, session, [early_meta(number)])
    with pytest.raises(IntegrityError, match="does not match the parts"):
        run(session, transport, dst)
    assert mysql_fingerprint(dst) == before
    assert not [d for d in databases(mysql_server) if d.startswith(dst.database + "__")]


def test_a_session_without_parts_is_read_once_ready(mysql_db, tmp_path):
    src, dst = mysql_db("src"), mysql_db("dst", create=False)
    make_shop(src)
    session, folder = published(tmp_path, src)
    for path in (folder / "o").iterdir():  # an older source: no parts at all
        if path.name in {session.crypto.manifest_name(format.schema_part_label("db"))} | {
                session.crypto.manifest_name(format.table_part_label("db", n)) for n in range(1, 20)}:
            path.unlink()
    transport = Scripted(folder, session, [early_meta(None)])
    run(session, transport, dst)
    assert transport.metas > 3
    assert mysql_fingerprint(dst) == mysql_fingerprint(src)


# ---------------------------------------------------------------- the strict reader

def sc() -> format.SessionCrypto:
    return format.SessionCrypto(bytes(32), bytes(16))


def part(label: str, tables: list, schema: dict | None = None) -> dict:
    return {"format": 1, "name": label, "kind": "database", "engine": "mysql", "database": "d",
            "schema": schema if schema is not None else {}, "tables": tables}


TABLE = {"name": "t", "rows": 0, "chunks": []}


@pytest.mark.parametrize("label,table,doc,problem", [
    ("db#1", True, part("db#1", [TABLE, TABLE]), "one table"),
    ("db#1", True, part("db#1", [TABLE], {"tables": []}), "one table"),
    ("db#1", True, part("db#1", []), "one table"),
    ("db#schema", False, part("db#schema", [TABLE], {"x": 1}), "lists tables"),
    ("db#2", True, part("db#1", [TABLE]), "names another set"),
])
def test_malformed_parts_are_refused(label, table, doc, problem):
    s = sc()
    name = s.manifest_name(label)
    blob = s.seal_json(crypto.ROLE_MANIFEST, name, doc)
    with pytest.raises(IntegrityError, match=problem):
        s.open_part(name, blob, label, table)
    good = part(label, [TABLE]) if table else part(label, [], {"x": 1})
    assert s.open_part(name, s.seal_json(crypto.ROLE_MANIFEST, name, good), label, table) == good


@pytest.mark.parametrize("value", [-1, 1.0, True, "3"])
def test_a_bad_count_of_parts_is_refused(value):
    meta = {"state": "dumping", "progress": {"parts": value}}
    with pytest.raises(IntegrityError, match="progress.parts"):
        format.published_parts(meta)
    assert format.published_parts({"state": "dumping", "progress": {"parts": 2}}) == 2
    assert format.published_parts({"state": "dumping", "progress": {}}) is None
    assert format.published_parts({"state": "ready"}) is None
