"""Database URLs: ``mysql://user:password@host:port/name?socket=/path``.

One parser for both programs. Schemes name the engine: ``mysql``, ``mariadb`` (the same engine),
``postgresql``/``postgres``/``pgsql``, ``sqlite`` (``sqlite:///absolute/path.db``, or
``sqlite:relative/path.db`` from the current folder: host "", port 0, no user, ``database`` the
file's absolute path; ``sqlite:////abs`` as Doctrine writes it is the same file). Query parameters: ``socket`` (or ``unix_socket``) for a Unix
socket (PostgreSQL: also libpq's ``host=/directory``), ``charset``, and the TLS options: MySQL's
``ssl-mode``, ``ssl-ca``, ``ssl-capath``, ``ssl-cert``, ``ssl-key``, ``ssl-cipher`` (also spelled
``ssl_mode``, ``sslmode``, ``ssl_ca`` …), PostgreSQL's libpq parameters (``sslmode``,
``sslrootcert``, ``sslcert``, ``sslkey`` and the others in ``PG_PARAMS``). User, password and
database name are percent-decoded, so ``p%40ss`` is ``p@ss``. Other parameters (Doctrine's
``serverVersion``) are kept and ignored; an unknown ``ssl…`` one is refused, so that a misspelt TLS
option cannot silently leave the connection unencrypted.
"""

from __future__ import annotations

import dataclasses
import os
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .errors import UsageError

ENGINES = {"mysql": "mysql", "mariadb": "mysql", "postgresql": "postgresql",
           "postgres": "postgresql", "pgsql": "postgresql", "sqlite": "sqlite", "sqlite3": "sqlite"}
DEFAULT_PORTS = {"mysql": 3306, "postgresql": 5432}

# MySQL's --ssl-mode values, and its TLS options under the mysql client's spelling.
MYSQL_MODES = ("DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")
MYSQL_TLS = ("ssl-mode", "ssl-ca", "ssl-capath", "ssl-cert", "ssl-key", "ssl-cipher")
PG_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# libpq connection parameters passed to the server's connection as they are (host, port, dbname,
# user and password come from the URL itself).
PG_PARAMS = frozenset({
    "sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "sslcrl", "sslcrldir", "sslsni",
    "sslcompression", "sslcertmode", "sslnegotiation", "ssl_min_protocol_version",
    "ssl_max_protocol_version", "requirepeer", "gssencmode", "krbsrvname", "gsslib",
    "gssdelegation", "channel_binding", "require_auth", "application_name", "connect_timeout",
    "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
    "target_session_attrs", "load_balance_hosts", "hostaddr", "passfile", "options"})


@dataclasses.dataclass(frozen=True)
class DatabaseUrl:
    engine: str
    host: str
    port: int
    user: str
    password: str = dataclasses.field(repr=False, default="")
    database: str = ""
    socket: str = ""
    params: tuple[tuple[str, str], ...] = ()

    @property
    def redacted(self) -> str:
        """The URL without its password, for messages (SQLite: the file's path)."""
        if self.engine == "sqlite":
            return f"sqlite://{quote(self.database)}"
        where = f"socket {self.socket}" if self.socket else f"{self.host}:{self.port}"
        return f"{self.engine}://{quote(self.user)}@{where}/{self.database}"

    def with_database(self, name: str) -> "DatabaseUrl":
        return dataclasses.replace(self, database=name)

    def option(self, name: str) -> str:
        """A query parameter ("" when absent); MySQL's TLS options under their MYSQL_TLS name."""
        return dict(self.params).get(name, "")


def _mysql_key(key: str) -> str:
    """``ssl_mode``, ``sslmode``, ``SSL-Mode`` → ``ssl-mode`` (other keys unchanged)."""
    low = key.lower().replace("_", "-")
    if low.startswith("ssl") and not low.startswith("ssl-"):
        low = "ssl-" + low[3:]
    return low if low.startswith("ssl-") else key


