"""THE wire format (docs/FORMAT.md, version 2): token, recipient keys, object names, the capped
decompression, and the strict reader of meta and manifests.

Both programs read and write the format only through this module and ``crypto``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
from dataclasses import dataclass

import zstandard

from . import crypto
from .errors import IntegrityError, TokenError, UnsupportedFormat, UsageError

FORMAT_VERSION = 1
TOKEN_VERSION = 1
TOKEN_VERSION_RECIPIENT = 2  # the key is wrapped to a recipient (docs/FORMAT.md §9)
META_PATH = "meta"
KEY_PATH = "key"  # the wrapped session key of a session with a recipient (token version 2)
OBJECT_DIR = "o"
NAME_RE = re.compile(r"^[0-9a-f]{64}$")
STATES = ("created", "dumping", "ready", "failed")
ZSTD_LEVEL = 3
MAX_JSON_SIZE = 1 << 30


# ---------------------------------------------------------------- token

@dataclass(frozen=True)
class Token:
    """A session's address and key (version 1), or its address and the recipient its key is
    wrapped to (version 2: ``key`` is empty, ``recipient`` holds the 4-byte recipient tag)."""

    url: str          # the session's base URL, ending in '/'
    session_id: bytes  # 16 bytes
    key: bytes = b""   # 32 bytes, the session key (version 1)
    recipient: bytes = b""  # 4 bytes, crypto.recipient_tag of the recipient (version 2)

    @property
    def version(self) -> int:
        return TOKEN_VERSION_RECIPIENT if self.recipient else TOKEN_VERSION

    def encode(self) -> str:
        if self.recipient:
            body = (bytes([TOKEN_VERSION_RECIPIENT]) + self.session_id + self.recipient
                    + self.url.encode("utf-8"))
        else:
            body = (bytes([TOKEN_VERSION]) + self.key + self.session_id + self.url.encode("utf-8"))
        check = hashlib.sha256(body).digest()[:4]
        return base64.urlsafe_b64encode(body + check).rstrip(b"=").decode("ascii")

    @classmethod
    def decode(cls, text: str) -> "Token":
        text = text.strip()
        if text.startswith("synco download "):
            text = text[len("synco download "):].strip()
        if not text or not re.fullmatch(r"[A-Za-z0-9_-]+", text):
            raise TokenError("it must be one word of letters, digits, '-' and '_'")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise TokenError("it is not valid base64url") from None
        if len(raw) < 1 + 4 + len("http://x/"):
            raise TokenError("it is too short (cut off while copying?)")
        body, check = raw[:-4], raw[-4:]
        if hashlib.sha256(body).digest()[:4] != check:
            raise TokenError("its checksum does not match (mistyped or cut off?)")
        if body[0] == TOKEN_VERSION:
            fixed = 1 + crypto.KEY_SIZE + crypto.SESSION_ID_SIZE
            key, recipient = body[1:1 + crypto.KEY_SIZE], b""
            sid = body[1 + crypto.KEY_SIZE:fixed]
        elif body[0] == TOKEN_VERSION_RECIPIENT:
            fixed = 1 + crypto.SESSION_ID_SIZE + crypto.RECIPIENT_TAG_SIZE
            key, sid = b"", body[1:1 + crypto.SESSION_ID_SIZE]
            recipient = body[1 + crypto.SESSION_ID_SIZE:fixed]
        else:
            raise UnsupportedFormat(f"token version {body[0]}; this synco reads "
                                    f"{TOKEN_VERSION} and {TOKEN_VERSION_RECIPIENT}")
        if len(body) < fixed + len("http://x/"):
            raise TokenError("it is too short (cut off while copying?)")
        try:
            url = body[fixed:].decode("utf-8")
        except UnicodeDecodeError:
            raise TokenError("its URL is not UTF-8") from None
        if not re.match(r"^https?://[^/\s]+/", url):
            raise TokenError(f"its URL {url!r} is not an http(s) URL")
        return cls(url=url, session_id=sid, key=key, recipient=recipient)


# ---------------------------------------------------------------- recipient keys

PUBLIC_PREFIX = "syncopk1"
PRIVATE_PREFIX = "syncosk1"


def _key_text(prefix: str, raw: bytes) -> str:
    check = hashlib.sha256(prefix.encode("ascii") + raw).digest()[:4]
    return prefix + base64.b32encode(raw + check).decode("ascii").rstrip("=").lower()


def _key_bytes(prefix: str, text: str, what: str) -> bytes:
    text = text.strip()
    hint = "copy the whole line printed by 'synco keygen'"
    if not text.lower().startswith(prefix):
        raise UsageError(f"{what} {text[:12]!r}... does not start with {prefix}", hint=hint)
    data = text[len(prefix):].upper()
    try:
        raw = base64.b32decode(data + "=" * (-len(data) % 8))
    except (binascii.Error, ValueError):
        raise UsageError(f"{what} is not valid base32", hint=hint) from None
    if len(raw) != 36:
        raise UsageError(f"{what} has {len(raw)} bytes, not 36 (cut off?)", hint=hint)
    if hashlib.sha256(prefix.encode("ascii") + raw[:32]).digest()[:4] != raw[32:]:
        raise UsageError(f"{what}: its checksum does not match (mistyped or cut off?)", hint=hint)
    return raw[:32]


def public_key_text(public: bytes) -> str:
    """The textual form of a recipient's X25519 public key (docs/FORMAT.md §9)."""
    return _key_text(PUBLIC_PREFIX, public)


