"""Sealing and opening objects: the cryptography of docs/FORMAT.md, and nothing else.

An object is ``header || payload``. The 24-byte header is plaintext and names the format, the
object's role and its compression, and carries a random salt. The payload is the (compressed)
plaintext cut into 64 KiB segments, each sealed with ChaCha20-Poly1305 under a key derived for this
one object (HKDF-SHA256 over the session key, the salt, the role, the session id and the object's
name), with a nonce made of the segment counter and a last-segment flag, and the header as
associated data. This is age's STREAM construction; it makes a swapped, reordered, truncated or
extended object fail to open.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import IntegrityError, UnsupportedFormat

MAGIC = b"SYNCO"
VERSION = 1
SUPPORTED_VERSIONS = {1}
HEADER_SIZE = 24
SALT_SIZE = 16
KEY_SIZE = 32
SESSION_ID_SIZE = 16
SEGMENT_SIZE = 64 * 1024
TAG_SIZE = 16

ROLE_META = 1
ROLE_MANIFEST = 2
ROLE_CHUNK = 3
ROLES = {ROLE_META: "meta", ROLE_MANIFEST: "manifest", ROLE_CHUNK: "chunk"}

COMPRESS_NONE = 0
COMPRESS_ZSTD = 1


def new_session_key() -> bytes:
    return os.urandom(KEY_SIZE)


def new_session_id() -> bytes:
    return os.urandom(SESSION_ID_SIZE)


def _hkdf(key: bytes, salt: bytes | None, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key)


def id_key(session_key: bytes) -> bytes:
    """The key that turns content hashes into object names (so names reveal no content)."""
    return _hkdf(session_key, None, b"synco/1 object-id")


def object_name(ikey: bytes, label: bytes) -> str:
    """An object's name: HMAC-SHA256 of a label (a plaintext hash, or a manifest label), hex."""
    return hmac.new(ikey, label, hashlib.sha256).hexdigest()


def _object_key(session_key: bytes, salt: bytes, role: int, sid: bytes, name: str) -> bytes:
    info = b"synco/1 object" + bytes([role]) + sid + name.encode("ascii")
    return _hkdf(session_key, salt, info)


def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _segments(data: memoryview) -> list[memoryview]:
    if not data:
        return [data]
    return [data[i:i + SEGMENT_SIZE] for i in range(0, len(data), SEGMENT_SIZE)]


def seal(session_key: bytes, sid: bytes, role: int, name: str, body: bytes,
         compression: int = COMPRESS_NONE, *, salt: bytes | None = None) -> bytes:
    """Seal ``body`` (already compressed as ``compression`` says) into one object."""
    salt = os.urandom(SALT_SIZE) if salt is None else salt
    header = MAGIC + bytes([VERSION, role, compression]) + salt
    aead = ChaCha20Poly1305(_object_key(session_key, salt, role, sid, name))
    parts = [header]
    segments = _segments(memoryview(body))
    last = len(segments) - 1
    for i, segment in enumerate(segments):
        parts.append(aead.encrypt(_nonce(i, i == last), bytes(segment), header))
    return b"".join(parts)


def parse_header(blob: bytes, role: int, what: str) -> tuple[int, bytes]:
    """Check an object's header; returns (compression, salt)."""
    if len(blob) < HEADER_SIZE + TAG_SIZE:
        raise IntegrityError(f"{what} is truncated ({len(blob)} bytes)")
    if blob[:5] != MAGIC:
        raise IntegrityError(f"{what} is not a synco object (bad magic)")
    if blob[5] not in SUPPORTED_VERSIONS:
        raise UnsupportedFormat(f"{what} has format version {blob[5]}; this synco reads "
                                f"{sorted(SUPPORTED_VERSIONS)}")
    if blob[6] != role:
        raise IntegrityError(f"{what} has role {ROLES.get(blob[6], blob[6])}, expected {ROLES[role]}")
    if blob[7] not in (COMPRESS_NONE, COMPRESS_ZSTD):
        raise UnsupportedFormat(f"{what} uses unknown compression {blob[7]}")
    return blob[7], blob[8:HEADER_SIZE]


def open_(session_key: bytes, sid: bytes, role: int, name: str, blob: bytes,
          what: str = "object") -> tuple[int, bytes]:
    """Open one object; returns (compression, body). Any alteration raises IntegrityError."""
    compression, salt = parse_header(blob, role, what)
    header = blob[:HEADER_SIZE]
    aead = ChaCha20Poly1305(_object_key(session_key, salt, role, sid, name))
    payload = memoryview(blob)[HEADER_SIZE:]
    step = SEGMENT_SIZE + TAG_SIZE
    count = max(1, -(-len(payload) // step))
    out = []
    for i in range(count):
        segment = payload[i * step:(i + 1) * step]
        last = i == count - 1
        if len(segment) < TAG_SIZE or (last and count > 1 and len(segment) == TAG_SIZE):
            raise IntegrityError(f"{what} is truncated or malformed")
        try:
            out.append(aead.decrypt(_nonce(i, last), bytes(segment), header))
        except InvalidTag:
            raise IntegrityError(f"{what} failed authentication (tampered, truncated, "
                                 f"or not from this session)") from None
    return compression, b"".join(out)
