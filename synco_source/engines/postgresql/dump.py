"""The dump side: one connection, one REPEATABLE READ snapshot, rows as COPY text lines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ...dburl import DatabaseUrl
from ...errors import DatabaseError
from . import catalog, objects, tables
from .order import dependency_order
from .refuse import refuse_unsupported
from .sql import check_version, connect, copy_out, failing, qi, set_encoding


class Dumper:
    """``with Dumper(url) as d:`` one connection holding one consistent, read-only snapshot."""

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self.conn = None
        self.info: dict = {}
        self._tables: dict[str, dict] | None = None
        self._copy: dict[str, str] = {}

    def __enter__(self) -> "Dumper":
        self.conn = connect(self.url)
        try:
            with failing(f"cannot start a consistent snapshot of {self.url.redacted}"):
                self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                set_encoding(self.conn, "UTF8")
                self.info = catalog.database_info(self.conn)
            check_version(self.info["server_version_num"], self.info["server_version"])
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # closing a broken connection: nothing left to do
                pass
            self.conn = None

    def schema(self) -> dict:
        with failing(f"cannot read the schema of {self.url.redacted}"):
            set_encoding(self.conn, "UTF8")
            return self._schema()

    def _schema(self) -> dict:
        conn = self.conn
        refuse_unsupported(conn)
        table_list = list(self._table_map().values())
        sequences = catalog.sequences(conn)
        views = objects.views(conn)
        early = catalog.collations(conn) + catalog.types(conn) + objects.functions(conn) + \
            [s for s in sequences if not s["identity"]] + table_list + [v for v in views if v["sql"]]
        pre = catalog.schemas(conn) + catalog.extensions(conn) + dependency_order(conn, early)
        pre += [{"kind": "partition", "name": t["name"], "sql": t["attach"]} for t in table_list if t["attach"]]
        # views whose query needs a primary key: the real query once the keys exist
        late = [{"kind": v["kind"], "name": v["name"], "sql": v["late"]}
                for v in dependency_order(conn, views) if v["late"]]
        post = (objects.keys(conn) + late + objects.indexes(conn) + objects.late_constraints(conn)
                + objects.triggers(conn) + objects.rules(conn)
                + objects.replica_identities(conn) + objects.statistics(conn) + _sequence_values(sequences)
                + [{"kind": "refresh", "name": v["name"], "sql": f"REFRESH MATERIALIZED VIEW {v['name']}"}
                   for v in dependency_order(conn, views) if v.get("populated")]
                + objects.row_security(conn) + objects.comments(conn))
        return {"engine": "postgresql", **self.info,
                "pre": [_public(o) for o in pre], "post": [_public(o) for o in post],
                "tables": [{"name": t["name"], "columns": t["columns"]}
                           for t in table_list if not t["partitioned"]]}

    def _table_map(self) -> dict[str, dict]:
        if self._tables is None:
            self._tables = {t["name"]: t for t in tables.tables(self.conn)}
        return self._tables

    def tables(self) -> list[str]:
        with failing(f"cannot list the tables of {self.url.redacted}"):
            set_encoding(self.conn, "UTF8")
            return [name for name, t in self._table_map().items() if not t["partitioned"]]

    def copy_sql(self, table: str) -> str:
        if table not in self._copy:
            with failing(f"cannot read the columns of table {table}"):
                set_encoding(self.conn, "UTF8")
                info = self._table_map().get(table)
                if info is None or info["partitioned"]:
                    raise DatabaseError(f"table {table} does not exist in {self.url.redacted}")
                key = tables.order_key(self.conn, info["oid"])
            cols = [qi(c) for c in info["columns"]]
            if key is None:
                order = [f"({c})::text COLLATE \"C\"" for c in cols]
            else:
                order = [qi(k) for k in key]
            order_by = f" ORDER BY {', '.join(order)}" if order else ""
            # the privacy rules (synco_source.anonymize.prepare): fakes in place of columns, and
            # the condition of the rows kept
            shape = getattr(self, "shapes", {}).get(table)
            if shape is not None:
                cols = [shape.columns.get(c, qi(c)) for c in info["columns"]]
            where = f" WHERE {shape.where}" if shape is not None and shape.where else ""
            self._copy[table] = f"COPY (SELECT {', '.join(cols)} FROM ONLY {table}{where}{order_by}) TO STDOUT"
        return self._copy[table]

    def rows(self, table: str) -> Iterator[bytes]:
        """One COPY text line per row (with its newline), in key order, streamed."""
        sql = self.copy_sql(table)
        with failing(f"cannot read the rows of table {table}"):
            set_encoding(self.conn, self.info["encoding"])
            yield from copy_out(self.conn, sql)

    def encode_chunk(self, table: str, rows: Iterable[bytes]) -> bytes:
        """The COPY text lines, concatenated."""
        return b"".join(rows)

    def select(self, sql: str) -> list[tuple]:
        """Run a query in the snapshot (for framework plugins choosing files)."""
        with failing(f"cannot query {self.url.redacted}"):
            set_encoding(self.conn, "UTF8")
            return self.conn.execute(sql).fetchall()


def _public(obj: dict) -> dict:
    """What goes into the manifest: kind, name and SQL (no OIDs)."""
    return {"kind": obj["kind"], "name": obj["name"], "sql": obj["sql"]}


def _sequence_values(sequences: list[dict]) -> list[dict]:
    out = []
    for seq in sequences:
        last, called = seq["value"]
        out.append({"kind": "sequence value", "name": seq["name"],
                    "sql": f"SELECT pg_catalog.setval({_lit(seq['name'])}, {int(last)}, {str(called).lower()})"})
        if seq["owner"] and not seq["identity"]:
            out.append({"kind": "sequence owner", "name": seq["name"],
                        "sql": f"ALTER SEQUENCE {seq['name']} OWNED BY {seq['owner']}"})
    return out


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"

