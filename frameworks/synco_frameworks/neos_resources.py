"""Which Neos/Flow persistent resources travel, and which the client takes from the web server.

Run by the engine inside the dump's snapshot (so the files match the rows): every resource listed
in ``neos_flow_resourcemanagement_persistentresource`` is published, except, unless ``--all``,
those used only by thumbnails (their rows are left out too). A resource that the ``persistent``
collection's target has published into the web folder (``<sha1>/<filename>``, or with
``subdivideHashPathSegment`` ``a/b/c/d/<sha1>/<filename>``) is marked public: the client fetches it
from the application's own URL and checks its SHA-256, and it never passes through the session.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from .base import FileSelection, Select

RESOURCE_TABLE = "neos_flow_resourcemanagement_persistentresource"
THUMBNAIL_TABLE = "neos_media_domain_model_thumbnail"
RESOURCES_SQL = f"SELECT sha1, filename, collectionname FROM {RESOURCE_TABLE}"
THUMBNAIL_ONLY_SHA1_SQL = (
    f"SELECT DISTINCT r.sha1 FROM {RESOURCE_TABLE} r "
    f"JOIN {THUMBNAIL_TABLE} t ON t.resource = r.persistence_object_identifier "
    f"WHERE r.sha1 NOT IN (SELECT o.sha1 FROM {RESOURCE_TABLE} o "
    f"WHERE o.persistence_object_identifier NOT IN (SELECT resource FROM "
    f"{THUMBNAIL_TABLE} WHERE resource IS NOT NULL))")
SHA1_RE = re.compile(r"[0-9a-f]{40}")
# the resource rows kept when thumbnails are left out: not a thumbnail's own resource
NOT_THUMBNAIL_SQL = (f"persistence_object_identifier NOT IN (SELECT resource FROM {THUMBNAIL_TABLE} "
                     f"WHERE resource IS NOT NULL)")


def valid_sha1(value: object) -> str | None:
    """The row's ``sha1`` as 40 lower-case hex digits, or None: a row is data, and a value like
    ``../../../etc/passwd`` must never become a path the server reads."""
    sha1 = str(value).strip().lower()
    return sha1 if SHA1_RE.fullmatch(sha1) else None


def plain_filename(value: object) -> str | None:
    """The row's ``filename`` if it is one name (no folder part), else None."""
    name = str(value)
    return None if (not name or name in (".", "..") or "/" in name or "\x00" in name) else name


def stored_path(sha1: str) -> str:
    """Where a WritableFileSystemStorage keeps a resource, relative to the storage folder."""
    return f"{sha1[0]}/{sha1[1]}/{sha1[2]}/{sha1[3]}/{sha1}"


def published_path(target: Path, sha1: str, filename: str) -> str | None:
    """The resource's path under the target folder, if the target has published it there."""
    for path in (f"{sha1}/{filename}", f"{stored_path(sha1)}/{filename}"):
        if (target / path).is_file():
            return path
    return None


def remote_path(template: str, sha1: str, filename: str) -> str:
    """A remote target's path of a resource below its public URL: ``template`` with ``{sha1}``,
    ``{filename}``, ``{fileExtension}`` and ``{subdivided}`` (``a/b/c/d/<sha1>``) filled in, each
    value URL-encoded (the template's own text is taken as written, as Flow's targets take it)."""
    extension = filename.rsplit(".", 1)[1].lower() if "." in filename else ""
    values = {"{sha1}": sha1, "{filename}": quote(filename, safe=""),
              "{fileExtension}": quote(extension, safe=""), "{subdivided}": stored_path(sha1)}
    return re.sub(r"\{sha1\}|\{filename\}|\{fileExtension\}|\{subdivided\}",
                  lambda m: values[m.group(0)], template)


def selector(target: Path | None, public_url: str | None, keep_thumbnails: bool,
             remote_layout: str | None = None) -> Callable[[Select, set[str]], FileSelection]:
    """``target``: the folder a file-system target publishes into (public files are those found
    there); ``remote_layout`` instead, for a target that publishes every resource to
    ``public_url`` by itself (S3, Google Cloud Storage), where nothing can be looked at on disk: a
    template of each resource's path below ``public_url`` (``remote_path``)."""
    def select(query: Select, tables: set[str]) -> FileSelection:
        if RESOURCE_TABLE not in tables:
            return FileSelection(notes=[f"no table {RESOURCE_TABLE}: the whole resource folder "
                                        f"is published"])
        skip: set[str] = set()
        if not keep_thumbnails and THUMBNAIL_TABLE in tables:
            skip = {str(row[0]).strip().lower() for row in query(THUMBNAIL_ONLY_SHA1_SQL)}
        selection = FileSelection(include=set(), public_url=public_url)
        malformed = 0
        for raw_sha1, filename, collection in query(RESOURCES_SQL):
            sha1 = valid_sha1(raw_sha1)
            if sha1 is None:
                malformed += 1
                continue
            if sha1 in skip:
                continue
            rel = stored_path(sha1)
            selection.include.add(rel)
            filename = plain_filename(filename)
            if filename is None:
                continue  # published under a name that is not one: not fetched from the site
            if remote_layout and public_url:
                where = remote_path(remote_layout, sha1, filename)
            else:
                where = published_path(target, sha1, filename) if target and public_url else None
                where = quote(where) if where else None
            if where and collection == "persistent":
                selection.public[rel] = where
        selection.notes.append(
            f"resources: {len(selection.include)} listed, {len(selection.public)} fetched from "
            f"{public_url or 'nowhere (no public URL)'} by the client"
            + (f", {len(skip)} used only by thumbnails left out" if skip else ""))
        if malformed:
            selection.notes.append(f"resources: {malformed} rows of {RESOURCE_TABLE} ignored: their "
                                   f"sha1 is not 40 hex digits")
        return selection
    return select
