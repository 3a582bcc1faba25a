"""The local chunk cache: what a pull verified once is not fetched again (docs/cache.md).

Entries are keyed by the plaintext SHA-256 a manifest gives for each chunk (docs/FORMAT.md §6.1),
laid out like git objects (``objects/ab/cdef…``), each one byte of kind (``Z`` a Zstandard frame,
``R`` raw) followed by the chunk. Rules that make it safe to share between pulls:

- an entry is written to a temporary file in its folder and renamed into place, so a reader sees a
  whole entry or none; two pulls writing the same entry write the same bytes;
- every read decompresses (capped at the manifest's size) and checks size and SHA-256: a wrong
  entry is deleted and reported as a miss, so the chunk is fetched again and never imported;
- a reader treats an entry that vanishes (evicted by another pull) as a miss;
- least recently used entries go first when the cache is over its size (a hit sets the entry's
  mtime); eviction and ``clear`` hold an exclusive ``flock`` on ``lock``;
- any OSError while writing (disk full, read-only folder) turns the cache off for the rest of the
  run with one warning: a pull never fails because of its cache.

``partial/`` holds the first bytes of large objects whose transfer stopped, per object name and
session, so the next run continues them with a ``Range`` request.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platformdirs
import zstandard

from synco_source import format
from synco_source.errors import IntegrityError, UsageError

GiB = 1 << 30
MIN_DEFAULT_SIZE = 2 * GiB
COPIES = 3                  # the default keeps this many copies of the largest database pulled
STALE_TEMP_SECONDS = 3600   # temporary files older than this are leftovers of a killed pull
EVICT_EVERY = 64 << 20      # bytes written between two checks of the total size
ZSTD_LEVEL = 1              # only for chunks that did not arrive compressed already
KIND_ZSTD, KIND_RAW = b"Z", b"R"
HEX64 = re.compile(r"^[0-9a-f]{64}$")
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.I)


def default_root() -> Path:
    return Path(platformdirs.user_cache_dir("synco")) / "chunks"


def parse_size(text: str) -> int:
    """``"5G"``, ``"500M"``, ``"2.5GiB"``, ``"0"`` → bytes (binary units)."""
    match = SIZE_RE.match(str(text))
    if not match:
        raise UsageError(f"cache size {text!r} is not a size", hint="write it like 5G, 500M or 0")
    number, unit = match.groups()
    return int(float(number) * (1 << (10 * " kmgt".index(unit.lower() or " "))))


def configured_size() -> int | None:
    """The cache size from ``$SYNCO_CACHE_SIZE``, else from ``[cache] size`` in the user's
    ``config.toml`` (platformdirs' config folder); None when neither says."""
    text = os.environ.get("SYNCO_CACHE_SIZE")
    if text:
        return parse_size(text)
    path = Path(platformdirs.user_config_dir("synco")) / "config.toml"
    try:
        import tomllib

        with open(path, "rb") as fh:
            value = tomllib.load(fh).get("cache", {}).get("size")
    except (OSError, ValueError):
        return None
    return parse_size(value) if value is not None else None


@dataclass
class Stats:
    root: Path
    entries: int
    size: int        # bytes on disk of the entries
    partial: int     # bytes of partially received objects
    limit: int


class ChunkCache:
    """One process's handle on the cache folder. Thread-safe: the fetch threads share it."""

    def __init__(self, root: Path | None = None, *, max_size: int | None = None,
                 warn: Callable[[str], None] = lambda message: None) -> None:
        self.root = root or default_root()
        self.objects = self.root / "objects"
        self.partial_dir = self.root / "partial"
        self.max_size = max_size
        self.warn = warn
        self.writable = max_size != 0  # a size of 0: read what is there, keep nothing new
        self.lock = threading.Lock()
        self.written = 0
        self.since_evict = 0
        self._ready = False

    # ------------------------------------------------------------ set-up and failure

    def _prepare(self) -> bool:
        """Create the folders (0700) on first write; False (and the cache off) when we cannot."""
        if self._ready:
            return True
        try:
            for folder in (self.root, self.objects, self.partial_dir):
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chmod(folder, 0o700)
            lock = self.root / "lock"
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
        except OSError as exc:
            self._disable(exc)
            return False
        self._ready = True
        return True

    def _disable(self, exc: OSError) -> None:
        with self.lock:
            if not self.writable:
                return
            self.writable = False
        what = "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        self.warn(f"chunk cache in {self.root} not written ({what}); going on without it")

    def path(self, sha256: str) -> Path:
        if not HEX64.match(sha256):
            raise ValueError(f"not a SHA-256: {sha256!r}")
        return self.objects / sha256[:2] / sha256[2:]

    # ------------------------------------------------------------ entries

    def has(self, sha256: str) -> bool:
        """Whether an entry exists (not checked yet); marks it recently used, so an eviction
        during this pull takes other entries first."""
        path = self.path(sha256)
        try:
            os.utime(path)
            return True
        except OSError:
            return path.exists()  # a read-only cache: present, only not marked

    def get(self, sha256: str, size: int) -> bytes | None:
        """The chunk's plaintext, checked; None on a miss, a vanished or a wrong entry (which is
        deleted)."""
        path = self.path(sha256)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            return None
        plain = None
        try:
            if data[:1] == KIND_ZSTD:  # the format's capped reader: a damaged entry is no bomb
                plain = format.decompress(data[1:], size, "cache entry")
            elif data[:1] == KIND_RAW:
                plain = data[1:]
        except IntegrityError:
            plain = None
        if plain is None or len(plain) != size or hashlib.sha256(plain).hexdigest() != sha256:
            self.warn(f"chunk cache entry {sha256[:12]} was damaged; it is removed and fetched again")
            try:
                path.unlink()
            except OSError:
                pass
            return None
        try:
            os.utime(path)
        except OSError:
            pass
        return plain

    def put(self, sha256: str, plain: bytes, packed: bytes | None = None) -> None:
        """Store a verified chunk. ``packed``: a Zstandard frame of it, if one is at hand (the
        sealed object's body), so the first pull does not compress everything again."""
        if not self.writable or not self._prepare():
            return
        path = self.path(sha256)
        if path.exists():
            return
        if packed is None:
            packed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(plain)
        kind, body = (KIND_ZSTD, packed) if len(packed) < len(plain) else (KIND_RAW, plain)
        tmp = None
        try:
            path.parent.mkdir(mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # mode 0600
            with os.fdopen(fd, "wb") as fh:
                fh.write(kind)
                fh.write(body)
            os.replace(tmp, path)
            tmp = None
        except OSError as exc:
            if tmp:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
            self._disable(exc)
            return
        with self.lock:
            self.written += len(body) + 1
            self.since_evict += len(body) + 1
            due = self.max_size is not None and self.since_evict >= min(EVICT_EVERY, self.max_size // 8 or 1)
            if due:
                self.since_evict = 0
        if due:
            self.evict()

    # ------------------------------------------------------------ partial objects

    def partial(self, name: str, session_hex: str) -> "Partial | None":
        """The partial body of object ``name`` of a session, locked for this process; None when
        the cache is off or another pull is receiving the same object."""
        if not self.writable or not self._prepare():
            return None
        path = self.partial_dir / f"{name}.{session_hex[:32]}"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            self._disable(exc)
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        return Partial(self, path, fd)

    # ------------------------------------------------------------ size

    def note_database_size(self, size: int) -> None:
        """Remember the largest database pulled: the default size keeps a few copies of it."""
        if not self.writable or not self._prepare():
            return
        state = self._state()
        if size > state.get("largest", 0):
            state["largest"] = size
            try:
                fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
                with os.fdopen(fd, "w") as fh:
                    json.dump(state, fh)
                os.replace(tmp, self.root / "state.json")
            except OSError as exc:
                self._disable(exc)

    def _state(self) -> dict:
        try:
            state = json.loads((self.root / "state.json").read_text())
            return state if isinstance(state, dict) else {}
        except (OSError, ValueError):
            return {}

    def limit(self) -> int:
        if self.max_size is not None:
            return self.max_size
        return max(MIN_DEFAULT_SIZE, COPIES * int(self._state().get("largest", 0)))

    def _scan(self) -> tuple[list[tuple[float, int, Path]], int]:
        """(mtime, size, path) of every entry, and the bytes of partial objects; removes the
        temporary files a killed pull left."""
        entries = []
        now = time.time()
        try:
            shards = list(os.scandir(self.objects))
        except OSError:
            shards = []
        for shard in shards:
            try:
                files = list(os.scandir(shard.path))
            except OSError:
                continue
            for entry in files:
                try:
                    st = entry.stat()
                except OSError:
                    continue
                if entry.name.startswith(".tmp-"):
                    if now - st.st_mtime > STALE_TEMP_SECONDS:
                        _unlink(entry.path)
                    continue
                entries.append((st.st_mtime, st.st_size, Path(entry.path)))
        partial = 0
        try:
            for entry in os.scandir(self.partial_dir):
                try:
                    partial += entry.stat().st_size
                except OSError:
                    pass
        except OSError:
            pass
        return entries, partial

    def stats(self) -> Stats:
        entries, partial = self._scan()
        return Stats(self.root, len(entries), sum(size for _, size, _ in entries), partial,
                     self.limit())

    def evict(self) -> int:
        """Delete least recently used entries until the cache is within its size; returns the
        bytes freed. Partial objects older than a day go too."""
        if not self.root.is_dir():
            return 0
        limit = self.limit()
        freed = 0
        try:
            lock = self._locked().__enter__()
        except OSError:
            return 0  # a read-only cache: nothing this process may delete
        try:
            entries, _ = self._scan()
            total = sum(size for _, size, _ in entries)
            if total > limit:
                for _, size, path in sorted(entries, key=lambda e: e[0]):
                    if total <= limit * 0.9:
                        break
                    if _unlink(path):
                        total -= size
                        freed += size
            self._drop_old_partials(86400)
        finally:
            lock.__exit__(None, None, None)
        return freed

    def _drop_old_partials(self, age: float) -> None:
        now = time.time()
        try:
            for entry in os.scandir(self.partial_dir):
                try:
                    if now - entry.stat().st_mtime > age:
                        _unlink(entry.path)
                except OSError:
                    pass
        except OSError:
            pass

    def clear(self) -> Stats:
        """Empty the cache; returns what it held."""
        before = self.stats()
        if self.root.is_dir():
            with self._locked():
                for _, _, path in self._scan()[0]:
                    _unlink(path)
                self._drop_old_partials(-1)
                _unlink(self.root / "state.json")
        return before

    def _locked(self):
        return _FileLock(self.root / "lock")


class Partial:
    """The received start of one sealed object, appended to as bytes arrive (they survive a
    kill -9: the kernel keeps what was written). Locked while open."""

    def __init__(self, cache: ChunkCache, path: Path, fd: int) -> None:
        self.cache, self.path, self.fd = cache, path, fd
        self.failed = False

    def read(self) -> bytes:
        try:
            os.lseek(self.fd, 0, os.SEEK_SET)
            chunks = []
            while block := os.read(self.fd, 1 << 20):
                chunks.append(block)
            return b"".join(chunks)
        except OSError:
            return b""

    def reset(self) -> None:
        """Forget what was received (the server restarted the body, or it did not open)."""
        try:
            os.ftruncate(self.fd, 0)
        except OSError:
            self.failed = True

    def append(self, data: bytes) -> None:
        if self.failed:
            return
        try:
            os.lseek(self.fd, 0, os.SEEK_END)
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]
        except OSError as exc:
            # a partial that cannot grow is useless: drop it, the transfer itself goes on
            self.failed = True
            self.reset()
            self.cache._disable(exc)

    def done(self) -> None:
        """The object arrived whole: the partial is not needed any more."""
        _unlink(self.path)
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class _FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self):
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)  # releases the lock


def _unlink(path) -> bool:
    try:
        os.unlink(path)
        return True
    except OSError:
        return False