def options(engine: str, pairs) -> tuple[tuple[str, str], ...]:
    """Query parameters as the engine reads them, checked: MySQL's TLS options under one spelling
    with ``ssl-mode`` upper case, PostgreSQL's ``sslmode`` one of libpq's. UsageError otherwise."""
    out: dict[str, str] = {}
    for key, value in pairs:
        if engine == "mysql":
            key = _mysql_key(key)
            if key.startswith("ssl-") and key not in MYSQL_TLS:
                raise UsageError(f"unknown TLS option {key!r} in the database URL",
                                 hint="MySQL and MariaDB take " + ", ".join(MYSQL_TLS))
            if key == "ssl-mode":
                value = value.strip().upper().replace("-", "_")
                if value not in MYSQL_MODES:
                    raise UsageError(f"ssl-mode {value!r} in the database URL is not one of MySQL's",
                                     hint="use " + ", ".join(MYSQL_MODES))
        elif engine == "postgresql" and key.lower().startswith("ssl"):
            if key not in PG_PARAMS:
                known = sorted(k for k in PG_PARAMS if k.startswith("ssl"))
                raise UsageError(f"unknown TLS option {key!r} in the database URL",
                                 hint="PostgreSQL (libpq) takes " + ", ".join(known))
            if key == "sslmode" and value.strip().lower() not in PG_SSLMODES:
                raise UsageError(f"sslmode {value!r} in the database URL is not one of libpq's",
                                 hint="use " + ", ".join(PG_SSLMODES))
            value = value.strip().lower() if key == "sslmode" else value
        out[key] = value
    return tuple(sorted(out.items()))


def parse(text: str) -> DatabaseUrl:
    """Parse a database URL, raising UsageError with the reason when it is not one."""
    parts = urlsplit(text.strip())
    engine = ENGINES.get(parts.scheme.lower())
    if engine is None:
        known = ", ".join(sorted(ENGINES))
        what = parts.scheme or "no scheme"
        raise UsageError(f"unsupported database URL ({what}); known schemes: {known}",
                         hint="write it like mysql://user:password@host:3306/name")
    if engine == "sqlite":
        return sqlite_url(text.strip(), parts)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    socket = query.pop("socket", "")
    socket = query.pop("unix_socket", "") or socket
    host = parts.hostname
    if engine == "postgresql" and "host" in query:  # libpq's postgresql:///name?host=/run/postgresql
        value = query.pop("host")
        socket, host = (value, host) if value.startswith("/") else (socket, value)
    database = unquote(parts.path.lstrip("/"))
    if "/" in database:
        raise UsageError(f"database name {database!r} in the URL contains '/'")
    try:
        port = parts.port or DEFAULT_PORTS[engine]
    except ValueError as exc:
        raise UsageError(f"bad port in database URL: {exc}") from None
    return DatabaseUrl(
        engine=engine,
        host=host or ("localhost" if socket else "127.0.0.1"),
        port=port,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=database,
        socket=socket,
        params=options(engine, query.items()),
    )


def sqlite_url(text: str, parts) -> DatabaseUrl:
    """``sqlite:///absolute/path`` or ``sqlite:relative/path`` (from the current folder)."""
    path = unquote(parts.path)
    if parts.netloc not in ("", "localhost"):
        raise UsageError(f"a SQLite URL names a file on this machine, not host {parts.netloc!r}",
                         hint="write sqlite:///absolute/path/to/file.db")
    if parts.query or parts.fragment:
        raise UsageError(f"{text!r}: a SQLite URL takes no '?' or '#' part",
                         hint="write sqlite:///absolute/path/to/file.db")
    if not path or path.strip("/") in ("", ":memory:"):
        raise UsageError(f"{text!r} names no SQLite database file",
                         hint="write sqlite:///absolute/path/to/file.db")
    if path.startswith("/"):
        path = "/" + path.lstrip("/")
    return DatabaseUrl(engine="sqlite", host="", port=0, user="",
                       database=os.path.normpath(os.path.abspath(path)))


def from_option(value: str | None, *, env: str = "SYNCO_DB_URL", need_name: bool = True) -> DatabaseUrl:
    """The URL from a command-line value, else from the environment variable ``env``."""
    text = value or os.environ.get(env, "")
    if not text:
        raise UsageError("no database URL given",
                         hint=f"pass --db-url or set {env} (keeps the password out of ps)")
    url = parse(text)
    if need_name and not url.database:
        raise UsageError(f"the database URL {url.redacted} names no database",
                         hint="add the database name after the last '/'")
    return url
