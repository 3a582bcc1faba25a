"""Shared PostgreSQL helpers: quoting, connections, session settings, error mapping."""

from __future__ import annotations

import contextlib
import select
from collections.abc import Iterator

import psycopg
from psycopg import pq

from ...dburl import PG_PARAMS, DatabaseUrl
from ...errors import DatabaseError

MAX_NAME = 63
CONNECT_TIMEOUT = 15
MIN_VERSION = 140000  # PostgreSQL 14: prosqlbody, multiranges, tgparentid in the catalogs
MIN_VERSION_TEXT = "14"
MAINTENANCE_DBS = ("postgres", "template1")

# The same on both sides, so COPY text means the same bytes; search_path '' makes every name the
# pg_get_*def helpers print schema-qualified (as pg_dump does).
SESSION = {"DateStyle": "ISO", "IntervalStyle": "postgres", "extra_float_digits": "3",
           "bytea_output": "hex", "TimeZone": "UTC", "search_path": "", "standard_conforming_strings": "on",
           "xmloption": "content", "row_security": "off", "statement_timeout": "0",
           "lock_timeout": "0", "idle_in_transaction_session_timeout": "0"}

_HINTS = {
    "28P01": "check the user name and password in the database URL",
    "28000": "check the user name in the database URL and the server's pg_hba.conf",
    "3D000": "check the database name in the database URL",
    "42501": "grant the user the rights it needs (SELECT on every table for a dump), or use another user",
    "08001": "check the host and port (or socket), and that the database server is running",
    "55006": "close the other sessions using that database (psql, the application) and run again",
    # connection failures libpq reports without a SQLSTATE (_connect_code)
    "tls-verify": "give the CA that signed the server's certificate with sslrootcert=/path/ca.pem in "
                  "the database URL (verify-full also needs the host name in the certificate), or use "
                  "sslmode=require to encrypt without verifying",
    "tls-absent": "the server does not offer TLS: enable ssl on the server, or use sslmode=prefer in "
                  "the database URL",
    "tls-only": "the server accepts only TLS connections from here: remove sslmode=disable (or allow) "
                "from the database URL, or use sslmode=require",
    "tls-files": "check sslcert and sslkey in the database URL: PEM files readable by this user, the "
                 "key readable by nobody else (chmod 600)",
}


def qi(name: str) -> str:
    """Quote an identifier with double quotes."""
    return '"' + name.replace('"', '""') + '"'


def ql(text: str) -> str:
    """Quote a string literal (standard_conforming_strings on); E'' never needed."""
    return "'" + text.replace("'", "''") + "'"


