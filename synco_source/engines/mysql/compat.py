"""Errors of the copy's own statements (a CREATE, an INSERT) on the local server.

Such an error is almost always a compatibility problem between the source's server and this one
(a collation, a syntax or a limit one of them lacks), not a connection one: the message names the
object and the statement (shortened), and the hint says so, and that the local database was left
as it was (the copy goes into a shadow database, or the swap rolls back).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pymysql

from ...errors import DatabaseError
from .sql import error_text

# Server errors that are not about the SQL itself: privileges, locks, resources, packet size.
_HINTS = {
    1044: "grant the user of the local URL the privileges docs/mysql.md lists, or use another user",
    1142: "grant the user of the local URL the privileges docs/mysql.md lists, or use another user",
    1143: "grant the user of the local URL the privileges docs/mysql.md lists, or use another user",
    1227: "grant the user of the local URL the privileges docs/mysql.md lists, or use another user",
    1370: "grant the user of the local URL the privileges docs/mysql.md lists, or use another user",
    1153: "raise max_allowed_packet on the local server (the source's statements need more)",
    1021: "free some disk space on the local database server and run again",
    1114: "free some disk space on the local database server and run again",
}
_NOT_COMPATIBILITY = set(_HINTS) | {1045, 1205, 1213, 1135, 1040, 1317}


def shorten(statement: bytes | str, limit: int = 120) -> str:
    """A statement on one line, cut to ``limit`` characters."""
    text = statement.decode("utf-8", "replace") if isinstance(statement, bytes) else statement
    text = " ".join(text[:limit * 4].split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def hint(target: str) -> str:
    return ("the local server does not accept what the source's server produced: a compatibility "
            "problem between the two servers' versions or settings, not a connection one; the "
            f"local database {target!r} was left unchanged")


def error(exc: pymysql.err.Error, what: str, statement: bytes | str, target: str) -> DatabaseError:
    """The DatabaseError for ``exc`` raised by ``statement``; ``compatibility`` in its fields
    tells whether it is one."""
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    if code is None or code >= 2000 or code in _NOT_COMPATIBILITY:  # 2000 and up: the client's own
        return DatabaseError(f"{what}: {error_text(exc)}", hint=_HINTS.get(code))
    return DatabaseError(f"{what}: {error_text(exc)}; the statement: {shorten(statement)}",
                         hint=hint(target), compatibility=True)


@contextlib.contextmanager
def executing(what: str, statement: bytes | str, target: str) -> Iterator[None]:
    """Like ``sql.failing``, for one statement of the copy into the shadow of ``target``."""
    try:
        yield
    except pymysql.err.Error as exc:
        raise error(exc, what, statement, target) from None
    except OSError as exc:
        raise DatabaseError(f"{what}: {exc}") from None
