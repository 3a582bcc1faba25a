"""Bringing a file set into a local folder: plan, stage, commit.

A file already present with the same size and SHA-256 is not downloaded (only its mode and mtime
are set). The others are downloaded into a staging folder inside the target folder (so the final
rename stays on one file system), each written, given its mode and mtime, and only when every file
of every set has arrived and verified are they renamed into place. A failure before that leaves
the target folder exactly as it was. Local files the server does not have are left alone.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from synco_source.errors import IntegrityError, LocalIOError

STAGING_PREFIX = ".synco-staging-"


def safe_relpath(text: str) -> PurePosixPath:
    path = PurePosixPath(text)
    if (not text or "\0" in text or path.is_absolute()
            or any(part in ("..", ".", "") for part in text.split("/"))):
        raise IntegrityError(f"manifest lists an unsafe path {text!r}")
    return path


def same_content(path: Path, size: int, sha256: str) -> bool:
    try:
        if not path.is_file() or path.stat().st_size != size:
            return False
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        return digest.hexdigest() == sha256
    except OSError:
        return False


def safe_url_path(text: str) -> str:
    """A public file's URL path: relative, without scheme, host, query or '..'."""
    parts = urlsplit(text)
    if (parts.scheme or parts.netloc or parts.query or parts.fragment or text.startswith("/")
            or any(p in ("..", ".", "") for p in unquote(parts.path).split("/"))):
        raise IntegrityError(f"manifest lists an unsafe public path {text!r}")
    return text


@dataclass
class FileSetPlan:
    name: str
    root: Path
    needed: list[dict] = field(default_factory=list)
    present: list[dict] = field(default_factory=list)
    public_url: str = ""  # where entries with a "url" are fetched from

    @property
    def needed_bytes(self) -> int:
        return sum(e["size"] for e in self.needed)


def plan(name: str, manifest: dict, root: Path) -> FileSetPlan:
    result = FileSetPlan(name=name, root=root, public_url=manifest.get("public_url") or "")
    for entry in manifest["entries"]:
        rel = safe_relpath(entry["path"])
        if "url" in entry:
            safe_url_path(entry["url"])
            if not re.match(r"^https?://", result.public_url):
                raise IntegrityError(f"manifest of {name!r} lists public files but no public URL")
        target = root / rel
        if target.is_dir() and not target.is_symlink():
            raise LocalIOError(f"{target} is a folder locally but a file on the server",
                               hint="move it away, then run again")
        (result.present if same_content(target, entry["size"], entry["sha256"])
         else result.needed).append(entry)
    return result


def _set_times(path: Path, entry: dict) -> None:
    os.chmod(path, entry["mode"] & 0o7777)
    os.utime(path, ns=(entry["mtime_ns"], entry["mtime_ns"]))


class Staging:
    """The staging folder of one file set; removed on failure and after commit."""

    def __init__(self, plan: FileSetPlan, session_hex: str) -> None:
        self.plan = plan
        self.folder = plan.root / f"{STAGING_PREFIX}{session_hex[:16]}"
        self.staged: list[tuple[Path, dict]] = []

    def __enter__(self) -> "Staging":
        try:
            self.plan.root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder.mkdir()
        except OSError as exc:
            raise LocalIOError(f"cannot create {self.folder}: {exc.strerror}") from None
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def write(self, entry: dict, pieces) -> None:
        """Write one file from its verified pieces (an iterator of bytes) into the staging folder."""
        path = self.folder / str(len(self.staged))
        digest = hashlib.sha256()
        try:
            with open(path, "wb") as fh:
                for piece in pieces:
                    digest.update(piece)
                    fh.write(piece)
            if digest.hexdigest() != entry["sha256"]:
                raise IntegrityError(f"file {entry['path']} does not match its manifest")
            _set_times(path, entry)
        except OSError as exc:
            what = "disk full" if exc.errno == errno.ENOSPC else exc.strerror
            raise LocalIOError(f"cannot write {entry['path']} into {self.plan.root}: {what}") from None
        self.staged.append((path, entry))

    def commit(self) -> None:
        """Rename every staged file into place, then fix mode and mtime of the unchanged ones."""
        root = self.plan.root
        try:
            for path, entry in self.staged:
                target = root / safe_relpath(entry["path"])
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
            for entry in self.plan.present:
                _set_times(root / safe_relpath(entry["path"]), entry)
        except OSError as exc:
            raise LocalIOError(f"cannot put files into {root}: {exc.strerror}") from None