def parse_public_key(text: str) -> bytes:
    """The 32-byte X25519 public key of a ``syncopk1...`` text; UsageError when it is none."""
    public = _key_bytes(PUBLIC_PREFIX, text, "recipient key")
    try:
        crypto.wrap_session_key(bytes(32), bytes(16), public)
    except (ValueError, IntegrityError):
        raise UsageError("the recipient key is not a usable X25519 public key",
                         hint="copy the whole line printed by 'synco keygen'") from None
    return public


def private_key_text(private: bytes) -> str:
    return _key_text(PRIVATE_PREFIX, private)


def parse_private_key(text: str) -> bytes:
    return _key_bytes(PRIVATE_PREFIX, text, "private key")


# ---------------------------------------------------------------- objects

def compress(body: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(body)


def decompress(data: bytes, limit: int, what: str) -> bytes:
    """The one Zstandard frame in ``data``, never more than ``limit`` bytes of output
    (docs/FORMAT.md §3.4). The frame must declare its content size, no more than ``limit``, so
    a bomb is refused from its header alone; it is then streamed into a buffer of exactly that
    size (the output cannot grow past it, whatever the frame holds), and must fill it and end
    there, with nothing after it."""
    try:
        declared = zstandard.get_frame_parameters(data).content_size
    except zstandard.ZstdError:
        raise IntegrityError(f"{what} is not a Zstandard frame") from None
    if declared == zstandard.CONTENTSIZE_UNKNOWN:
        raise IntegrityError(f"{what} does not declare its decompressed size")
    if declared > limit:
        raise IntegrityError(f"{what} declares {declared} bytes decompressed, over its limit "
                             f"of {limit}")
    out = bytearray(declared)
    view = memoryview(out)
    got = 0
    try:
        with zstandard.ZstdDecompressor().stream_reader(data, read_size=1 << 20,
                                                        read_across_frames=False) as reader:
            while got < declared:
                count = reader.readinto(view[got:])
                if not count:
                    break
                got += count
            more = reader.read(1)
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"{what} does not decompress: {exc}") from None
    if got != declared:
        raise IntegrityError(f"{what} is a truncated Zstandard frame")
    if more:
        raise IntegrityError(f"{what} decompresses to more than the {declared} bytes it declares")
    return bytes(out)


def open_object(key: bytes, session_id: bytes, role: int, name: str, blob: bytes, limit: int,
                what: str = "object") -> bytes:
    """Open one sealed object and undo its compression, never inflating past ``limit`` bytes:
    its plaintext (FORMAT.md §3)."""
    compression, body = crypto.open_(key, session_id, role, name, blob, what)
    return decompress(body, limit, what) if compression == crypto.COMPRESS_ZSTD else body


def object_path(name: str) -> str:
    """Where an object lives, relative to the session's base URL or folder."""
    return f"{OBJECT_DIR}/{name}"