def error_text(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = primary or str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


@contextlib.contextmanager
def failing(what: str, hint: str | None = None) -> Iterator[None]:
    """Turn a driver error inside the block into one DatabaseError line saying what failed."""
    try:
        yield
    except psycopg.Error as exc:
        code = getattr(exc, "sqlstate", None) or _connect_code(str(exc))
        raise DatabaseError(f"{what}: {error_text(exc)}", hint=hint or _HINTS.get(code or "")) from None
    except OSError as exc:
        raise DatabaseError(f"{what}: {exc}") from None


def _connect_code(text: str) -> str | None:
    """libpq reports connection failures without a SQLSTATE: recognise the usual ones."""
    for needle, code in (("root certificate file", "tls-verify"), ("certificate verify failed", "tls-verify"),
                         ("does not match host name", "tls-verify"),
                         ("server does not support SSL", "tls-absent"),
                         ("certificate file", "tls-files"), ("private key file", "tls-files"),
                         ('role "', "28000"),  # role "x" does not exist: not the database
                         ("does not exist", "3D000"), ("password authentication failed", "28P01"),
                         ("Connection refused", "08001"), ("No such file or directory", "08001"),
                         ("no encryption", "tls-only"), ("no pg_hba.conf entry", "28000")):
        if needle in text:
            return code
    return None


def connect_kwargs(url: DatabaseUrl, database: str) -> dict:
    """psycopg keyword arguments; a ``socket`` may name the directory or the socket file. The
    URL's libpq parameters (``sslmode``, ``sslrootcert`` …, dburl.PG_PARAMS) go to libpq as they
    are; without ``sslmode`` libpq's own default (prefer) applies."""
    host = url.host
    if url.socket:
        host = url.socket.rsplit("/", 1)[0] if "/.s.PGSQL." in url.socket else url.socket
    kwargs = dict(connect_timeout=CONNECT_TIMEOUT)
    kwargs.update((key, value) for key, value in url.params if key in PG_PARAMS)
    kwargs.update(user=url.user or None, password=url.password or None, dbname=database, host=host,
                  port=url.port, autocommit=True)
    return {k: v for k, v in kwargs.items() if v is not None}


def connect(url: DatabaseUrl, database: str | None = None) -> psycopg.Connection:
    """One autocommit connection with the session settings; failures become DatabaseError."""
    name = url.database if database is None else database
    with failing(f"cannot connect to {url.with_database(name).redacted}"):
        conn = psycopg.connect(**connect_kwargs(url, name))
        try:
            for key, value in SESSION.items():
                conn.execute("SELECT pg_catalog.set_config(%s, %s, false)", (key, value))
        except BaseException:
            conn.close()
            raise
        return conn


def connect_maintenance(url: DatabaseUrl) -> psycopg.Connection:
    """A connection to a database other than the target (to create, rename and drop databases)."""
    last: DatabaseError | None = None
    for name in MAINTENANCE_DBS:
        if name == url.database:
            continue
        try:
            return connect(url, name)
        except DatabaseError as exc:
            last = exc
    assert last is not None
    raise last


def query(conn, sql: str, args=None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall()) if cur.description else []


def execute(conn, sql: str, args=None) -> None:
    conn.execute(sql, args)


def set_encoding(conn, encoding: str) -> None:
    conn.execute("SELECT pg_catalog.set_config('client_encoding', %s, false)", (encoding,))


def check_version(version_num: int, version: str) -> None:
    if version_num < MIN_VERSION:
        raise DatabaseError(f"PostgreSQL {version} is not supported: synco needs PostgreSQL "
                            f"{MIN_VERSION_TEXT} or later",
                            hint="upgrade the server, or copy this database with pg_dump")


def check_name(name: str) -> str:
    size = len(name.encode("utf-8"))
    if size > MAX_NAME:
        raise DatabaseError(f"database name {name!r} is longer than {MAX_NAME} bytes",
                            hint="use a shorter target database name (synco adds a suffix to it)")
    return name


def copy_from(table: str, columns: list[str], source: str = "STDIN") -> str:
    """``COPY table (cols) FROM STDIN`` (no column list for a table without columns)."""
    cols = f" ({', '.join(qi(c) for c in columns)})" if columns else ""
    return f"COPY {table}{cols} FROM {source}"


def copy_out(conn, sql: str) -> Iterator[bytes]:
    """The rows of ``COPY … TO STDOUT``, one line each, taken from libpq as they arrive.

    psycopg's ``Copy.read()`` runs a generator and its wait loop for every row; asking libpq for
    the rows it has already received, and waiting on the socket only when it has none, takes
    half the CPU time (the Python side of a dump is this one pass over every row). psycopg still
    starts the COPY (its errors, encoding) and, when the loop stops early, cancels it."""
    with conn.cursor() as cur, cur.copy(sql):
        pgconn = conn.pgconn
        get = pgconn.get_copy_data
        while True:
            size, data = get(1)
            if size > 0:
                yield bytes(data)
            elif size == 0:
                _wait_readable(pgconn)
            elif size == -1:
                break
            else:
                raise psycopg.OperationalError(_message(pgconn.error_message, conn))
        # the COPY's own result (an error the server met while sending the rows ends up here)
        while True:
            while pgconn.is_busy():
                _wait_readable(pgconn)
            result = pgconn.get_result()
            if result is None:
                return
            if result.status != pq.ExecStatus.COMMAND_OK:
                code = result.error_field(pq.DiagnosticField.SQLSTATE)
                error = psycopg.errors.lookup(code.decode()) if code else psycopg.OperationalError
                primary = result.error_field(pq.DiagnosticField.MESSAGE_PRIMARY)
                raise error(_message(primary or result.error_message, conn))


def _wait_readable(pgconn) -> None:
    select.select([pgconn.socket], [], [])
    pgconn.consume_input()


def _message(text: bytes, conn) -> str:
    return text.decode(conn.info.encoding, "replace").strip() or "the COPY failed"
