"""SqlWriter: the Loader's calls, writing a plain SQL script that ``mariadb dbname < file`` loads."""

from __future__ import annotations

from typing import BinaryIO

from ...errors import DatabaseError
from ..common import ScriptFile
from . import catalog
from .sql import qi

HEADER = b"""-- synco SQL script (MySQL/MariaDB); load with: mariadb dbname < this.sql
/*!40101 SET @SYNCO_OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET @SYNCO_OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;
/*!40101 SET @SYNCO_OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;
SET NAMES utf8mb4;
SET @SYNCO_OLD_TIME_ZONE=@@TIME_ZONE, TIME_ZONE='+00:00';
SET @SYNCO_OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO';
SET @SYNCO_OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0;
SET @SYNCO_OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0;
"""
FOOTER = b"""SET TIME_ZONE=@SYNCO_OLD_TIME_ZONE;
SET SQL_MODE=@SYNCO_OLD_SQL_MODE;
SET FOREIGN_KEY_CHECKS=@SYNCO_OLD_FOREIGN_KEY_CHECKS;
SET UNIQUE_CHECKS=@SYNCO_OLD_UNIQUE_CHECKS;
/*!40101 SET CHARACTER_SET_CLIENT=@SYNCO_OLD_CHARACTER_SET_CLIENT */;
/*!40101 SET CHARACTER_SET_RESULTS=@SYNCO_OLD_CHARACTER_SET_RESULTS */;
/*!40101 SET COLLATION_CONNECTION=@SYNCO_OLD_COLLATION_CONNECTION */;
-- end of synco SQL script
"""


class SqlWriter(ScriptFile):
    """Writes the script to a binary file object; abort() leaves deleting the file to the caller."""

    def __init__(self, fileobj: BinaryIO) -> None:
        super().__init__(fileobj)
        self.schema: dict | None = None

    def describe_target(self) -> int:
        return 0

    def begin(self, schema: dict) -> None:
        if schema.get("engine") != "mysql":
            raise DatabaseError(f"cannot write a {schema.get('engine')!r} dump as a MySQL script")
        self.schema = schema
        self._write(HEADER)
        self._text(f"/*!40101 ALTER DATABASE CHARACTER SET {schema['charset']} "
                   f"COLLATE {schema['collation']} */;\n")
        for obj in reversed(schema["views"]):
            self._text(f"DROP VIEW IF EXISTS {qi(obj['name'])};\n")
        # sequences first: a table's default may call one (it is checked when the table is made)
        for seq in schema.get("sequences", []):
            self._text(f"\nDROP SEQUENCE IF EXISTS {qi(seq['name'])};\n{seq['create']};\n"
                       + "".join(f"{stmt};\n" for stmt in catalog.sequence_value_sql(seq)))
        for table in schema["tables"]:
            self._text(f"\nDROP TABLE IF EXISTS {qi(table['name'])};\n{table['create']};\n")
        self._write(b"\n")

    def load(self, table: str, chunk: bytes) -> None:
        self._write(chunk)

    def commit(self) -> None:
        schema = self.schema
        if schema is None:
            raise DatabaseError("commit() called before begin()")
        self._write(b"\nDELIMITER ;;\n")
        for obj in schema["routines"] + schema["views"] + schema["triggers"] + schema.get("events", []):
            self._text(f"{catalog.drop_sql(obj)};;\n"
                       + "".join(f"{stmt};;\n" for stmt in catalog.session_sql(obj))
                       + f"{obj['create']};;\n")
        self._write(b"SET SESSION SQL_MODE = 'NO_AUTO_VALUE_ON_ZERO', TIME_ZONE = '+00:00';;\n"
                    b"DELIMITER ;\n")
        self._write(FOOTER)
        self._flush()

    def abort(self) -> None:
        """Nothing to undo: the caller deletes the partial file."""
