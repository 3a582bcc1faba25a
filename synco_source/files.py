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


def index(root: Path, put_chunk: Callable[[bytes], Future],
          on_file: Callable[[int], None] = lambda n: None) -> dict:
    """Index the folder ``root``; ``put_chunk(plaintext)`` stores a chunk and returns a Future
    of its manifest entry. Returns the file-set manifest body (without format/name)."""
    if not root.is_dir():
        raise UsageError(f"file set folder {root} does not exist or is not a folder")
    entries, skipped, pending = [], [], []
    for rel, st in walk(root):
        if st is None:
            skipped.append(rel)
            continue
        digest = hashlib.sha256()
        chunks = []
        size = 0
        try:
            with open(root / rel, "rb") as fh:
                while piece := fh.read(FILE_CHUNK_SIZE):
                    digest.update(piece)
                    size += len(piece)
                    chunks.append(put_chunk(piece))
        except OSError as exc:
            raise UsageError(f"cannot read {root / rel}: {exc.strerror}") from None
        entry = {"path": rel, "size": size, "mtime_ns": st.st_mtime_ns,
                 "mode": stat.S_IMODE(st.st_mode), "sha256": digest.hexdigest(), "chunks": chunks}
        entries.append(entry)
        pending.append(entry)
        on_file(size)
    for entry in pending:
        entry["chunks"] = [f.result() for f in entry["chunks"]]
    return {"root": root.name, "entries": entries, "skipped": skipped,
            "size": sum(e["size"] for e in entries)}
