"""``--output FILE``: the database as a SQL script instead of an import, with a loader's interface
(begin, load, commit, abort) so the download does not care which it has.

``--output -`` writes the script to stdout, but only once it is complete: it is spooled into an
unnamed temporary file first, so a download that fails writes nothing, and a reader such as
``| mariadb shop`` never loads half a database (the same promise as the import's shadow
database). Messages stay on stderr."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from synco_source import engines
from synco_source.errors import LocalIOError


class SqlFile:
    """A SqlWriter into a temporary file that becomes ``path`` only on commit."""

    def __init__(self, path: Path, engine: str) -> None:
        self.path = path
        self.stdout = str(path) == "-"
        try:
            if self.stdout:
                self.tmp = ""
                self.fh = tempfile.TemporaryFile(prefix="synco-sql-")
            else:
                fd, self.tmp = tempfile.mkstemp(dir=path.parent or Path("."), prefix=f".{path.name}.")
                self.fh = os.fdopen(fd, "wb")
        except OSError as exc:
            where = tempfile.gettempdir() if self.stdout else path.parent
            raise LocalIOError(f"cannot write into {where}: {exc.strerror}") from None
        self.writer = engines.sql_writer(engine, self.fh)

    def begin(self, schema: dict) -> None:
        self.writer.begin(schema)

    def load(self, table: str, chunk: bytes) -> None:
        try:
            self.writer.load(table, chunk)
        except OSError as exc:
            raise LocalIOError(f"cannot write {self._name}: {exc.strerror}") from None

    def commit(self) -> str:
        try:
            self.writer.commit()
            if self.stdout:
                self._copy_to_stdout()
            else:
                self.fh.close()
                os.replace(self.tmp, self.path)
        except OSError as exc:
            raise LocalIOError(f"cannot write {self._name}: {exc.strerror}") from None
        return ""

    @property
    def _name(self) -> str:
        return "the SQL script to stdout" if self.stdout else str(self.path)

    def _copy_to_stdout(self) -> None:
        self.fh.flush()
        self.fh.seek(0)
        out = sys.stdout.buffer
        sys.stdout.flush()
        shutil.copyfileobj(self.fh, out, 1 << 20)
        out.flush()
        self.fh.close()

    def abort(self) -> None:
        self.fh.close()
        if self.tmp:
            Path(self.tmp).unlink(missing_ok=True)
