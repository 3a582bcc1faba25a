"""The one error tree of synco, shared by both programs.

Every error a user can cause or meet is a subclass of :class:`SyncoError`. The class docstring's
first line is the message template (``str.format`` with the keyword arguments given to the
constructor), ``hint`` says what to do, ``exit_code`` is the process exit status. The CLI layers
catch ``SyncoError`` at the edge and print ``synco: error: <message>`` and ``synco: hint: <hint>``;
anything else is a bug and gets a traceback and exit code 70.

The table of exit codes in the README is generated from these classes (see ``exit_code_table``).
"""

from __future__ import annotations

EXIT_BUG = 70
EXIT_INTERRUPTED = 130


class SyncoError(Exception):
    """{message}

    Any other failure synco knows about."""

    exit_code = 1
    hint = ""

    def __init__(self, message: str = "", *, hint: str | None = None, **fields: object) -> None:
        self.fields = dict(fields, message=message)
        template = (type(self).__doc__ or "{message}").strip().splitlines()[0]
        try:
            text = template.format(**self.fields)
        except (KeyError, IndexError):
            text = message or template
        if message and "{message}" not in template:
            text = f"{text}: {message}"
        if hint is not None:
            self.hint = hint
        else:
            self.hint = type(self).hint.format(**self.fields) if type(self).hint else ""
        super().__init__(text)


class UsageError(SyncoError):
    """{message}

    Bad arguments, options or settings."""

    exit_code = 2


class TokenError(SyncoError):
    """malformed token: {message}

    The token is not one: mistyped, cut off, or something else pasted."""

    exit_code = 3
    hint = "copy the whole 'synco download <token>' line printed by synco-source"


class SessionNotFound(SyncoError):
    """no session at {url}: the token has expired or synco-source was stopped

    The server answers, but the session is gone (time limit, Ctrl-C)."""

    exit_code = 4
    hint = "run synco-source again on the server and use the new token"


class ServerUnreachable(SyncoError):
    """cannot reach {url}: {message}

    The server cannot be reached, or went away during the download."""

    exit_code = 5
    hint = "check that synco-source is still running and that this machine can reach it"


class IntegrityError(SyncoError):
    """{message}

    An object failed authentication or verification: tampered, truncated, swapped, or the
    token's key belongs to another session."""

    exit_code = 6
    hint = ("the data was altered in transit or the token belongs to another session; "
            "nothing was changed locally, run synco download again")


class SourceFailed(SyncoError):
    """synco-source failed on the server: {message}

    The server reported that it could not produce the session (its message is shown)."""

    exit_code = 7
    hint = "see the messages of synco-source on the server"


class DatabaseError(SyncoError):
    """{message}

    A database could not be reached, read or written."""

    exit_code = 8
    hint = "check the database URL, that the server runs and that the user may connect"


class LocalIOError(SyncoError):
    """{message}

    A local file or folder could not be written: disk full, permissions."""

    exit_code = 9
    hint = "free some disk space or fix the permissions, then run again; nothing was changed"


class UnsupportedFormat(SyncoError):
    """unsupported format: {message}

    The session was written by a synco that speaks another format version."""

    exit_code = 10
    hint = "use the same synco version on both sides"


class Aborted(SyncoError):
    """{message}

    The user said no, or there was no terminal to ask (use --yes)."""

    exit_code = 11


class LocalCopyDiffers(SyncoError):
    """{message}

    synco verify: the local database is no longer what the last import put there (tables named)."""

    exit_code = 12
    hint = "pull again to get the server's copy back, or keep the local edits"


class Interrupted(SyncoError):
    """interrupted; nothing was changed

    Ctrl-C or a signal stopped the program; the local database and files are unchanged."""

    exit_code = EXIT_INTERRUPTED


def exit_code_table() -> list[tuple[int, str, str]]:
    """(exit code, class name, meaning) for every error class: the README's table."""
    rows = []
    seen = set()
    stack = [SyncoError]
    while stack:
        cls = stack.pop()
        stack.extend(reversed(cls.__subclasses__()))
        if cls not in seen:
            seen.add(cls)
            meaning = " ".join((cls.__doc__ or "").split("\n\n", 1)[-1].split())
            rows.append((cls.exit_code, cls.__name__, meaning))
    rows.append((EXIT_BUG, "(bug)", "An unexpected error: run again with --debug and report it."))
    return sorted(rows)
