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
