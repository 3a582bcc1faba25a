"""A publishing session: its folder of sealed objects, its meta state machine, its cleanup.

Only sealed objects are ever written (no plaintext of the dump, no key). Every object is written to
a temporary name in the same folder and renamed into place, so a reader sees a whole object or
none; the meta object is republished the same way after each state change, with a growing ``seq``.
Chunks are sealed and written by a small pool of worker threads with a bounded window, so memory
stays flat whatever the database size.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from . import __version__, crypto, format
from .errors import LocalIOError


class Session:
    def __init__(self, parent: Path, base_url: str, ttl: float,
                 recipient: bytes | None = None) -> None:
        """A new session in ``parent/<session id>/``, served at ``base_url<session id>/``. With a
        ``recipient`` (an X25519 public key) the token carries no key: the session key is wrapped
        to the recipient in the object ``key`` (docs/FORMAT.md §9)."""
        self._begin(ttl, recipient)
        self.folder = folder = parent / self.session_id.hex()
        self.token = self._token(base_url.rstrip("/") + "/" + self.session_id.hex() + "/")
        try:
            (folder / format.OBJECT_DIR).mkdir(parents=True)
        except OSError as exc:
            raise LocalIOError(f"cannot create the session folder in {parent}: {exc.strerror}",
                               hint="choose a folder this user may write to") from None
        write_marker(folder, self.expires, os.getpid())  # first: a killed run can be swept
        for where in (folder, folder / format.OBJECT_DIR):
            # an empty index page, so a web server with listings on shows nothing here
            (where / "index.html").write_bytes(b"")
        if recipient is not None:
            self._write(format.KEY_PATH,
                        crypto.wrap_session_key(self.key, self.session_id, recipient))

    def _begin(self, ttl: float, recipient: bytes | None) -> None:
        """The state every session has, wherever its objects go (a folder here, a bucket in
        s3.S3Session): keys, times, the meta's counter."""
        self.key = crypto.new_session_key()
        self.session_id = crypto.new_session_id()
        self.crypto = format.SessionCrypto(self.key, self.session_id)
        self.recipient = recipient
        self.created = time.time()
        self.expires = self.created + ttl
        self.seq = 0
        self.state = "created"
        self._meta_lock = threading.Lock()
        self._written: set[str] = set()
        self._written_lock = threading.Lock()
        self.closed = False

    def _token(self, url: str) -> format.Token:
        if self.recipient is None:
            return format.Token(url=url, session_id=self.session_id, key=self.key)
        return format.Token(url=url, session_id=self.session_id,
                            recipient=crypto.recipient_tag(self.recipient))

    @property
    def id_hex(self) -> str:
        return self.session_id.hex()

    def _write(self, relpath: str, blob: bytes) -> None:
        if self.closed:
            raise LocalIOError("the session was closed")
        target = self.folder / relpath
        try:
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except OSError as exc:
            raise LocalIOError(f"cannot write {target}: {exc.strerror}") from None

    def write_object(self, name: str, blob: bytes) -> None:
        with self._written_lock:
            if name in self._written:
                return
            self._written.add(name)
        self._write(format.object_path(name), blob)

    def publish_meta(self, state: str, *, message: str = "", progress: dict | None = None,
                     sets: list[dict] | None = None) -> None:
        with self._meta_lock:
            self.seq += 1
            self.state = state
            meta = {"format": format.FORMAT_VERSION, "session": self.id_hex, "seq": self.seq,
                    "state": state, "created": int(self.created), "expires": int(self.expires),
                    "synco": __version__}
            if message:
                meta["message"] = message
            if progress:
                meta["progress"] = progress
            if sets is not None:
                meta["sets"] = sets
            self._write_meta(self.crypto.seal_meta(meta))

    def _write_meta(self, blob: bytes) -> None:
        self._write(format.META_PATH, blob)

    def required_objects(self, sets: list[dict]) -> dict[str, tuple[str, ...]]:
        """Every object a whole download of the ready session fetches, with the sets each
        belongs to: the wrapped key (no set), each set's manifest (read back and opened) and
        the chunks it names. The parts of a database published while dumping are not among
        them: a client that comes after the dump never asks for them."""
        objects: dict[str, set[str]] = {}
        if self.recipient is not None:
            objects[format.KEY_PATH] = set()
        for entry in sets:
            name = entry["name"]
            blob = (self.folder / format.object_path(entry["manifest"])).read_bytes()
            manifest = self.crypto.open_manifest(entry["manifest"], blob, name)
            chunks = ([c for t in manifest.get("tables", []) for c in t["chunks"]]
                      + [c for e in manifest.get("entries", []) for c in e.get("chunks", [])])
            objects.setdefault(entry["manifest"], set()).add(name)
            for chunk in chunks:
                objects.setdefault(chunk["id"], set()).add(name)
        return {name: tuple(sorted(owners)) for name, owners in objects.items()}

    def remove(self) -> bool:
        """Delete everything published; True when the folder is gone. A sealing thread may still
        be finishing one write when this runs (it writes nothing once ``closed`` is set), so look
        again until it is gone."""
        self.closed = True
        for _ in range(50):
            shutil.rmtree(self.folder, ignore_errors=True)
            if not os.path.lexists(self.folder):
                return True
            time.sleep(0.1)
        return False

    def mark_kept(self) -> None:
        """Kept on exit (--keep): no process serves it any more, a later run removes it once its
        time limit has passed."""
        write_marker(self.folder, self.expires, 0)

    def leftovers(self) -> list[str]:
        """What is still in the session folder (relative paths), after a ``remove`` that failed."""
        if not os.path.lexists(self.folder):
            return []
        return sorted(p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*")) or ["."]


class ChunkStore:
    """Seal and write chunks on worker threads, at most ``window`` in flight."""

    def __init__(self, session: Session, workers: int = 2, window: int = 6) -> None:
        self.session = session
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="seal")
        self.window: deque[Future] = deque()
        self.limit = window
        self.lock = threading.Lock()
        self.stored_bytes = 0
        self.count = 0

    def _seal(self, plaintext: bytes) -> dict:
        digest = hashlib.sha256(plaintext).digest()
        name, blob = self.session.crypto.seal_chunk(plaintext, digest)
        self.session.write_object(name, blob)
        with self.lock:
            self.stored_bytes += len(blob)
            self.count += 1
        return {"id": name, "sha256": digest.hex(), "size": len(plaintext)}

    def put(self, plaintext: bytes) -> Future:
        while len(self.window) >= self.limit:
            self.window.popleft().result()
        future = self.pool.submit(self._seal, plaintext)
        self.window.append(future)
        return future

    def drain(self) -> None:
        while self.window:
            self.window.popleft().result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "ChunkStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------- leftovers of killed runs

