"""The dump side: one connection, one consistent snapshot, rows as SQL tuple literals."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pymysql
import pymysql.cursors

from ...dburl import DatabaseUrl
from ...errors import DatabaseError
from . import catalog
from .sql import (LOB_TYPES, column_piece, connect, failing, lob_literal, qi, query,
                  resolve_localhost)

STATEMENT_BYTES = 1 << 20  # a new INSERT starts once the current one has passed this size
GROUP_BYTES = 1 << 20  # bound on the possible size of one server-side CONCAT (< max_allowed_packet)
SESSION = ("SET SESSION sql_mode = ''", "SET SESSION time_zone = '+00:00'",
           "SET SESSION net_write_timeout = 3600", "SET SESSION max_sort_length = 8388608",
           "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")


class TablePlan:
    """How to SELECT one table: the expressions, which of them are raw LOBs, the ORDER BY."""

    def __init__(self, table: str, cols: list[dict], key: list[str] | None, shape=None) -> None:
        """``shape``: the privacy rules' (synco_source.anonymize.Shape): literal expressions of
        anonymized columns, and the condition of the rows kept."""
        self.table = table
        self.columns = [c for c in cols if not c["generated"]]
        self.lob_charsets: list[tuple[bool, str | None]] = []
        self.fakes = shape.columns if shape is not None else {}
        exprs = self._expressions()
        order = ", ".join(qi(k) for k in key) if key else ", ".join(str(i + 1) for i in range(len(exprs)))
        where = f" WHERE {shape.where}" if shape is not None and shape.where else ""
        self.select = f"SELECT {', '.join(exprs)} FROM {qi(table)}{where} ORDER BY {order}"
        names = ",".join(qi(c["name"]) for c in self.columns)
        self.insert = f"INSERT INTO {qi(table)} ({names}) VALUES ".encode()

    def _expressions(self) -> list[str]:
        exprs: list[str] = []
        run: list[str] = []
        size = 0
        for col in self.columns:
            fake = self.fakes.get(col["name"])
            lob = col["type"] in LOB_TYPES and fake is None
            octets = 2 * (col.get("octets") or 64) + 16 if fake is None else 2 * 256 + 16
            if lob or (run and size + octets > GROUP_BYTES):
                self._flush(run, exprs)
                run, size = [], 0
            if fake is not None:
                run.append(fake)
                size += octets
            elif lob:
                exprs.append(f"CAST({qi(col['name'])} AS BINARY)")
                self.lob_charsets.append((True, col["charset"]))
            else:
                run.append(column_piece(col))
                size += octets
        self._flush(run, exprs)
        return exprs

    def _flush(self, run: list[str], exprs: list[str]) -> None:
        if run:
            exprs.append(run[0] if len(run) == 1 else f"CONCAT_WS(_binary',', {', '.join(run)})")
            self.lob_charsets.append((False, None))

    def record(self, values: tuple) -> bytes:
        parts = []
        for value, (lob, charset) in zip(values, self.lob_charsets):
            if lob:
                parts.append(lob_literal(value, charset))
            elif value is None:
                raise DatabaseError(f"a row of table {self.table!r} is too large for the server's "
                                    "max_allowed_packet", hint="raise max_allowed_packet on the server")
            else:
                parts.append(value)
        # A raw newline only ever occurs inside a quoted literal: escaping it makes ";\n" a safe
        # statement separator for the loader.
        return (b"(" + b",".join(parts) + b")").replace(b"\n", b"\\n")


class Dumper:
    """``with Dumper(url) as d:`` one connection holding one consistent, read-only snapshot."""

    shapes: dict = {}  # table -> anonymize.Shape, set by anonymize.prepare before the rows

    def __init__(self, url: DatabaseUrl) -> None:
        url = resolve_localhost(url)
        self.url = url
        self.db = url.database
        self.conn = None
        self._plans: dict[str, TablePlan] = {}

    def __enter__(self) -> "Dumper":
        self.conn = connect(self.url, database=self.db)
        with failing(f"cannot start a consistent snapshot of {self.url.redacted}"):
            for stmt in SESSION:
                query(self.conn, stmt)
            try:
                query(self.conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            except pymysql.err.ProgrammingError:
                query(self.conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT")
        return self

    def __exit__(self, *exc) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except pymysql.err.Error:
                pass
            self.conn = None

    def schema(self) -> dict:
        with failing(f"cannot read the schema of {self.url.redacted}"):
            return self._schema()

    def _schema(self) -> dict:
        conn, db = self.conn, self.db
        version = query(conn, "SELECT VERSION()")[0][0]
        charset, collation = query(conn, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
                                         "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (db,))[0]
        # everything that cannot be copied, named in one error before anything is dumped
        refusals = catalog.Refusals(db)
        names = catalog.base_tables(conn, db, refusals=refusals)
        objs = catalog.objects(conn, db, refusals)
        refusals.check()
        tables = []
        for name in names:
            plan = self.plan(name)
            create = catalog.unqualify_sequences(catalog.show_create_table(conn, name), db)
            tables.append({"name": name, "create": create, "columns": [c["name"] for c in plan.columns]})
        schema = {"engine": "mysql", "server_version": version, "charset": charset, "collation": collation,
                  "tables": tables,
                  "views": [o for o in objs if o["kind"] == "view"],
                  "triggers": [o for o in objs if o["kind"] == "trigger"],
                  "routines": [o for o in objs if o["kind"] == "routine"]}
        # only when there are some, so a database without them gives the manifest it always gave
        for key, found in (("sequences", catalog.sequences(conn, db)),
                           ("events", [o for o in objs if o["kind"] == "event"])):
            if found:
                schema[key] = found
        return schema

    def tables(self) -> list[str]:
        with failing(f"cannot list the tables of {self.url.redacted}"):
            return catalog.base_tables(self.conn, self.db)

    def plan(self, table: str) -> TablePlan:
        if table not in self._plans:
            with failing(f"cannot read the columns of table {table!r}"):
                cols = catalog.columns(self.conn, self.db, table)
                key = catalog.order_key(self.conn, self.db, table, cols)
            if not cols:
                raise DatabaseError(f"table {table!r} does not exist in {self.url.redacted}")
            self._plans[table] = TablePlan(table, cols, key, self.shapes.get(table))
        return self._plans[table]

    def rows(self, table: str) -> Iterator[bytes]:
        """One ``(v1,v2,...)`` record per row, in key order, fetched unbuffered."""
        plan = self.plan(table)
        cursor = self.conn.cursor(pymysql.cursors.SSCursor)
        try:
            with failing(f"cannot read the rows of table {table!r}"):
                cursor.execute(plan.select)
                # one row at a time: a batch of wide rows (blobs) would hold many MB at once
                for values in cursor.fetchall_unbuffered():
                    yield plan.record(values)
        finally:
            with failing(f"cannot finish reading table {table!r}"):
                cursor.close()

    def select(self, sql: str) -> list[tuple]:
        """Run a query in the snapshot (for framework plugins choosing files)."""
        with failing(f"cannot query {self.url.redacted}"):
            return query(self.conn, sql)

    def encode_chunk(self, table: str, rows: Iterable[bytes]) -> bytes:
        """``INSERT INTO ... VALUES (..),(..);\\n`` statements, a new one after each MiB."""
        header = self.plan(table).insert
        out: list[bytes] = []
        size = 0
        for row in rows:
            if size:
                out.append(b",")
            else:
                out.append(header)
                size = len(header)
            out.append(row)
            size += len(row) + 1
            if size >= STATEMENT_BYTES:
                out.append(b";\n")
                size = 0
        if size:
            out.append(b";\n")
        return b"".join(out)
