"""Bringing a file set into a local folder: plan, stage, commit, without ever leaving the folder.

A file already present with the same size and SHA-256 is not downloaded (only its mode and mtime
are set). The others are downloaded into a staging folder inside the target folder (so the final
rename stays on one file system), each written, given its mode and mtime, and only when every file
of every set has arrived and verified are they renamed into place. A failure before that leaves
the target folder exactly as it was. Local files the server does not have are left alone.

Nothing outside the target folder is ever touched (see docs/files.md):

* every path of a manifest is checked first (relative, no ``..``/``.``/empty parts, no NUL or
  backslash, components of at most 255 bytes, at most 4096 bytes in all, no path twice, no file
  that is also a folder of another path, no two paths that this file system would store as one
  because it ignores case or Unicode normalization);
* the folder given by the user is the only place a symbolic link is followed. Below it every
  folder is opened relative to its parent with ``O_NOFOLLOW`` (``openat``), so a folder on a
  path that is a symbolic link stops the run with one line naming it (before anything is
  downloaded, or, if it appears later, before anything goes through it); a race cannot redirect
  a write, because no path string is resolved again after the check;
* a file that is a symbolic link is replaced by a real file (the rename replaces the link
  itself; the file it pointed at is neither read, nor written, nor chmod-ed);
* modes from the manifest are masked to ``0o777``: no setuid, setgid or sticky bit from a server.

Staging folders carry a ``.lock`` file (the owner's pid, held with ``flock``) so that the next run
into the same folder, of any session, can tell the leftovers of a killed run (``sweep``) from the
staging folder of a run still going.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import shutil
import stat
import time
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from synco_source.errors import IntegrityError, LocalIOError, UsageError

from .state import FileHashes

STAGING_PREFIX = ".synco-staging-"
LOCK_NAME = ".lock"
NAME_MAX = 255  # bytes in one path component (Linux, macOS, Windows)
PATH_MAX = 4096  # bytes in a whole path (Linux)
MODE_MASK = 0o777  # permission bits only: no setuid, setgid or sticky bit from a server
YOUNG = 60.0  # seconds: a staging folder without a lock file this young may be just being made

UNSAFE_HINT = ("synco writes no such path (see docs/files.md); nothing was changed locally: "
               "rename the file on the server, or leave the set out with --only")

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_PATH = getattr(os, "O_PATH", 0)


def safe_relpath(text: object) -> PurePosixPath:
    """A manifest path that can only name something below the target folder."""
    return PurePosixPath(_checked(text))


def _checked(text: object) -> str:
    if not isinstance(text, str):
        raise IntegrityError(f"manifest lists a path that is not a string: {text!r}")
    problem = ""
    if not text or text.startswith("/"):
        problem = "is empty" if not text else "is absolute"
    elif "\0" in text:
        problem = "contains a NUL byte"
    elif "\\" in text:
        problem = "contains a backslash"
    elif any(part in ("..", ".", "") for part in text.split("/")):
        problem = "has an empty, '.' or '..' part"
    else:
        try:
            raw = os.fsencode(text)
        except UnicodeError:
            problem = "is not a valid file name"
        else:
            if len(raw) > PATH_MAX:
                problem = f"is longer than {PATH_MAX} bytes"
            elif any(len(part) > NAME_MAX for part in raw.split(b"/")):
                problem = f"has a name longer than {NAME_MAX} bytes"
    if problem:
        raise IntegrityError(f"manifest lists an unsafe path {_short(text)} (it {problem})",
                             hint=UNSAFE_HINT)
    return text


def _short(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:60] + "..." + text[-10:])


def safe_url_path(text: str) -> str:
    """A public file's URL path: relative, without scheme, host, query or '..'."""
    parts = urlsplit(text)
    if (parts.scheme or parts.netloc or parts.query or parts.fragment or text.startswith("/")
            or any(p in ("..", ".", "") for p in unquote(parts.path).split("/"))):
        raise IntegrityError(f"manifest lists an unsafe public path {text!r}")
    return text


def fold(path: str) -> str:
    """The name a case-insensitive, normalizing file system (macOS, Windows) stores ``path`` as."""
    return unicodedata.normalize("NFC", path).casefold()


