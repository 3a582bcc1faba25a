"""THE wire format (docs/FORMAT.md, version 1): token, object names, meta and manifests.

Both programs read and write the format only through this module and ``crypto``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
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
    try:
        return zstandard.ZstdDecompressor().decompress(data, max_output_size=limit)
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"{what} does not decompress: {exc}") from None


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
        compression, body = crypto.open_(self.key, self.session_id, crypto.ROLE_CHUNK, name,
                                         blob, what)
        plain = decompress(body, size, what) if compression == crypto.COMPRESS_ZSTD else body
        if len(plain) != size or hashlib.sha256(plain).hexdigest() != digest:
            raise IntegrityError(f"{what} does not match its manifest entry")
        return plain

    def seal_json(self, role: int, name: str, doc: dict) -> bytes:
        body = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")
        return crypto.seal(self.key, self.session_id, role, name, compress(body),
                           crypto.COMPRESS_ZSTD)

    def open_json(self, role: int, name: str, blob: bytes, what: str) -> dict:
        compression, body = crypto.open_(self.key, self.session_id, role, name, blob, what)
        if compression == crypto.COMPRESS_ZSTD:
            body = decompress(body, MAX_JSON_SIZE, what)
        try:
            doc = json.loads(body)
        except ValueError:
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

    def open_manifest(self, name: str, blob: bytes, set_name: str) -> dict:
        doc = self.open_json(crypto.ROLE_MANIFEST, name, blob, f"manifest of {set_name!r}")
        if doc.get("name") != set_name:
            raise IntegrityError(f"manifest of {set_name!r} names another set ({doc.get('name')!r})")
        return doc


def check_meta(meta: dict, session_id: bytes) -> None:
    if meta.get("session") != session_id.hex():
        raise IntegrityError("meta belongs to another session")
    if meta.get("state") not in STATES:
        raise UnsupportedFormat(f"unknown session state {meta.get('state')!r}")
    if not isinstance(meta.get("seq"), int):
        raise IntegrityError("meta has no sequence number")
    for entry in meta.get("sets", []):
        if not NAME_RE.match(str(entry.get("manifest", ""))):
            raise IntegrityError(f"meta lists a bad manifest name for set {entry.get('name')!r}")
