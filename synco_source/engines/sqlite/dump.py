"""The dump side: one read-only connection in one read transaction (a snapshot of a live file)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator

from ...dburl import DatabaseUrl
from ...errors import DatabaseError
from .sql import (Text, check_file, close_quietly, connect, failing, literal, qi, raw_name, rows,
                  table_name, text)

# the order the objects after the rows are created in (each kind in the source's order)
POST_KINDS = ("index", "view", "trigger")
INTERNAL = "sqlite_"  # sqlite_sequence, sqlite_stat1 … (sqlite_sequence is copied as "sequences")
UTF16 = {"UTF-16le": "utf-16-le", "UTF-16be": "utf-16-be"}


def read_schema(conn: sqlite3.Connection, where: str) -> dict:
    """Everything but the rows, in the order the loader creates it; refuses (one message naming
    every offender) what cannot be copied."""
    objects = [(text(t), text(n), text(s)) for t, n, s in
               rows(conn, "SELECT type, name, sql FROM sqlite_master ORDER BY rowid")]
    virtual = sorted(n for t, n, s in objects if t == "table" and s and s.upper().startswith("CREATE VIRTUAL"))
    if virtual:
        raise DatabaseError(f"{where} has virtual tables, which synco does not copy: "
                            + ", ".join(table_name(n) for n in virtual),
                            hint="drop them, or copy that database another way (see docs/sqlite.md); "
                                 "nothing was published")
    pragma = {name: rows(conn, f"PRAGMA {name}")[0][0] for name in
              ("encoding", "page_size", "auto_vacuum", "user_version", "application_id", "journal_mode")}
    tables = []
    for kind, name, sql in sorted(o for o in objects if o[0] == "table" and not o[1].startswith(INTERNAL)):
        tables.append({"name": table_name(name), "sql": sql, **_layout(conn, name)})
    post = [{"kind": kind, "name": name, "sql": sql}
            for want in POST_KINDS for kind, name, sql in objects if kind == want and sql]
    sequences = []
    if any(n == "sqlite_sequence" for _, n, _ in objects):
        sequences = sorted([text(n), s] for n, s in rows(conn, "SELECT name, seq FROM sqlite_sequence"))
    return {"engine": "sqlite", "server_version": sqlite3.sqlite_version,
            "encoding": text(pragma["encoding"]), "page_size": pragma["page_size"],
            "auto_vacuum": pragma["auto_vacuum"], "user_version": pragma["user_version"],
            "application_id": pragma["application_id"], "wal": text(pragma["journal_mode"]).lower() == "wal",
            "tables": tables, "post": post, "sequences": sequences}


def _layout(conn: sqlite3.Connection, name: str) -> dict:
    """The columns a row is read and written with (generated ones left out), the hidden rowid's
    name when the table has one of its own (not an INTEGER PRIMARY KEY), and the row order."""
    info = rows(conn, f"SELECT name, pk, hidden FROM pragma_table_xinfo({_sl(name)}) ORDER BY cid")
    columns = [text(n) for n, pk, hidden in info if hidden == 0]
    every = {text(n).lower() for n, _, _ in info}
    keys = [text(n) for n, pk, _ in sorted((i for i in info if i[1]), key=lambda i: i[1])]
    alias = ""
    for candidate in ("rowid", "_rowid_", "oid"):
        if candidate in every:
            continue
        try:
            conn.execute(f"SELECT {candidate} FROM {qi(name)} LIMIT 0")
        except sqlite3.OperationalError:  # WITHOUT ROWID
            break
        alias = candidate
        break
    pk_index = any(text(origin) == "pk" for *_, origin, _ in
                   rows(conn, f"SELECT seq, name, \"unique\", origin, partial FROM pragma_index_list({_sl(name)})"))
    integer_pk = bool(alias) and len(keys) == 1 and not pk_index
    if alias:
        order = [alias]
    elif keys:
        order = [qi(k) for k in keys]
    else:  # a rowid table whose rowid, _rowid_ and oid are all column names: every column
        order = [qi(c) for c in columns]
    return {"columns": columns, "rowid": "" if integer_pk or not alias else alias, "order": order}


def _sl(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def column_list(table: dict) -> str:
    return ", ".join(([table["rowid"]] if table["rowid"] else []) + [qi(c) for c in table["columns"]])


def insert_head(table: dict) -> bytes:
    """What a chunk of ``table`` starts with; its records follow, separated by ",\\n"."""
    return f"INSERT INTO {qi(raw_name(table['name']))} ({column_list(table)}) VALUES\n".encode()


class Dumper:
    """``with Dumper(url) as d:`` a read-only connection holding one read transaction: every read
    sees the file as it was at the first one, while others go on writing (WAL mode) or wait for
    their commit until the dump ends (rollback-journal mode; docs/sqlite.md)."""

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self.path = url.database
        self.conn: sqlite3.Connection | None = None
        self._schema: dict | None = None
        self.utf16 = ""

    def __enter__(self) -> "Dumper":
        check_file(self.path)
        self.conn = connect(self.path, existing=True)
        try:
            with failing(f"cannot start a consistent snapshot of {self.url.redacted}"):
                self.conn.execute("PRAGMA query_only = ON")
                self.conn.execute("BEGIN")
                # the read transaction (and its snapshot) starts with the first read
                self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                self.utf16 = UTF16.get(text(rows(self.conn, "PRAGMA encoding")[0][0]), "")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        close_quietly(self.conn)
        self.conn = None

    def schema(self) -> dict:
        if self._schema is None:
            with failing(f"cannot read the schema of {self.url.redacted}"):
                self._schema = read_schema(self.conn, self.url.redacted)
        return {**self._schema, "tables": [{k: v for k, v in t.items() if k != "order"}
                                           for t in self._schema["tables"]]}

    def _table(self, name: str) -> dict:
        self.schema()
        for table in self._schema["tables"]:
            if table["name"] == name:
                return table
        raise DatabaseError(f"table {name} does not exist in {self.url.redacted}")

    def tables(self) -> list[str]:
        self.schema()
        return [t["name"] for t in self._schema["tables"]]

    def rows(self, table: str) -> Iterator[bytes]:
        """One record per row: ``(literal, …)`` in key (rowid) order, every value as an SQL literal
        of its own storage class (sql.literal), so the same row always gives the same bytes."""
        info = self._table(table)
        sql = (f"SELECT {column_list(info)} FROM {qi(raw_name(table))} "
               f"ORDER BY {', '.join(info['order'])}")
        utf16 = self.utf16
        with failing(f"cannot read the rows of table {table}"):
            cursor = self.conn.execute(sql)
            while True:
                batch = cursor.fetchmany(1000)
                if not batch:
                    break
                for row in batch:
                    yield ("(" + ",".join([literal(v, utf16) for v in row]) + ")").encode()

    def encode_chunk(self, table: str, rows: Iterable[bytes]) -> bytes:
        """One INSERT statement: the records, in order."""
        return insert_head(self._table(table)) + b",\n".join(rows) + b";\n"

    def select(self, sql: str) -> list[tuple]:
        """Run a query in the snapshot (for framework plugins choosing files); TEXT as str."""
        with failing(f"cannot query {self.url.redacted}"):
            return [tuple(text(v) if isinstance(v, Text) else v for v in row)
                    for row in self.conn.execute(sql).fetchall()]
