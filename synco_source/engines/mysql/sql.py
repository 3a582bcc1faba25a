"""Shared MySQL/MariaDB helpers: identifier quoting, connections, error mapping, literal expressions.

The row literal rules live here because the dump side builds them and the tests check them: every
column becomes one SQL literal whose bytes the server produces (``CAST(... AS BINARY)`` so no
character set conversion happens on the way), except large columns (TEXT/BLOB/JSON/geometry),
which are fetched raw and escaped in Python the way ``QUOTE()`` does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import socket
import ssl
import stat
from collections.abc import Iterator

import pymysql
import pymysql.cursors

from ...dburl import DatabaseUrl
from ...errors import DatabaseError

MAX_NAME = 64
CONNECT_TIMEOUT = 15
DEFAULT_PORT = 3306
# Where MySQL and MariaDB put their socket (Debian and Ubuntu, their old path, RHEL and SUSE,
# upstream's default). To the mysql client and to PHP (pdo_mysql, mysqli) the host "localhost"
# means that socket, not TCP; so it does to synco, or an application configured with
# ``host: localhost`` on a server that listens on no TCP port could not be reached.
DEFAULT_SOCKETS = ("/run/mysqld/mysqld.sock", "/var/run/mysqld/mysqld.sock",
                   "/var/lib/mysql/mysql.sock", "/tmp/mysql.sock")

# Multibyte charsets whose second byte may be 0x5C (backslash) or 0x27 (quote), or that are not
# ASCII-compatible at all: their text goes as hex so the server's lexer cannot misread it.
HEX_CHARSETS = frozenset({"big5", "cp932", "gbk", "sjis", "gb18030", "ucs2", "utf16", "utf16le", "utf32"})
LOB_TYPES = frozenset({"tinytext", "text", "mediumtext", "longtext", "tinyblob", "blob", "mediumblob",
                       "longblob", "json", "geometry", "point", "linestring", "polygon", "multipoint",
                       "multilinestring", "multipolygon", "geometrycollection"})
INT_TYPES = frozenset({"tinyint", "smallint", "mediumint", "int", "bigint", "decimal"})
TIME_TYPES = frozenset({"date", "datetime", "timestamp", "time"})
_DEFINER = re.compile(r"\s+DEFINER=(`(?:[^`]|``)*`|'(?:[^']|'')*'|\w+)@(`(?:[^`]|``)*`|'(?:[^']|'')*'|[\w.%-]+)|"
                      r"\s+DEFINER=CURRENT_USER(?:\(\))?")

_HINTS = {
    1045: "check the user name and password in the database URL",
    1044: "grant the user access to this database, or use another user",
    1049: "check the database name in the database URL",
    2003: "check the host and port, and that the database server is running",
    2002: "check the socket path, and that the database server is running",
    2005: "check the host name in the database URL",
    2026: "the server does not offer TLS: enable TLS on the server, or lower ssl-mode in the "
          "database URL (PREFERRED encrypts when it can)",
    3159: "check the user name and password in the database URL; a server that accepts TLS "
          "connections only refuses unencrypted ones too: remove ssl-mode=DISABLED from it",
}
_TLS_HINT = ("give the CA that signed the server's certificate with ssl-ca=/path/ca.pem in the database "
             "URL (VERIFY_IDENTITY also needs the host name in the certificate), or use "
             "ssl-mode=REQUIRED to encrypt without verifying")


def qi(name: str) -> str:
    """Quote an identifier with backticks."""
    return "`" + name.replace("`", "``") + "`"


def qs(text: str) -> str:
    """Quote a string literal (for names in catalog queries and SHOW statements)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def strip_definer(create: str) -> str:
    """Remove the DEFINER=user@host clause so the object belongs to whoever loads it."""
    return _DEFINER.sub("", create, count=1)


def escape_bytes(raw: bytes) -> bytes:
    """Escape bytes for a single-quoted literal exactly like the server's QUOTE() does."""
    return (raw.replace(b"\\", b"\\\\").replace(b"'", b"\\'")
            .replace(b"\0", b"\\0").replace(b"\x1a", b"\\Z"))