@dataclass(frozen=True)
class SessionCrypto:
    """The session key and id, with the object names and seal/open calls built on them."""

    key: bytes
    session_id: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ikey", crypto.id_key(self.key))

    def chunk_name(self, plaintext_sha256: bytes) -> str:
        return crypto.object_name(self._ikey, b"chunk\0" + plaintext_sha256)

    def manifest_name(self, set_name: str) -> str:
        return crypto.object_name(self._ikey, b"manifest\0" + set_name.encode("utf-8"))

    def seal_chunk(self, plaintext: bytes, digest: bytes) -> tuple[str, bytes]:
        name = self.chunk_name(digest)
        packed = compress(plaintext)
        if len(packed) < len(plaintext):
            blob = crypto.seal(self.key, self.session_id, crypto.ROLE_CHUNK, name, packed,
                               crypto.COMPRESS_ZSTD)
        else:
            blob = crypto.seal(self.key, self.session_id, crypto.ROLE_CHUNK, name, plaintext)
        return name, blob

    def open_chunk(self, name: str, blob: bytes, size: int, digest: str) -> bytes:
        what = f"chunk {name[:12]}"
        plain = open_object(self.key, self.session_id, crypto.ROLE_CHUNK, name, blob, size, what)
        if len(plain) != size or hashlib.sha256(plain).hexdigest() != digest:
            raise IntegrityError(f"{what} does not match its manifest entry")
        return plain

    def seal_json(self, role: int, name: str, doc: dict) -> bytes:
        body = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")
        return crypto.seal(self.key, self.session_id, role, name, compress(body),
                           crypto.COMPRESS_ZSTD)

    def open_json(self, role: int, name: str, blob: bytes, what: str) -> dict:
        body = open_object(self.key, self.session_id, role, name, blob, MAX_JSON_SIZE, what)
        if len(body) > MAX_JSON_SIZE:
            raise IntegrityError(f"{what} is over the limit of {MAX_JSON_SIZE} bytes")
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):
            raise IntegrityError(f"{what} is not valid JSON") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION:
            raise UnsupportedFormat(f"{what} has format {doc.get('format') if isinstance(doc, dict) else '?'}"
                                    f"; this synco reads {FORMAT_VERSION}")
        return doc

    def seal_meta(self, meta: dict) -> bytes:
        return self.seal_json(crypto.ROLE_META, META_PATH, meta)

    def open_meta(self, blob: bytes) -> dict:
        meta = self.open_json(crypto.ROLE_META, META_PATH, blob, "meta")
        check_meta(meta, self.session_id)
        return meta

    def seal_manifest(self, set_name: str, manifest: dict) -> tuple[str, bytes]:
        name = self.manifest_name(set_name)
        return name, self.seal_json(crypto.ROLE_MANIFEST, name, manifest)

    def open_manifest(self, name: str, blob: bytes, set_name: str,
                      kind: str | None = None) -> dict:
        doc = self.open_json(crypto.ROLE_MANIFEST, name, blob, f"manifest of {set_name!r}")
        check_manifest(doc, set_name, kind)
        return doc

    def open_part(self, name: str, blob: bytes, label: str, table: bool) -> dict:
        """A database part (§6.4): the schema part, or (``table``) a table part."""
        doc = self.open_json(crypto.ROLE_MANIFEST, name, blob, f"part {label!r}")
        check_part(doc, label, table)
        return doc


# ---------------------------------------------------------------- the strict reader
#
# One reader for the meta and the manifests, used by both programs: every key known, every
# required key present, every value of its type and in its range, so that an authentic but
# unexpected document (another version's, a buggy or hostile key holder's) ends as one line
# (UnsupportedFormat for a key or value this version does not know, IntegrityError for a shape no
# writer of this version makes), never as a KeyError deep
# in the client. Engine schemas are checked by their engine's loader; here they must be objects.

MAX_INT = (1 << 63) - 1
MAX_CHUNK_SIZE = MAX_JSON_SIZE   # a chunk's plaintext: at most 1 GiB (a huge row may pass 4 MiB)
MAX_NAME = 1024
HEX32_RE = re.compile(r"^[0-9a-f]{32}$")
ENGINES = ("mysql", "postgresql", "sqlite")
KINDS = ("database", "files")


class _Bad(Exception):
    """A value that no writer of this version makes (IntegrityError); ``unknown`` marks a key
    this version does not know, which a newer writer might (UnsupportedFormat)."""

    def __init__(self, where: str, problem: str, unknown: bool = False) -> None:
        super().__init__(f"{where} {problem}")
        self.unknown = unknown


