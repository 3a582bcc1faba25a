"""SqlWriter: the Loader's calls, writing a plain SQL script that ``psql -d dbname -f file`` loads."""

from __future__ import annotations

from typing import BinaryIO

from ...errors import DatabaseError
from ..common import ScriptFile
from .load import LOAD_SETTINGS
from .sql import SESSION, copy_from, ql

HEADER = "-- synco SQL script (PostgreSQL); load into an empty database with: psql -X -d dbname -f this.sql\n" \
         "\\set ON_ERROR_STOP on\n"


class SqlWriter(ScriptFile):
    """Writes the script to a binary file object; abort() leaves deleting the file to the caller."""

    def __init__(self, fileobj: BinaryIO) -> None:
        super().__init__(fileobj)
        self.schema: dict | None = None
        self._copy: dict[str, bytes] = {}

    def _statements(self, objs: list[dict]) -> None:
        for obj in objs:
            self._text(f"\n-- {obj['kind']}: {obj['name']}\n{obj['sql']};\n")

    def describe_target(self) -> int:
        return 0

    def begin(self, schema: dict) -> None:
        if schema.get("engine") != "postgresql":
            raise DatabaseError(f"cannot write a {schema.get('engine')!r} dump as a PostgreSQL script")
        self.schema = schema
        settings = [f"SELECT pg_catalog.set_config({ql(k)}, {ql(v)}, false);" for k, v in SESSION.items()]
        self._text(HEADER + "\n".join(settings + [s + ";" for s in LOAD_SETTINGS])
                   + "\nSET client_encoding = 'UTF8';\n")
        self._statements(schema["pre"])
        self._text(f"\nSET client_encoding = {ql(schema['encoding'])};\n")
        for table in schema["tables"]:
            self._copy[table["name"]] = f"\n{copy_from(table['name'], table['columns'], 'stdin')};\n".encode()

    def load(self, table: str, chunk: bytes) -> None:
        header = self._copy.get(table)
        if header is None:
            raise DatabaseError(f"table {table} is not in the dump's schema")
        self._write(header + chunk + b"\\.\n")

    def commit(self) -> None:
        if self.schema is None:
            raise DatabaseError("commit() called before begin()")
        self._text("\nSET client_encoding = 'UTF8';\n")
        self._statements(self.schema["post"])
        self._text("\n-- end of synco SQL script\n")
        self._flush()

    def abort(self) -> None:
        """Nothing to undo: the caller deletes the partial file."""