def folds_names(folder: Path) -> bool:
    """Whether the file system of ``folder`` treats names that differ only by case or Unicode
    normalization as one: a probe file answers (the folder is made first if need be)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)  # probe inside the target, never beside it
    except OSError:
        return True  # cannot tell: assume the careful answer
    stem = f".synco-probe-{os.getpid()}-{os.urandom(4).hex()}-"
    made, other = folder / (stem + "Ae\u0301"), folder / (stem + "a\u00e9")
    try:
        os.close(os.open(made, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    except OSError:
        return True  # cannot tell: assume the careful answer
    try:
        return os.path.lexists(other)
    finally:
        os.unlink(made)


def check_paths(name: str, entries: list[dict], root: Path) -> list[str]:
    """Every path of the set, checked alone and against each other (see the module docstring)."""
    texts = [_checked(e.get("path") if isinstance(e, dict) else None) for e in entries]
    seen: set[str] = set()
    for text in texts:
        if text.startswith(STAGING_PREFIX):
            raise IntegrityError(f"manifest of {name!r} lists {_short(text)}, inside a staging "
                                 f"folder of synco (a leftover of a stopped run on the server)",
                                 hint="remove that folder on the server, then run again")
        if text in seen:
            raise IntegrityError(f"manifest of {name!r} lists {_short(text)} twice", hint=UNSAFE_HINT)
        seen.add(text)
    for text in texts:
        cut = text.rfind("/")
        while cut > 0:
            if text[:cut] in seen:
                raise IntegrityError(f"manifest of {name!r} lists {_short(text[:cut])} both as a "
                                     f"file and as the folder of {_short(text)}", hint=UNSAFE_HINT)
            cut = text.rfind("/", 0, cut)
    folded: dict[str, str] = {}
    clashes = []
    for text in texts:
        key = fold(text)
        if key in folded:
            clashes.append((folded[key], text))
        folded.setdefault(key, text)
    if clashes and folds_names(root):
        a, b = clashes[0]
        raise IntegrityError(f"manifest of {name!r} lists {_short(a)} and {_short(b)}, one file "
                             f"on this file system (it ignores case or Unicode normalization)",
                             hint="rename one of them on the server, or download into a "
                                  "case-sensitive file system")
    return texts


class Tree:
    """The target folder, walked with ``openat`` and ``O_NOFOLLOW`` below its root.

    ``parent(rel)`` is a descriptor of the folder holding ``rel`` and its last name; a folder
    on the way that is a symbolic link or a file raises LocalIOError naming it. Descriptors of
    recently used folders are kept (a bounded number)."""

    KEEP = 64

    def __init__(self, root: Path, *, create: bool) -> None:
        self.root = root
        self.create = create
        self.fds: OrderedDict[str, int] = OrderedDict()
        self.root_fd: int | None = None
        try:
            if create:
                root.mkdir(parents=True, exist_ok=True)
            self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            if create:
                raise LocalIOError(f"cannot create {root}: no such folder") from None
        except NotADirectoryError:
            raise LocalIOError(f"{root} is not a folder", hint="give a folder for the file set") from None
        except OSError as exc:
            raise LocalIOError(f"cannot open {root}: {exc.strerror}") from None

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()
        if self.root_fd is not None:
            os.close(self.root_fd)
            self.root_fd = None

    def __enter__(self) -> "Tree":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def parent(self, rel: str) -> tuple[int | None, str]:
        """(descriptor of the folder of ``rel`` or None when it does not exist, last name)."""
        folder, _, leaf = rel.rpartition("/")
        if not folder:
            return self.root_fd, leaf
        if folder in self.fds:
            self.fds.move_to_end(folder)
            return self.fds[folder], leaf
        fd = self.root_fd
        done = ""
        for part in folder.split("/"):
            if fd is None:
                return None, leaf
            done = f"{done}/{part}" if done else part
            fd = self._open_dir(fd, part, done)
            if fd is None:
                return None, leaf
            if done in self.fds:
                os.close(fd)
                fd = self.fds[done]
            else:
                self._keep(done, fd)
        return fd, leaf

    def _keep(self, key: str, fd: int) -> None:
        self.fds[key] = fd
        while len(self.fds) > self.KEEP:
            os.close(self.fds.popitem(last=False)[1])

    def _open_dir(self, dir_fd: int, part: str, done: str) -> int | None:
        shown = self.root / done
        for _ in range(2):
            try:
                return os.open(part, _DIR, dir_fd=dir_fd)
            except FileNotFoundError:
                if not self.create:
                    return None
                try:
                    os.mkdir(part, 0o777, dir_fd=dir_fd)
                except FileExistsError:
                    pass
                except OSError as exc:
                    raise LocalIOError(f"cannot create {shown}: {exc.strerror}") from None
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    raise LocalIOError(f"cannot open {shown}: {exc.strerror}") from None
                raise self._not_a_folder(dir_fd, part, shown) from None
        raise LocalIOError(f"cannot create {shown}: it keeps changing")

    @staticmethod
    def _not_a_folder(dir_fd: int, part: str, shown: Path) -> LocalIOError:
        try:
            link = stat.S_ISLNK(os.lstat(part, dir_fd=dir_fd).st_mode)
        except OSError:
            link = False
        if link:
            return LocalIOError(f"{shown} is a symbolic link; synco does not write through links",
                                hint="replace the link with a real folder (or move it away), "
                                     "then run again")
        return LocalIOError(f"{shown} is a file locally but a folder on the server",
                            hint="move it away, then run again")


def _hash(dir_fd: int, name: str, st: os.stat_result) -> str | None:
    """SHA-256 of the regular file ``name`` if it is still the file ``st`` describes."""
    fd = os.open(name, _READ, dir_fd=dir_fd)
    try:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            return None
        digest = hashlib.sha256()
        while block := os.read(fd, 1 << 20):
            digest.update(block)
        return digest.hexdigest()
    finally:
        os.close(fd)


@dataclass
class FileSetPlan:
    name: str
    root: Path
    needed: list[dict] = field(default_factory=list)
    present: list[dict] = field(default_factory=list)
    public_url: str = ""  # where entries with a "url" are fetched from
    hashes: FileHashes | None = None  # what the last runs hashed (see synco/state.py)
    links: list[str] = field(default_factory=list)  # files that are local links, to be replaced

    @property
    def needed_bytes(self) -> int:
        return sum(e["size"] for e in self.needed)


def plan(name: str, manifest: dict, root: Path, hashes: FileHashes | None = None) -> FileSetPlan:
    """Which files of the set must be fetched; raises before anything is fetched when a path is
    unsafe or the local folder cannot take the set (a link or a file where a folder must be)."""
    root = Path(os.path.abspath(root))
    result = FileSetPlan(name=name, root=root, public_url=manifest.get("public_url") or "",
                         hashes=hashes if hashes is not None else FileHashes(root))
    entries = manifest["entries"]
    paths = check_paths(name, entries, root)
    with Tree(root, create=False) as tree:
        for entry, rel in zip(entries, paths):
            if "url" in entry:
                safe_url_path(entry["url"])
                if not re.match(r"^https?://", result.public_url):
                    raise IntegrityError(f"manifest of {name!r} lists public files but no public URL")
            same = _same_content(tree, rel, entry, result)
            (result.present if same else result.needed).append(entry)
    return result


def _same_content(tree: Tree, rel: str, entry: dict, result: FileSetPlan) -> bool:
    dir_fd, leaf = tree.parent(rel)
    if dir_fd is None:
        return False
    try:
        st = os.lstat(leaf, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise LocalIOError(f"cannot look at {tree.root / rel}: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise LocalIOError(f"{tree.root / rel} is a folder locally but a file on the server",
                           hint="move it away, then run again")
    if stat.S_ISLNK(st.st_mode):
        result.links.append(rel)
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size != entry["size"]:
        return False
    hashes = result.hashes
    known = hashes.lookup(rel, st) if hashes is not None else None
    if known is None:
        try:
            known = _hash(dir_fd, leaf, st)
        except OSError:
            return False
        if known is not None and hashes is not None:
            hashes.record(rel, st, known)
    return known == entry["sha256"]


def _apply_meta(fd_or_path, entry: dict) -> None:
    os.chmod(fd_or_path, entry["mode"] & MODE_MASK)
    os.utime(fd_or_path, ns=(entry["mtime_ns"], entry["mtime_ns"]))


def _fix_present(dir_fd: int, leaf: str, entry: dict) -> os.stat_result | None:
    """Give an unchanged file the manifest's mode and mtime, through a descriptor opened without
    following a link (O_PATH and /proc where there is one: a file of mode 000 cannot be opened for
    reading). None when the name is no longer a regular file (then it is left alone)."""
    fd = os.open(leaf, (_PATH or os.O_RDONLY | os.O_NONBLOCK) | os.O_NOFOLLOW | os.O_CLOEXEC,
                 dir_fd=dir_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        proc = f"/proc/self/fd/{fd}"
        _apply_meta(proc if _PATH and os.path.exists(proc) else fd, entry)
        return os.fstat(fd)
    finally:
        os.close(fd)


def _lock_alive(folder_fd: int) -> bool | None:
    """Whether the run owning a staging folder still runs (its flock is held); None: no lock."""
    try:
        fd = os.open(LOCK_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder_fd)
    except FileNotFoundError:
        return None
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _owner_alive(path: Path) -> bool:
    try:
        fd = os.open(path, _DIR)
    except OSError:
        return True  # not a folder of ours (or gone): leave it
    try:
        alive = _lock_alive(fd)
        if alive is None:  # made a moment ago and not locked yet, or by an older synco
            alive = time.time() - os.fstat(fd).st_mtime < YOUNG
        return alive
    finally:
        os.close(fd)


def sweep(root: Path) -> list[Path]:
    """Remove the staging folders that runs killed before cleaning up left in ``root`` (any
    session's: their lock is no longer held); the list of what was removed."""
    removed = []
    try:
        found = [Path(e.path) for e in os.scandir(root)
                 if e.name.startswith(STAGING_PREFIX) and e.is_dir(follow_symlinks=False)]
    except OSError:
        return removed
    for path in found:
        if not _owner_alive(path):
            shutil.rmtree(path, ignore_errors=True)
            if not os.path.lexists(path):
                removed.append(path)
    return removed


class Staging:
    """The staging folder of one file set; removed on failure and after commit."""

    def __init__(self, plan: FileSetPlan, session_hex: str) -> None:
        self.plan = plan
        self.folder = plan.root / f"{STAGING_PREFIX}{session_hex[:16]}"
        self.staged: list[tuple[str, dict]] = []
        self.fd: int | None = None
        self.lock_fd: int | None = None
        self.committed = 0  # files renamed into place so far

    def __enter__(self) -> "Staging":
        with Tree(self.plan.root, create=True) as tree:
            name = self.folder.name
            try:
                existing = os.open(name, _DIR, dir_fd=tree.root_fd)
            except FileNotFoundError:
                existing = None
            except OSError as exc:
                raise LocalIOError(f"cannot use {self.folder}: {exc.strerror}",
                                   hint=f"remove {self.folder}, then run again") from None
            if existing is not None:
                try:
                    alive = _lock_alive(existing)
                finally:
                    os.close(existing)
                if alive:
                    raise UsageError(f"another synco run is writing into {self.plan.root}",
                                     hint="wait for it to finish, then run again")
                shutil.rmtree(self.folder, ignore_errors=True)
            try:
                os.mkdir(name, 0o700, dir_fd=tree.root_fd)
                self.fd = os.open(name, _DIR, dir_fd=tree.root_fd)
                self.lock_fd = os.open(LOCK_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                                       | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=self.fd)
                fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.write(self.lock_fd, f"{os.getpid()}\n".encode())
            except OSError as exc:
                self.__exit__()
                raise LocalIOError(f"cannot create {self.folder}: {exc.strerror}") from None
        return self

    def __exit__(self, *exc) -> None:
        for fd in (self.fd, self.lock_fd):
            if fd is not None:
                os.close(fd)
        if self.fd is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
        self.fd = self.lock_fd = None

    def write(self, entry: dict, pieces) -> None:
        """Write one file from its verified pieces (an iterator of bytes) into the staging folder."""
        name = str(len(self.staged))
        digest = hashlib.sha256()
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=self.fd)
            try:
                for piece in pieces:
                    digest.update(piece)
                    view = memoryview(piece)
                    while view:
                        view = view[os.write(fd, view):]
                if digest.hexdigest() != entry["sha256"]:
                    raise IntegrityError(f"file {entry['path']} does not match its manifest")
                _apply_meta(fd, entry)
            finally:
                os.close(fd)
        except OSError as exc:
            what = "disk full" if exc.errno == errno.ENOSPC else exc.strerror
            raise LocalIOError(f"cannot write {entry['path']} into {self.plan.root}: {what}") from None
        self.staged.append((name, entry))

    def commit(self) -> None:
        """Rename every staged file into place, then fix mode and mtime of the unchanged ones;
        record the hashes of both for the next plan."""
        root = self.plan.root
        hashes = self.plan.hashes
        with Tree(root, create=True) as tree:
            try:
                for name, entry in self.staged:
                    rel = entry["path"]
                    dir_fd, leaf = tree.parent(rel)
                    os.rename(name, leaf, src_dir_fd=self.fd, dst_dir_fd=dir_fd)
                    self.committed += 1
                    if hashes is not None:
                        hashes.record(rel, os.lstat(leaf, dir_fd=dir_fd), entry["sha256"])
                for entry in self.plan.present:
                    rel = entry["path"]
                    dir_fd, leaf = tree.parent(rel)
                    st = _fix_present(dir_fd, leaf, entry)
                    if st is not None and hashes is not None:
                        hashes.record(rel, st, entry["sha256"])
            except OSError as exc:
                raise LocalIOError(f"cannot put files into {root}: {exc.strerror}") from None
            finally:
                if hashes is not None:
                    hashes.save(keep={e["path"] for e in self.plan.needed + self.plan.present})
