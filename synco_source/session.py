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
import shutil
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
        self.key = crypto.new_session_key()
        self.session_id = crypto.new_session_id()
        self.folder = folder = parent / self.session_id.hex()
        self.crypto = format.SessionCrypto(self.key, self.session_id)
        url = base_url.rstrip("/") + "/" + self.session_id.hex() + "/"
        self.recipient = recipient
        if recipient is None:
            self.token = format.Token(url=url, session_id=self.session_id, key=self.key)
        else:
            self.token = format.Token(url=url, session_id=self.session_id,
                                      recipient=crypto.recipient_tag(recipient))
        self.created = time.time()
        self.expires = self.created + ttl
        self.seq = 0
        self.state = "created"
        self._meta_lock = threading.Lock()
        self._written: set[str] = set()
        self._written_lock = threading.Lock()
        self.closed = False
        try:
            (folder / format.OBJECT_DIR).mkdir(parents=True)
        except OSError as exc:
            raise LocalIOError(f"cannot create the session folder in {parent}: {exc.strerror}",
                               hint="choose a folder this user may write to") from None
        for where in (folder, folder / format.OBJECT_DIR):
            # an empty index page, so a web server with listings on shows nothing here
            (where / "index.html").write_bytes(b"")
        if recipient is not None:
            self._write(format.KEY_PATH,
                        crypto.wrap_session_key(self.key, self.session_id, recipient))

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
            self._write(format.META_PATH, self.crypto.seal_meta(meta))

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
