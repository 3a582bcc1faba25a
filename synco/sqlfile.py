"""``--output FILE``: the database as a SQL script instead of an import, with a loader's interface
(begin, load, commit, abort) so the download does not care which it has."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from synco_source import engines
from synco_source.errors import LocalIOError


class SqlFile:
    """A SqlWriter into a temporary file that becomes ``path`` only on commit."""

    def __init__(self, path: Path, engine: str) -> None:
        self.path = path
        try:
            fd, self.tmp = tempfile.mkstemp(dir=path.parent or Path("."), prefix=f".{path.name}.")
        except OSError as exc:
            raise LocalIOError(f"cannot write into {path.parent}: {exc.strerror}") from None
        self.fh = os.fdopen(fd, "wb")
        self.writer = engines.sql_writer(engine, self.fh)

    def begin(self, schema: dict) -> None:
        self.writer.begin(schema)

    def load(self, table: str, chunk: bytes) -> None:
        try:
            self.writer.load(table, chunk)
        except OSError as exc:
            raise LocalIOError(f"cannot write {self.path}: {exc.strerror}") from None

    def commit(self) -> str:
        try:
            self.writer.commit()
            self.fh.close()
            os.replace(self.tmp, self.path)
        except OSError as exc:
            raise LocalIOError(f"cannot write {self.path}: {exc.strerror}") from None
        return ""

    def abort(self) -> None:
        self.fh.close()
        Path(self.tmp).unlink(missing_ok=True)
