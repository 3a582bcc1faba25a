"""The index of a file set: every regular file under a folder, with its content as chunks.

Entries are sorted by path. Each file is read once, in pieces of ``FILE_CHUNK_SIZE`` bytes; every
piece becomes a chunk (stored once per session however many files share it) and the whole file's
SHA-256 is recorded so the client can tell that a local file is already the same. Symbolic links,
sockets and other special files are not followed or copied: they are listed under ``skipped``, and
so is a file that vanishes (or turns into something else) while the set is indexed, with the
reason given to ``on_skip``: a live application's folder changes under us, and that is no reason
to fail. A file or folder that cannot be read (permissions, I/O errors) is an error naming it.

Reads never leave the set's folder: a walk does not descend into linked folders, and a list of
paths (from database rows, see ``listed``) is checked part by part, through symbolic links too.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

from .errors import UsageError

FILE_CHUNK_SIZE = 4 * 1024 * 1024

OnSkip = Callable[[str, str], None]
VANISHED = "vanished while the set was indexed"
GONE = (errno.ENOENT, errno.ENOTDIR)


def _unreadable(path: Path, exc: OSError) -> UsageError:
    return UsageError(f"cannot read {path}: {exc.strerror or exc}",
                      hint="let this user read it (check its permissions), or leave it out by "
                           "publishing a narrower folder with --files NAME=PATH")


def walk(root: Path, on_skip: OnSkip = lambda path, why: None
         ) -> Iterator[tuple[str, os.stat_result | None]]:
    """(relative path with '/' separators, lstat result or None if special) in sorted order;
    what vanishes during the walk is passed to ``on_skip`` and left out."""
    stack = [""]
    while stack:
        rel = stack.pop()
        folder = root / rel if rel else root
        try:
            names = sorted(os.listdir(folder), reverse=True)
        except OSError as exc:
            if rel and exc.errno in GONE:
                on_skip(rel, VANISHED)
                continue
            raise _unreadable(folder, exc) from None
        subdirs = []
        for name in reversed(names):
            path = f"{rel}/{name}" if rel else name
            try:
                st = os.lstat(root / path)
            except OSError as exc:
                if exc.errno in GONE:
                    on_skip(path, VANISHED)
                    continue
                raise _unreadable(root / path, exc) from None
            if stat.S_ISDIR(st.st_mode):
                subdirs.append(path)
            elif stat.S_ISREG(st.st_mode):
                yield path, st
            else:
                yield path, None
        stack.extend(reversed(subdirs))


def inside(rel: str) -> bool:
    """Whether ``rel`` is a plain relative path: no absolute path, empty, '.' or '..' part."""
    return (bool(rel) and "\x00" not in rel and not rel.startswith("/")
            and all(part not in ("", ".", "..") for part in rel.split("/")))


def listed(root: Path, paths: set[str], on_skip: OnSkip = lambda path, why: None
           ) -> Iterator[tuple[str, os.stat_result | None]]:
    """Like ``walk``, for the given relative paths only (missing ones are left out). A path that
    would leave ``root`` (``..``, absolute) or that reaches its file through a symbolic link
    inside ``root`` is not read: it goes to ``on_skip``. ``root`` itself may be a link (a
    deployment's shared folder)."""
    real_root = os.path.realpath(root)
    for rel in sorted(paths):
        if not inside(rel):
            on_skip(rel, "not a path inside the set")
            continue
        path = os.path.join(real_root, rel)
        try:
            st = os.lstat(path)
        except OSError as exc:
            if exc.errno in GONE:
                continue
            raise _unreadable(Path(path), exc) from None
        if os.path.realpath(path) != path and not stat.S_ISLNK(st.st_mode):
            on_skip(rel, "reached through a symbolic link")
            yield rel, None
            continue
        yield rel, (st if stat.S_ISREG(st.st_mode) else None)


def _read(path: Path, put_chunk: Callable[[bytes], Future] | None
          ) -> tuple[int, str, list] | str:
    """(size, SHA-256, chunk futures) of one file; no chunks when ``put_chunk`` is None. A
    string instead says why the file is not read after all (it vanished or changed kind)."""
    digest, chunks, size = hashlib.sha256(), [], 0
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno in GONE:
            return VANISHED
        if exc.errno in (errno.ELOOP, errno.EISDIR):
            return "changed into a symbolic link or folder while the set was indexed"
        raise _unreadable(path, exc) from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "changed into a special file while the set was indexed"
        try:
            while piece := fh.read(FILE_CHUNK_SIZE):
                digest.update(piece)
                size += len(piece)
                if put_chunk is not None:
                    chunks.append(put_chunk(piece))
        except OSError as exc:
            raise _unreadable(path, exc) from None
    return size, digest.hexdigest(), chunks


def index(root: Path, put_chunk: Callable[[bytes], Future],
          on_file: Callable[[int], None] = lambda n: None, *, include: set[str] | None = None,
          public: dict[str, str] | None = None, public_url: str | None = None,
          on_skip: OnSkip = lambda path, why: None) -> dict:
    """Index the folder ``root`` (or only the paths in ``include``); ``put_chunk(plaintext)``
    stores a chunk and returns a Future of its manifest entry. Files in ``public`` (relative path
    -> path under ``public_url``) get a ``url`` instead of chunks. Files that vanish or are not
    read for another reason go to ``on_skip(path, reason)`` (and to ``skipped``). Returns the
    file-set manifest body (without format/name)."""
    if not root.is_dir():
        raise UsageError(f"file set folder {root} does not exist or is not a folder")
    public = public or {}
    entries, skipped = [], []

    def skip(rel: str, why: str) -> None:
        skipped.append(rel)
        on_skip(rel, why)

    reasons: dict[str, str] = {}
    found = (walk(root, skip) if include is None
             else listed(root, include, lambda rel, why: reasons.__setitem__(rel, why)))
    for rel, st in found:
        if st is None:
            skipped.append(rel)
            if rel in reasons:
                on_skip(rel, reasons.pop(rel))
            continue
        url = public.get(rel)
        read = _read(root / rel, None if url else put_chunk)
        if isinstance(read, str):
            skip(rel, read)
            continue
        size, sha256, chunks = read
        entry = {"path": rel, "size": size, "mtime_ns": st.st_mtime_ns,
                 "mode": stat.S_IMODE(st.st_mode), "sha256": sha256}
        entry.update({"url": url} if url else {"chunks": chunks})
        entries.append(entry)
        on_file(size)
    for rel, why in reasons.items():  # not a path inside the set: named, never listed
        on_skip(rel, why)
    for entry in entries:
        if "chunks" in entry:
            entry["chunks"] = [f.result() for f in entry["chunks"]]
    body = {"root": root.name, "entries": entries, "skipped": sorted(skipped),
            "size": sum(e["size"] for e in entries)}
    if any("url" in e for e in entries):
        body["public_url"] = public_url
    return body
