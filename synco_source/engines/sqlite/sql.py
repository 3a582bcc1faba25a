"""Shared SQLite helpers: names, the exact literals of the records, opening a file, error mapping."""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from ...errors import DatabaseError

BUSY_WAIT = 10.0  # seconds a connection waits for another one's lock before SQLITE_BUSY
MAGIC = b"SQLite format 3\0"

# SQLite's keywords (https://sqlite.org/lang_keywords.html): a table called one of these is named
# quoted, as are names that are not plain identifiers. A fixed list, not the local library's, so
# that the same database gets the same names everywhere.
KEYWORDS = frozenset("""
ABORT ACTION ADD AFTER ALL ALTER ALWAYS ANALYZE AND AS ASC ATTACH AUTOINCREMENT BEFORE BEGIN BETWEEN
BY CASCADE CASE CAST CHECK COLLATE COLUMN COMMIT CONFLICT CONSTRAINT CREATE CROSS CURRENT
CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP DATABASE DEFAULT DEFERRABLE DEFERRED DELETE DESC DETACH
DISTINCT DO DROP EACH ELSE END ESCAPE EXCEPT EXCLUDE EXCLUSIVE EXISTS EXPLAIN FAIL FILTER FIRST
FOLLOWING FOR FOREIGN FROM FULL GENERATED GLOB GROUP GROUPS HAVING IF IGNORE IMMEDIATE IN INDEX
INDEXED INITIALLY INNER INSERT INSTEAD INTERSECT INTO IS ISNULL JOIN KEY LAST LEFT LIKE LIMIT MATCH
MATERIALIZED NATURAL NO NOT NOTHING NOTNULL NULL NULLS OF OFFSET ON OR ORDER OTHERS OUTER OVER
PARTITION PLAN PRAGMA PRECEDING PRIMARY QUERY RAISE RANGE RECURSIVE REFERENCES REGEXP REINDEX
RELEASE RENAME REPLACE RESTRICT RETURNING RIGHT ROLLBACK ROW ROWS SAVEPOINT SELECT SET TABLE TEMP
TEMPORARY THEN TIES TO TRANSACTION TRIGGER UNBOUNDED UNION UNIQUE UPDATE USING VACUUM VALUES VIEW
VIRTUAL WHEN WHERE WINDOW WITH WITHOUT""".split())

_POW62 = 1 << 62


def qi(name: str) -> str:
    """Quote an identifier with double quotes."""
    return '"' + name.replace('"', '""') + '"'


def ql(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def table_name(name: str) -> str:
    """A table as the dump names it: bare when it is a plain identifier and no keyword, else
    quoted (as PostgreSQL's names are), so the name is ready for a query either way."""
    plain = name.isascii() and (name[:1].isalpha() or name[:1] == "_") and \
        name.replace("_", "").isalnum() and name.upper() not in KEYWORDS
    return name if plain else qi(name)


def raw_name(name: str) -> str:
    """The inverse of ``table_name``."""
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return name[1:-1].replace('""', '"')
    return name


class Text(bytes):
    """A TEXT value as the database holds it (its UTF-8 bytes; a BLOB is plain ``bytes``)."""


def real_literal(value: float) -> str:
    """A REAL as SQL that every SQLite reads back as exactly this double. SQLite's own decimal
    parser is not correctly rounded (3.40 misreads about 1 in 10,000 short decimals by one unit in
    the last place), so only integral values are written as decimals (``12.0``: exact); others
    are an odd integer below 2**53 scaled by powers of two (each step exact in IEEE arithmetic)."""
    if math.isinf(value):
        return "9e999" if value > 0 else "-9e999"
    if value.is_integer() and abs(value) < 2 ** 53:
        return f"{int(value)}.0" if value or math.copysign(1, value) > 0 else "-0.0"
    num, den = value.as_integer_ratio()
    if den == 1:  # a large integral value: num = odd * 2**k
        shift = (num & -num).bit_length() - 1
        num >>= shift
        steps, op = shift, "*"
    else:
        steps, op = den.bit_length() - 1, "/"
    out = f"CAST({num} AS REAL)"
    while steps > 0:
        step = min(steps, 62)
        out += f"{op}{1 << step}"
        steps -= step
    return f"({out})"


def literal(value, utf16: str = "") -> str:
    """One value as an SQL literal of its own storage class (``utf16``: the database's UTF-16
    codec, for text that must be written as bytes)."""
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return real_literal(value)
    if isinstance(value, Text):
        if b"\0" not in value:
            try:
                return ql(value.decode("utf-8"))
            except UnicodeDecodeError:
                pass
        data = bytes(value)
        if utf16:
            data = data.decode("utf-8", "surrogateescape").encode(utf16, "surrogatepass")
        return f"CAST(X'{data.hex().upper()}' AS TEXT)"
    return f"X'{bytes(value).hex().upper()}'"


def error_text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


@contextlib.contextmanager
def failing(what: str, hint: str | None = None) -> Iterator[None]:
    """Turn sqlite3 errors into DatabaseError: ``what: reason``."""
    try:
        yield
    except sqlite3.Error as exc:
        text = error_text(exc)
        if hint is None and "locked" in text:
            hint = "another program holds a lock on the database: let it finish, or stop it, and run again"
        raise DatabaseError(f"{what}: {text}", hint=hint) from None


def check_file(path: str) -> Path:
    """The database file, which must exist and be an SQLite 3 database; DatabaseError else."""
    file = Path(path)
    try:
        with open(file, "rb") as fh:
            head = fh.read(len(MAGIC))
    except FileNotFoundError:
        raise DatabaseError(f"SQLite database file {path} does not exist",
                            hint="check the path in the database URL (sqlite:///absolute/path.db)") from None
    except IsADirectoryError:
        raise DatabaseError(f"SQLite database {path} is a folder, not a file",
                            hint="check the path in the database URL") from None
    except OSError as exc:
        raise DatabaseError(f"cannot read SQLite database file {path}: {exc.strerror}",
                            hint="run as a user who may read it") from None
    if head and head != MAGIC:
        raise DatabaseError(f"{path} is not an SQLite 3 database",
                            hint="check the path in the database URL")
    return file


def connect(path: str | os.PathLike, *, existing: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), TEXT read as ``Text``;
    ``existing``: the file must exist (read-only where this user may not write it). Not SQLite's
    read-only mode: such a connection leaves a WAL file's ``-wal`` and ``-shm`` behind when it is
    the last one, where a read-write one checkpoints and removes them."""
    where = str(path)
    uri = "file:" + _uri_path(where) + ("?mode=rw" if existing else "")
    with failing(f"cannot open SQLite database {where}"):
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_WAIT, isolation_level=None,
                               check_same_thread=False)
    conn.text_factory = Text
    return conn


def _uri_path(path: str) -> str:
    from urllib.parse import quote
    return quote(path, safe="/")


def close_quietly(conn: sqlite3.Connection | None) -> None:
    """Close ``conn`` (None: nothing); a failure to close leaves nothing to do."""
    if conn is not None:
        try:
            conn.close()
        except sqlite3.Error:
            pass


def rows(conn: sqlite3.Connection, sql: str, params=()) -> list[tuple]:
    return conn.execute(sql, params).fetchall()


def text(value) -> str:
    """A catalog value (read as ``Text``) as str."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value