def _integer(lo: int = 0, hi: int = MAX_INT):
    def check(value, where: str) -> None:
        if type(value) is not int:
            raise _Bad(where, f"is {type(value).__name__}, not an integer")
        if not lo <= value <= hi:
            raise _Bad(where, f"is {value}, out of {lo}..{hi}")
    return check


def _string(pattern: re.Pattern | None = None, *, max_len: int = MAX_NAME, empty: bool = True):
    def check(value, where: str) -> None:
        if not isinstance(value, str):
            raise _Bad(where, f"is {type(value).__name__}, not a string")
        if len(value) > max_len or (not empty and not value):
            raise _Bad(where, f"has {len(value)} characters")
        if pattern is not None and not pattern.match(value):
            raise _Bad(where, f"is {value[:80]!r}, not of the form {pattern.pattern}")
    return check


def _one_of(*values):
    def check(value, where: str) -> None:
        if not isinstance(value, str):
            raise _Bad(where, f"is {type(value).__name__}, not a string")
        if value not in values:
            raise _Bad(where, f"is {value[:40]!r}, not one of {', '.join(values)}", unknown=True)
    return check


def _true(value, where: str) -> None:
    if value is not True:
        raise _Bad(where, f"is {value!r}, not true")


def _array(item):
    def check(value, where: str) -> None:
        if not isinstance(value, list):
            raise _Bad(where, f"is {type(value).__name__}, not an array")
        for number, element in enumerate(value):
            item(element, f"{where}[{number}]")
    return check


def _object(required: dict, optional: dict | None = None):
    optional = optional or {}

    def check(value, where: str) -> None:
        if not isinstance(value, dict):
            raise _Bad(where, f"is {type(value).__name__}, not an object")
        for key in required:
            if key not in value:
                raise _Bad(f"{where}.{key}", "is missing")
        for key in value:
            if key not in required and key not in optional:
                raise _Bad(f"{where}.{str(key)[:40]}", "is an unknown key (written by a newer "
                           "synco?)", unknown=True)
        for key, item in required.items():
            item(value[key], f"{where}.{key}")
        for key, item in optional.items():
            if key in value:
                item(value[key], f"{where}.{key}")
    return check


def _any_object(value, where: str) -> None:
    if not isinstance(value, dict):
        raise _Bad(where, f"is {type(value).__name__}, not an object")


def _scalars(value, where: str) -> None:
    """An informative object (the meta's progress): any keys, values plain scalars."""
    _any_object(value, where)
    for key, item in value.items():
        if not isinstance(item, (str, int, float, bool)) and item is not None:
            raise _Bad(f"{where}.{key}", f"is {type(item).__name__}, not a plain value")


HEX64 = _string(NAME_RE)
_CHUNK = {"id": HEX64, "sha256": HEX64, "size": _integer(0, MAX_CHUNK_SIZE)}
_SET = _object({"name": _string(empty=False), "kind": _one_of(*KINDS), "manifest": HEX64,
                "size": _integer()})
_META = _object({"format": _integer(), "session": _string(HEX32_RE), "seq": _integer(),
                 "state": _one_of(*STATES), "created": _integer(), "expires": _integer(),
                 "synco": _string()},
                {"message": _string(max_len=1 << 16), "progress": _scalars,
                 "sets": _array(_SET)})
_HEAD = {"format": _integer(), "name": _string(empty=False), "kind": _one_of(*KINDS)}
_TABLE = _object({"name": _string(empty=False), "rows": _integer(),
                  "chunks": _array(_object({**_CHUNK, "rows": _integer()}))},
                 {"skipped": _true})
_DATABASE = _object({**_HEAD, "engine": _one_of(*ENGINES), "database": _string(),
                     "schema": _any_object, "tables": _array(_TABLE)})
_ENTRY = _object({"path": _string(max_len=1 << 16), "size": _integer(),  # synco/files.py
                  # checks the path itself: relative, no empty, '.' or '..' part, not too long
                  "mtime_ns": _integer(-MAX_INT), "mode": _integer(0, 0o7777),
                  "sha256": HEX64},
                 {"chunks": _array(_object(_CHUNK)), "url": _string(max_len=8192, empty=False)})
