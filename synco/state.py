"""What the client remembers between runs about the local files it placed (not a cache of data).

A pull compares each local file with the manifest by size and SHA-256. Hashing a large uploads
folder on every pull costs a full read of it, so after each pull the client records, per target
folder, ``path -> (size, mtime_ns, inode, ctime_ns) -> sha256`` of the files it checked or placed.
The next plan trusts a recorded hash only while all four still match: any write to a file changes
its ctime (which no user tool can set back), a replaced file has another inode, so a changed file
is always hashed again.

The file lives under platformdirs' user state folder (``$XDG_STATE_HOME/synco`` on Linux), one
versioned JSON document per target folder, named by a hash of the folder's real path and written
atomically (a temporary file renamed over the old one). It is only an accelerator: a missing,
unreadable, corrupt or foreign file is ignored, and a failure to write it never fails a pull.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import time
from pathlib import Path

import platformdirs

VERSION = 1


def state_dir() -> Path:
    """The client's state folder (moved by $XDG_STATE_HOME)."""
    return Path(platformdirs.user_state_dir("synco", appauthor=False))


def _key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


class FileHashes:
    """The recorded hashes of one target folder; ``lookup`` before hashing, ``record`` after."""

    def __init__(self, root: Path, folder: Path | None = None) -> None:
        self.root = os.path.realpath(root)
        name = hashlib.sha256(os.fsencode(self.root)).hexdigest()[:32]
        self.path = (folder or state_dir() / "files") / f"{name}.json"
        self.entries: dict[str, list] = {}
        self.hits = 0
        try:
            doc = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return
        if (isinstance(doc, dict) and doc.get("version") == VERSION and doc.get("root") == self.root
                and isinstance(doc.get("files"), dict)):
            self.entries = {path: value for path, value in doc["files"].items()
                            if isinstance(value, list) and len(value) == 5}

    def lookup(self, rel: str, st: os.stat_result) -> str | None:
        """The recorded SHA-256 of ``rel`` if the file is still the one it was recorded for."""
        value = self.entries.get(rel)
        if value is None or not stat.S_ISREG(st.st_mode) or value[:4] != _key(st):
            return None
        self.hits += 1
        return value[4]

    def record(self, rel: str, st: os.stat_result, sha256: str) -> None:
        self.entries[rel] = _key(st) + [sha256]

    def save(self, keep: set[str] | None = None) -> None:
        """Write the record (only the paths in ``keep`` when given); errors are ignored."""
        if keep is not None:
            self.entries = {k: v for k, v in self.entries.items() if k in keep}
        body = json.dumps({"version": VERSION, "root": self.root, "files": self.entries},
                          separators=(",", ":")).encode()
        tmp = None
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
            os.replace(tmp, self.path)
            tmp = None
        except OSError:
            pass
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass


# ---------------------------------------------------------------- files owed after a swap
#
# The database is swapped in before the file sets are put in place (the swap is the step that can
# be refused: a lock, a broken view). A run killed between the two leaves the new database with
# the old files. Before the swap, a note per target folder records that its files are owed; each
# set's commit removes its note. The next run into that folder finds the note, says what happened,
# and brings the files up to date (its plan compares every file with the manifest anyway).

def _pending_path(root: Path, folder: Path | None = None) -> Path:
    name = hashlib.sha256(os.fsencode(os.path.realpath(root))).hexdigest()[:32]
    return (folder or state_dir() / "files") / f"{name}.pending"


def owe_files(root: Path, database: str, folder: Path | None = None) -> None:
    """Note that ``root``'s files are owed once ``database`` is replaced (errors ignored)."""
    path = _pending_path(root, folder)
    body = json.dumps({"version": VERSION, "root": os.path.realpath(root), "database": database,
                       "since": int(time.time())}).encode()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        pass


def files_paid(root: Path, folder: Path | None = None) -> None:
    """The files of ``root`` are in place: drop its note."""
    try:
        _pending_path(root, folder).unlink()
    except OSError:
        pass


def owed_files(root: Path, folder: Path | None = None) -> dict | None:
    """The note of a run that replaced a database but did not put ``root``'s files in place."""
    try:
        doc = json.loads(_pending_path(root, folder).read_bytes())
    except (OSError, ValueError):
        return None
    if (isinstance(doc, dict) and doc.get("version") == VERSION
            and doc.get("root") == os.path.realpath(root) and isinstance(doc.get("database"), str)
            and isinstance(doc.get("since"), int)):
        return doc
    return None
