"""SqlWriter: the Loader's calls, writing a script that ``sqlite3 new.db < file`` loads."""

from __future__ import annotations

from typing import BinaryIO

from ...errors import DatabaseError
from ..common import ScriptFile
from .dump import insert_head
from .load import check_engine, statements

HEADER = "-- synco SQL script (SQLite); load into a new database file with: sqlite3 new.db < this.sql\n"


class SqlWriter(ScriptFile):
    """Writes the script to a binary file object; abort() leaves deleting the file to the caller."""

    def __init__(self, fileobj: BinaryIO) -> None:
        super().__init__(fileobj)
        self.schema: dict | None = None
        self._heads: dict[str, bytes] = {}

    def describe_target(self) -> int:
        return 0

    def begin(self, schema: dict) -> None:
        check_engine(schema, "write")
        self.schema = schema
        before, _ = statements(schema)
        self._text(HEADER + "".join(f"{s};\n" for s in before[:3]) + "BEGIN;\n"
                   + "".join(f"\n{s};\n" for s in before[3:]))
        self._heads = {t["name"]: insert_head(t) for t in schema["tables"]}

    def load(self, table: str, chunk: bytes) -> None:
        head = self._heads.get(table)
        if head is None:
            raise DatabaseError(f"table {table} is not in the dump's schema")
        if not chunk.startswith(head):
            raise DatabaseError(f"a chunk of table {table} is not an INSERT into that table")
        self._write(b"\n" + chunk)

    def commit(self) -> None:
        if self.schema is None:
            raise DatabaseError("commit() called before begin()")
        _, after = statements(self.schema)
        self._text("".join(f"\n{s};\n" for s in after) + "COMMIT;\n")
        if self.schema["wal"]:
            self._text("PRAGMA journal_mode = WAL;\n")
        self._text("-- end of synco SQL script\n")
        self._flush()

    def abort(self) -> None:
        """Nothing to undo: the caller deletes the partial file."""