_FILES = _object({**_HEAD, "root": _string(), "entries": _array(_ENTRY),
                  "skipped": _array(_string(max_len=4096)), "size": _integer()},
                 {"public_url": _string(re.compile(r"^https?://[^/\s]+/(\S*/)?$"),
                                        max_len=8192)})


def _strict(check, doc, what: str) -> None:
    try:
        check(doc, what)
    except _Bad as exc:
        if exc.unknown:
            raise UnsupportedFormat(str(exc)) from None
        raise IntegrityError(f"malformed {exc}") from None


def check_meta(meta: dict, session_id: bytes) -> None:
    """The meta of docs/FORMAT.md §5, strictly; the session id must be ours."""
    _strict(_META, meta, "meta")
    if meta["session"] != session_id.hex():
        raise IntegrityError("meta belongs to another session")
    if meta["state"] == "ready" and "sets" not in meta:
        raise IntegrityError("malformed meta: a ready session lists no sets")
    names = [entry["name"] for entry in meta.get("sets", [])]
    if len(set(names)) != len(names):
        raise IntegrityError("malformed meta: it lists a set twice")


def check_manifest(doc: dict, set_name: str, kind: str | None = None) -> None:
    """A manifest of docs/FORMAT.md §6, strictly: of the set (and kind) the meta said."""
    what = f"manifest of {set_name!r}"
    if not isinstance(doc, dict) or doc.get("kind") not in KINDS:
        _strict(_object(_HEAD), doc, what)
    _strict(_DATABASE if doc["kind"] == "database" else _FILES, doc, what)
    if doc["name"] != set_name:
        raise IntegrityError(f"{what} names another set ({doc['name'][:80]!r})")
    if kind is not None and doc["kind"] != kind:
        raise IntegrityError(f"{what} is of kind {doc['kind']}, the meta says {kind}")
    if doc["kind"] == "files":
        for number, entry in enumerate(doc["entries"]):
            where = f"{what}: entries[{number}]"
            if ("chunks" in entry) == ("url" in entry):
                raise IntegrityError(f"malformed {where}: needs exactly one of chunks and url")
            if "chunks" in entry and sum(c["size"] for c in entry["chunks"]) != entry["size"]:
                raise IntegrityError(f"malformed {where}: its chunks do not add up to its size")
            if "url" in entry and "public_url" not in doc:
                raise IntegrityError(f"malformed {where}: a url, but the manifest has no public_url")
    else:
        for number, table in enumerate(doc["tables"]):
            if table.get("skipped") and table["chunks"]:
                raise IntegrityError(f"malformed {what}: tables[{number}] is skipped but has chunks")


# ---------------------------------------------------------------- database parts (§6.4)

def schema_part_label(set_name: str) -> str:
    """The label whose manifest name (§4) is the database's schema part; '#' is in no set name."""
    return f"{set_name}#schema"


def table_part_label(set_name: str, number: int) -> str:
    """The label of the part holding the ``number``-th table (from 1, in load order)."""
    return f"{set_name}#{number}"


def published_parts(meta: dict) -> int | None:
    """How many table parts a ``dumping`` meta says are published (§6.4), or None when the
    source publishes no parts (an older source, or no database)."""
    count = meta.get("progress", {}).get("parts")
    if meta["state"] != "dumping" or count is None:
        return None
    if type(count) is not int or not 0 <= count <= MAX_INT:
        raise IntegrityError(f"malformed meta: progress.parts is {count!r}, not a count")
    return count


def check_part(doc: dict, label: str, table: bool) -> None:
    """A database part (§6.4), strictly: a database manifest of that label, the schema part with
    no tables, a table part with exactly one table and an empty schema."""
    check_manifest(doc, label, "database")
    what = f"part {label!r}"
    if table and (len(doc["tables"]) != 1 or doc["schema"]):
        raise IntegrityError(f"malformed {what}: it must hold one table and no schema")
    if not table and doc["tables"]:
        raise IntegrityError(f"malformed {what}: the schema part lists tables")


def expired(meta: dict, now: float | None = None, skew: float = 300.0) -> bool:
    """Whether a meta is past its ``expires`` (allowing ``skew`` seconds of clock difference
    between the two machines): the source removes such a session, so a meta that still says
    otherwise is a replayed or cached old one."""
    return (time.time() if now is None else now) > meta["expires"] + skew