# A session folder holds a small plaintext marker, ``.synco-expires``: "<expires> <pid> <host>"
# (unix time, the serving process or 0 once it has exited with --keep, a short hash of the host
# name). It says nothing but when the session ends and who serves it, so that a later run can
# remove the session of a run that was killed (kill -9, power loss) without the key. The built-in
# server never serves it (only meta and o/<name>), and it is written 0600 so that a web server
# running as another user cannot serve it from a --publish-dir either.
MARKER = ".synco-expires"
PRIVATE_PREFIX = "synco-source-"
SESSION_DIR_RE = re.compile(r"[0-9a-f]{32}")
ORPHAN_AGE = 3600  # a private folder with no session in it is removed after this long


def host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:12]


def write_marker(folder: Path, expires: float, pid: int) -> None:
    """Write (or rewrite) the session folder's marker, atomically."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{int(expires)} {pid} {host_tag()}\n")
    os.replace(tmp, folder / MARKER)


def read_marker(folder: Path) -> tuple[int, int, str] | None:
    """(expires, pid, host tag) of a session folder, or None if it has no valid marker."""
    try:
        fd = os.open(folder / MARKER, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        text = fh.read(200).decode("ascii", "replace")
    match = re.fullmatch(r"(\d{1,12}) (\d{1,10}) ([0-9a-f]{12})\n?", text)
    return (int(match.group(1)), int(match.group(2)), match.group(3)) if match else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: alive
    return True


def stale_reason(folder: Path, now: float | None = None) -> str | None:
    """Why the session in ``folder`` is a leftover (its time limit passed, or its process on this
    host is gone), or None: not a session folder, or one still being served."""
    if not SESSION_DIR_RE.fullmatch(folder.name):
        return None
    try:
        if not (os.path.isdir(folder) and not os.path.islink(folder)
                and os.path.isdir(folder / format.OBJECT_DIR)):
            return None
    except OSError:
        return None
    marker = read_marker(folder)
    if marker is None:
        return None  # not ours to judge: no marker, no expiry known
    expires, pid, host = marker
    now = time.time() if now is None else now
    if now >= expires:
        return f"its time limit passed at {time.strftime('%Y-%m-%d %H:%M', time.localtime(expires))}"
    if pid and host == host_tag() and pid != os.getpid() and not _alive(pid):
        return f"its process {pid} is gone"
    return None


def _sessions_in(parent: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(parent)
                if SESSION_DIR_RE.fullmatch(e.name) and e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def sweep(publish_dir: Path | None, say) -> int:
    """Remove the sessions of earlier runs that were killed or outlived their time limit: in
    ``publish_dir`` (the --publish-dir of this run) and in this user's private temporary folders
    (``synco-source-*`` of listening runs). Says what it removes; returns how many."""
    removed = 0
    if publish_dir is not None:
        for folder in _sessions_in(publish_dir):
            why = stale_reason(folder)
            if why and _remove_tree(folder):
                say(f"removed session {folder.name} of an earlier run from {publish_dir}: {why}")
                removed += 1
    temp = Path(tempfile.gettempdir())
    try:
        private = [Path(e.path) for e in os.scandir(temp) if e.name.startswith(PRIVATE_PREFIX)
                   and e.is_dir(follow_symlinks=False) and e.stat(follow_symlinks=False).st_uid
                   == os.getuid()]
    except OSError:
        private = []
    for folder in private:
        sessions = _sessions_in(folder)
        if sessions:
            reasons = [stale_reason(s) for s in sessions]
            if not all(reasons):
                continue
            why = reasons[0]
        else:
            try:
                if time.time() - folder.stat().st_mtime < ORPHAN_AGE or any(folder.iterdir()):
                    continue
            except OSError:
                continue
            why = "it holds no session"
        if _remove_tree(folder):
            say(f"removed {folder} of an earlier run: {why}")
            removed += 1
    return removed


def _remove_tree(folder: Path) -> bool:
    shutil.rmtree(folder, ignore_errors=True)
    return not os.path.lexists(folder)
