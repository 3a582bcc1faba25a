"""The index of a file set: every regular file under a folder, with its content as chunks.

Entries are sorted by path. Each file is read once, in pieces of ``FILE_CHUNK_SIZE`` bytes; every
piece becomes a chunk (stored once per session however many files share it) and the whole file's
SHA-256 is recorded so the client can tell that a local file is already the same. Symbolic links,
sockets and other special files are not followed or copied: they are listed under ``skipped``.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

from .errors import UsageError

FILE_CHUNK_SIZE = 4 * 1024 * 1024


def walk(root: Path) -> Iterator[tuple[str, os.stat_result | None]]:
    """(relative path with '/' separators, lstat result or None if special) in sorted order."""
    stack = [""]
    while stack:
        rel = stack.pop()
        folder = root / rel if rel else root
        try:
            names = sorted(os.listdir(folder), reverse=True)
        except OSError as exc:
            raise UsageError(f"cannot read folder {folder}: {exc.strerror}") from None
        subdirs = []
        for name in reversed(names):
            path = f"{rel}/{name}" if rel else name
            st = os.lstat(root / path)
            if stat.S_ISDIR(st.st_mode):
                subdirs.append(path)
            elif stat.S_ISREG(st.st_mode):
                yield path, st
            else:
                yield path, None
        stack.extend(reversed(subdirs))


def listed(root: Path, paths: set[str]) -> Iterator[tuple[str, os.stat_result | None]]:
    """Like ``walk``, for the given relative paths only (missing ones are left out)."""
    for rel in sorted(paths):
        try:
            st = os.lstat(root / rel)
        except OSError:
            continue
        yield rel, (st if stat.S_ISREG(st.st_mode) else None)


def _read(path: Path, put_chunk: Callable[[bytes], Future] | None) -> tuple[int, str, list]:
    """(size, SHA-256, chunk futures) of one file; no chunks when ``put_chunk`` is None."""
    digest, chunks, size = hashlib.sha256(), [], 0
    try:
        with open(path, "rb") as fh:
            while piece := fh.read(FILE_CHUNK_SIZE):
                digest.update(piece)
                size += len(piece)
                if put_chunk is not None:
                    chunks.append(put_chunk(piece))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    return size, digest.hexdigest(), chunks


def index(root: Path, put_chunk: Callable[[bytes], Future],
          on_file: Callable[[int], None] = lambda n: None, *, include: set[str] | None = None,
          public: dict[str, str] | None = None, public_url: str | None = None) -> dict:
    """Index the folder ``root`` (or only the paths in ``include``); ``put_chunk(plaintext)``
    stores a chunk and returns a Future of its manifest entry. Files in ``public`` (relative path
    -> path under ``public_url``) get a ``url`` instead of chunks. Returns the file-set manifest
    body (without format/name)."""
    if not root.is_dir():
        raise UsageError(f"file set folder {root} does not exist or is not a folder")
    public = public or {}
    entries, skipped = [], []
    for rel, st in (walk(root) if include is None else listed(root, include)):
        if st is None:
            skipped.append(rel)
            continue
        url = public.get(rel)
        size, sha256, chunks = _read(root / rel, None if url else put_chunk)
        entry = {"path": rel, "size": size, "mtime_ns": st.st_mtime_ns,
                 "mode": stat.S_IMODE(st.st_mode), "sha256": sha256}
        entry.update({"url": url} if url else {"chunks": chunks})
        entries.append(entry)
        on_file(size)
    for entry in entries:
        if "chunks" in entry:
            entry["chunks"] = [f.result() for f in entry["chunks"]]
    body = {"root": root.name, "entries": entries, "skipped": skipped,
            "size": sum(e["size"] for e in entries)}
    if any("url" in e for e in entries):
        body["public_url"] = public_url
    return body
