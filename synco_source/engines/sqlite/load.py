"""The load side: fill ``<file>.synco-new`` next to the target, then swap it in with one rename,
keeping the replaced file as ``<file>.synco-prev`` (a hard link made before the rename, so the
target path never goes missing: at any instant it is the old file or the new one).

One run per target: an exclusive ``flock`` on ``<file>.synco-lock`` (gone with the process, also
when it was killed). Its holder removes what a killed run left: a shadow file (the swap never
happened) and a half-done restore. Before the swap the old file is checkpointed and closed; WAL
side files (``-wal``, ``-shm``) still there after that mean another program has the database
open, and the swap is refused, nothing changed (docs/sqlite.md).
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import sqlite3
import time
from pathlib import Path

from ...dburl import DatabaseUrl
from ...errors import DatabaseError, LocalIOError
from ..common import fault_point, no_previous_copy, no_sigint
from .dump import insert_head
from .sql import check_file, close_quietly, connect, error_text, failing, ql, rows, text

SHADOW, PREV, SWAP, LOCK = ".synco-new", ".synco-prev", ".synco-swap", ".synco-lock"
SIDE = ("-wal", "-shm", "-journal")
RUN_LOCK_WAIT = 3.0


def sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def remove(path: Path) -> None:
    """Remove a database file and its side files (those that exist)."""
    for name in [path] + [sibling(path, s) for s in SIDE]:
        try:
            name.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise LocalIOError(f"cannot remove {name}: {exc.strerror}") from None


def _sync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class RunLock:
    """An exclusive flock on ``<file>.synco-lock``; the file is removed when released (a waiter
    that locked the removed file sees that and tries again)."""

    def __init__(self, target: Path) -> None:
        self.path = sibling(target, LOCK)
        self.fd: int | None = None

    def take(self) -> None:
        deadline = time.monotonic() + RUN_LOCK_WAIT
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise LocalIOError(f"cannot create the lock file {self.path}: {exc.strerror}",
                                   hint="the target's folder must be writable") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise LocalIOError(f"cannot lock {self.path}: {exc.strerror}") from None
                if time.monotonic() >= deadline:
                    target = self.path.name[:-len(LOCK)]
                    raise DatabaseError(f"another synco run is importing into or restoring {target}; "
                                        "nothing was changed",
                                        hint="wait for it to finish, or stop it, and run again") from None
                time.sleep(0.1)
                continue
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                return
            os.close(fd)  # locked a file its holder removed meanwhile

    def release(self) -> None:
        if self.fd is not None:
            try:
                self.path.unlink()
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None


def recover_files(target: Path) -> list[str]:
    """Undo or finish what a killed run left (the caller holds the run lock); what was done."""
    notes = []
    shadow, prev, swap = (sibling(target, s) for s in (SHADOW, PREV, SWAP))
    if swap.exists():  # a restore killed between its two renames (or before the first)
        if prev.exists() or not target.exists():
            remove(swap)
        else:
            os.replace(swap, prev)
            notes.append(f"finished the restore of {target.name} an earlier run began")
    if shadow.exists():
        remove(shadow)
        notes.append(f"removed {shadow.name}, left by an earlier run that was stopped before its swap")
    if prev.exists() and target.exists() and os.path.samefile(prev, target):
        prev.unlink()  # the swap was killed between its link and its rename: no previous copy
    return notes


def quiesce(target: Path, what: str) -> None:
    """Checkpoint and close the target; refuse (nothing changed) when another program has it
    open: its WAL side files outlive our connection then, or it holds a write lock."""
    if not target.exists():
        return
    check_file(str(target))
    conn = connect(target)
    try:
        with failing(f"{what}: cannot open {target}"):
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # rolls back a hot journal
            mode = text(rows(conn, "PRAGMA journal_mode")[0][0]).lower()
            if mode == "wal":
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            else:
                conn.execute("BEGIN EXCLUSIVE")  # no writer is half-way
                conn.execute("ROLLBACK")
    finally:
        conn.close()
    busy = [sibling(target, s).name for s in ("-wal", "-shm") if sibling(target, s).exists()]
    if busy:
        raise DatabaseError(f"{what}: SQLite database {target} is open in another program "
                            f"({' and '.join(busy)} remain after closing it); nothing was changed",
                            hint="stop the application (web server, queue workers, an open sqlite3 "
                                 "shell or IDE) and run again")


def _keep_link(target: Path, prev: Path) -> None:
    """``prev`` becomes the current file too (a hard link; a copy where links are not possible)."""
    try:
        os.link(target, prev)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EMLINK, errno.EOPNOTSUPP):
            raise
        shutil.copy2(target, prev)


def statements(schema: dict) -> tuple[list[str], list[str]]:
    """The schema as SQL: what comes before the rows (file settings, tables) and after them
    (indexes, views, triggers, AUTOINCREMENT counters, the header's version fields)."""
    before = [f"PRAGMA page_size = {int(schema['page_size'])}",
              f"PRAGMA encoding = {ql(schema['encoding'])}",
              f"PRAGMA auto_vacuum = {int(schema['auto_vacuum'])}"]
    before += [t["sql"] for t in schema["tables"]]
    after = [o["sql"] for o in schema["post"]]
    if schema["sequences"]:
        after.append("DELETE FROM sqlite_sequence")
        after += [f"INSERT INTO sqlite_sequence (name, seq) VALUES ({ql(n)}, {int(s)})"
                  for n, s in schema["sequences"]]
    after += [f"PRAGMA user_version = {int(schema['user_version'])}",
              f"PRAGMA application_id = {int(schema['application_id'])}"]
    return before, after


def not_loadable(sql: str, exc: sqlite3.Error) -> DatabaseError:
    statement = " ".join(sql.split())
    statement = statement if len(statement) <= 160 else statement[:157] + "..."
    return DatabaseError(f"cannot run {statement!r}: {error_text(exc)}",
                         hint="the local SQLite is older than the source's or lacks an extension it "
                              "uses (a difference between the two, not a broken download); the "
                              "local database was left unchanged")


def check_engine(schema: dict, what: str) -> None:
    if schema.get("engine") != "sqlite":
        raise DatabaseError(f"cannot {what} a {schema.get('engine')!r} dump into SQLite",
                            hint="download into a database of the same kind as the source")


class Loader:
    """Loads chunks into ``<file>.synco-new``; commit() swaps it in, keeping ``<file>.synco-prev``."""

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self.target = Path(url.database)
        self.shadow = sibling(self.target, SHADOW)
        self.prev = str(sibling(self.target, PREV))
        self.lock = RunLock(self.target)
        self.conn: sqlite3.Connection | None = None
        self.schema: dict | None = None
        self._heads: dict[str, bytes] = {}
        self.notes: list[str] | None = None

    def recover(self) -> list[str]:
        """Take the run lock and clean up what a killed run left; what was done, one line each."""
        if self.notes is None:
            folder = self.target.parent
            if not folder.is_dir():
                raise DatabaseError(f"cannot create SQLite database {self.target}: folder {folder} "
                                    "does not exist", hint="create the folder, or fix the path in the "
                                                           "database URL")
            self.lock.take()
            self.notes = recover_files(self.target)
        return self.notes

    def describe_target(self) -> int:
        """Number of tables in the target file (0: there is none yet)."""
        self.recover()
        if not self.target.exists():
            return 0
        check_file(str(self.target))
        conn = connect(self.target, existing=True)
        try:
            with failing(f"cannot inspect {self.url.redacted}"):
                return rows(conn, "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                                  "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")[0][0]
        finally:
            conn.close()

    def begin(self, schema: dict) -> None:
        check_engine(schema, "load")
        self.recover()
        self.schema = schema
        remove(self.shadow)
        self.conn = connect(self.shadow)
        before, _ = statements(schema)
        with failing(f"cannot create {self.shadow}"):
            # nothing reads the shadow file before the swap, and a failed run deletes it: no journal
            for stmt in ("PRAGMA journal_mode = OFF", "PRAGMA synchronous = OFF"):
                self.conn.execute(stmt)
        self._run(before[:3])
        with failing(f"cannot create {self.shadow}"):
            self.conn.execute("BEGIN")
        self._run(before[3:])
        for table in schema["tables"]:
            self._heads[table["name"]] = insert_head(table)

    def _run(self, statements: list[str]) -> None:
        for sql in statements:
            try:
                self.conn.execute(sql)
            except sqlite3.Error as exc:
                raise not_loadable(sql, exc) from None

    def load(self, table: str, chunk: bytes) -> None:
        head = self._heads.get(table)
        if head is None:
            raise DatabaseError(f"table {table} is not in the dump's schema")
        if not chunk.startswith(head):
            raise DatabaseError(f"a chunk of table {table} is not an INSERT into that table")
        try:
            # one statement (sqlite3 refuses more), whose literals give every value its own class
            self.conn.execute(chunk.decode("utf-8"))
        except (sqlite3.Error, UnicodeDecodeError, sqlite3.Warning) as exc:
            raise DatabaseError(f"cannot load rows of table {table} into {self.shadow}: "
                                f"{error_text(exc)}") from None

    def commit(self) -> None:
        schema = self.schema
        if schema is None:
            raise DatabaseError("commit() called before begin()")
        _, after = statements(schema)
        self._run(after)
        with failing(f"cannot write {self.shadow}", hint="check the free disk space"):
            self.conn.execute("COMMIT")
            self.conn.execute("PRAGMA journal_mode = " + ("WAL" if schema["wal"] else "DELETE"))
        self.conn.close()
        self.conn = None
        try:
            fd = os.open(self.shadow, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise LocalIOError(f"cannot write {self.shadow}: {exc.strerror}") from None
        what = f"cannot swap {self.shadow.name} in as {self.target}"
        quiesce(self.target, what)
        prev = Path(self.prev)
        # Ctrl-C is honoured until here; a kill anywhere below leaves the old file or the new one
        # at the target path, never neither, and the next run cleans up (recover_files)
        with no_sigint():
            try:
                remove(prev)
                if self.target.exists():
                    _keep_link(self.target, prev)
                fault_point("sqlite-linked")
                os.replace(self.shadow, self.target)
                fault_point("sqlite-replaced")
            except OSError as exc:
                raise LocalIOError(f"{what}: {exc.strerror}") from None
            _sync_dir(self.target.parent)
        self.close()

    def abort(self) -> None:
        try:
            close_quietly(self.conn)
            self.conn = None
            if self.lock.fd is not None:
                remove(self.shadow)
        finally:
            self.close()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.lock.release()


def restore(url: DatabaseUrl) -> str:
    """Swap ``<file>.synco-prev`` back in; the current file becomes the previous one."""
    target = Path(url.database)
    prev, swap = sibling(target, PREV), sibling(target, SWAP)
    lock = RunLock(target)
    lock.take()
    try:
        notes = recover_files(target)
        if not prev.exists():
            raise no_previous_copy(str(target), str(prev))
        what = f"cannot swap {prev.name} back in as {target}"
        quiesce(target, what)
        quiesce(prev, what)
        with no_sigint():
            try:
                remove(swap)
                if target.exists():
                    _keep_link(target, swap)
                    os.replace(prev, target)
                    fault_point("sqlite-restore-replaced")
                    os.replace(swap, prev)
                else:
                    os.replace(prev, target)
            except OSError as exc:
                raise LocalIOError(f"{what}: {exc.strerror}") from None
            _sync_dir(target.parent)
        return "; ".join(notes + [f"restored the previous copy of {target}; the replaced one is now {prev.name}"])
    finally:
        lock.release()

