"""Database URLs: ``mysql://user:password@host:port/name?socket=/path``.

One parser for both programs. Schemes name the engine: ``mysql``, ``mariadb`` (the same engine),
``postgresql``/``postgres``/``pgsql``. Query parameters: ``socket`` (or ``unix_socket``) for a Unix
socket, ``charset``. User and password are percent-decoded, so ``p%40ss`` is ``p@ss``.
"""

from __future__ import annotations

import dataclasses
import os
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .errors import UsageError

ENGINES = {"mysql": "mysql", "mariadb": "mysql", "postgresql": "postgresql",
           "postgres": "postgresql", "pgsql": "postgresql"}
DEFAULT_PORTS = {"mysql": 3306, "postgresql": 5432}


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
        """The URL without its password, for messages."""
        where = f"socket {self.socket}" if self.socket else f"{self.host}:{self.port}"
        return f"{self.engine}://{quote(self.user)}@{where}/{self.database}"

    def with_database(self, name: str) -> "DatabaseUrl":
        return dataclasses.replace(self, database=name)


def parse(text: str) -> DatabaseUrl:
    """Parse a database URL, raising UsageError with the reason when it is not one."""
    parts = urlsplit(text.strip())
    engine = ENGINES.get(parts.scheme.lower())
    if engine is None:
        known = ", ".join(sorted(ENGINES))
        what = parts.scheme or "no scheme"
        if parts.scheme.startswith("sqlite"):
            raise UsageError(f"SQLite databases are not supported yet (URL scheme {parts.scheme!r})",
                             hint="use a MySQL, MariaDB or PostgreSQL database")
        raise UsageError(f"unsupported database URL ({what}); known schemes: {known}",
                         hint="write it like mysql://user:password@host:3306/name")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    socket = query.pop("socket", "") or query.pop("unix_socket", "")
    database = unquote(parts.path.lstrip("/"))
    if "/" in database:
        raise UsageError(f"database name {database!r} in the URL contains '/'")
    try:
        port = parts.port or DEFAULT_PORTS[engine]
    except ValueError as exc:
        raise UsageError(f"bad port in database URL: {exc}") from None
    return DatabaseUrl(
        engine=engine,
        host=parts.hostname or ("localhost" if socket else "127.0.0.1"),
        port=port,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=database,
        socket=socket,
        params=tuple(sorted(query.items())),
    )


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