def error_text(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        return f"{args[1]} (error {args[0]})"
    return str(exc) or type(exc).__name__


@contextlib.contextmanager
def failing(what: str, hint: str | None = None) -> Iterator[None]:
    """Turn a driver error inside the block into one DatabaseError line saying what failed."""
    try:
        yield
    except pymysql.err.Error as exc:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        raise DatabaseError(f"{what}: {error_text(exc)}", hint=hint or _HINTS.get(code)) from None
    except OSError as exc:
        raise DatabaseError(f"{what}: {exc}") from None


def _accepts(path: str) -> bool:
    """A socket file that a server answers on, and that we may open (a stale socket of a stopped
    server, or one of mode 0660, is not one)."""
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(2)
            probe.connect(path)
        return True
    except OSError:
        return False


def local_socket() -> str:
    """The server's socket, as the mysql client finds it ($MYSQL_UNIX_PORT first); "" if none
    answers."""
    for path in (os.environ.get("MYSQL_UNIX_PORT"), *DEFAULT_SOCKETS):
        if path and _accepts(path):
            return path
    return ""


def resolve_localhost(url: DatabaseUrl) -> DatabaseUrl:
    """``localhost`` on the default port is the local socket when one answers (see
    DEFAULT_SOCKETS); any other host, or a port of its own, stays TCP. The engine resolves once
    (Dumper, Loader, ``resolve``), so messages and prompts name the socket it uses."""
    if url.socket or url.host != "localhost" or url.port != DEFAULT_PORT:
        return url
    socket = local_socket()
    return dataclasses.replace(url, socket=socket) if socket else url


def tls_mode(url: DatabaseUrl) -> str:
    """The ssl-mode a connection to ``url`` uses, as the mysql client decides it: the one given;
    else VERIFY_CA when a CA is given (``ssl-ca``, ``ssl-capath``); else PREFERRED. Over a Unix
    socket (local, and a secure transport to the server) TLS is never used."""
    if url.socket:
        return "DISABLED"
    given = url.option("ssl-mode")
    if given:
        return given
    return "VERIFY_CA" if url.option("ssl-ca") or url.option("ssl-capath") else "PREFERRED"


def tls_context(url: DatabaseUrl, mode: str) -> ssl.SSLContext:
    """The TLS context of REQUIRED, VERIFY_CA or VERIFY_IDENTITY: the server's certificate checked
    against ``ssl-ca``/``ssl-capath`` (the system's CAs when neither is given) for the VERIFY
    modes, its name too for VERIFY_IDENTITY; the client certificate when one is given."""
    ca, capath = url.option("ssl-ca") or None, url.option("ssl-capath") or None
    cert, key = url.option("ssl-cert") or None, url.option("ssl-key") or None
    verify = mode in ("VERIFY_CA", "VERIFY_IDENTITY")
    what = f"ssl-ca {ca}" if ca else f"ssl-capath {capath}"
    try:
        if verify:
            ctx = ssl.create_default_context(cafile=ca, capath=capath)
            ctx.check_hostname = mode == "VERIFY_IDENTITY"
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        if cert or key:
            what = f"ssl-cert {cert} with ssl-key {key}" if cert and key else f"ssl-cert {cert or key}"
            ctx.load_cert_chain(cert or key, key)
        if url.option("ssl-cipher"):
            what = "ssl-cipher"
            ctx.set_ciphers(url.option("ssl-cipher"))
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise DatabaseError(f"cannot connect to {url.redacted}: cannot use {what}: {reason}",
                            hint="check the TLS options in the database URL (PEM files readable by "
                                 "this user, a key that belongs to the certificate)") from None
    return ctx


def _tls_kwargs(url: DatabaseUrl) -> dict:
    """pymysql's TLS arguments for the ssl-mode (PyMySQL 1.2+: PREFERRED when given none, and a
    context makes TLS required). A client certificate is only sent over TLS, so giving one makes
    even PREFERRED require it."""
    mode = tls_mode(url)
    if mode == "DISABLED":
        return {"ssl_disabled": True}
    if mode == "PREFERRED" and not (url.option("ssl-cert") or url.option("ssl-key")):
        return {}
    return {"ssl": tls_context(url, "REQUIRED" if mode == "PREFERRED" else mode)}


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind a connection failure (pymysql reports it as error 2003)."""
    while exc is not None:
        if isinstance(exc, ssl.SSLError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def connect(url: DatabaseUrl, *, database: str | None = None) -> pymysql.connections.Connection:
    """One connection in utf8mb4, autocommit off; failures become DatabaseError with a hint.
    ``url`` as the engine resolved it (resolve_localhost, once, in Dumper, Loader and restore);
    TLS as its ssl-mode says (tls_mode)."""
    # the password's UTF-8 bytes, as the mysql client and PHP send them (PyMySQL would encode a
    # str as Latin-1, so that no password with a non-Latin-1 letter, and none with é, would match)
    kwargs = dict(user=url.user, password=url.password.encode("utf-8"), charset="utf8mb4", autocommit=False,
                  connect_timeout=CONNECT_TIMEOUT, database=database or None,
                  cursorclass=pymysql.cursors.Cursor, **_tls_kwargs(url))
    if url.socket:
        kwargs["unix_socket"] = url.socket
    else:
        kwargs.update(host=url.host, port=url.port)
    what = f"cannot connect to {url.redacted}"
    try:
        return pymysql.connect(**kwargs)
    except pymysql.err.Error as exc:
        tls = _tls_failure(exc)
        if tls is not None:
            reason = getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or str(tls)
            raise DatabaseError(f"{what}: TLS failed: {reason}", hint=_TLS_HINT) from None
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code == 1045 and url.option("ssl-mode") == "DISABLED" and not url.socket:
            code = 3159  # MariaDB refuses an insecure connection as "Access denied"
        raise DatabaseError(f"{what}: {error_text(exc)}", hint=_HINTS.get(code)) from None
    except OSError as exc:
        raise DatabaseError(f"{what}: {exc}") from None


def query(conn, sql: str, args=None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def check_name(name: str) -> str:
    if len(name) > MAX_NAME:
        raise DatabaseError(f"database name {name!r} is longer than {MAX_NAME} characters",
                            hint="use a shorter target database name (synco adds a suffix to it)")
    return name


def column_piece(col: dict) -> str:
    """SQL expression giving the literal of a small column as binary bytes ('NULL' when null)."""
    name, dtype, charset = qi(col["name"]), col["type"], col["charset"]
    if dtype in INT_TYPES:
        text = f"CAST({name} AS BINARY)"
    elif dtype == "float":
        text = f"CAST({name} + 0e0 AS BINARY)"  # widened: the FLOAT text has only 6 digits
    elif dtype == "double":
        text = f"CAST({name} AS BINARY)"  # shortest round-trip text
    elif dtype in ("bit", "year"):
        text = f"CAST({name} + 0 AS BINARY)"
    elif dtype in TIME_TYPES:
        text = f"QUOTE({name})"
    elif charset is None:
        text = f"CONCAT('_binary', CAST(QUOTE({name}) AS BINARY))"
    elif charset in HEX_CHARSETS:
        text = f"CONCAT('_{charset} X''', HEX({name}), '''')"
    else:
        text = f"CONCAT('_{charset}', CAST(QUOTE({name}) AS BINARY))"
    return f"IF({name} IS NULL, _binary'NULL', CAST({text} AS BINARY))"


def lob_literal(raw: bytes | None, charset: str | None) -> bytes:
    """The literal for a large column fetched raw (``CAST(col AS BINARY)``)."""
    if raw is None:
        return b"NULL"
    if charset is None:
        return b"_binary'" + escape_bytes(raw) + b"'"
    if charset in HEX_CHARSETS:
        return b"_" + charset.encode() + b" X'" + raw.hex().upper().encode() + b"'"
    return b"_" + charset.encode() + b"'" + escape_bytes(raw) + b"'"
