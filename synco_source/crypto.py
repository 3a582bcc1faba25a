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
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import (Encoding, NoEncryption, PrivateFormat,
                                                          PublicFormat)
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


# ---------------------------------------------------------------- recipients (format version 2)
#
# A session may have a recipient instead of a key in its token: the session key is then wrapped
# to the recipient's X25519 public key, in the style of age's X25519 stanza, and published as the
# small object ``key``. Only the holder of the private key can unwrap it, so a token, a pipe's
# hello and every byte of the session are useless to anyone in between.

KEY_OBJECT_MAGIC = b"SYNCOKEY"
KEY_OBJECT_VERSION = 1
KEY_OBJECT_SIZE = 8 + 1 + 4 + 32 + KEY_SIZE + TAG_SIZE     # 93 bytes
RECIPIENT_TAG_SIZE = 4
PUBLIC_SIZE = 32


def new_private_key() -> bytes:
    return _private_bytes(X25519PrivateKey.generate())


def _private_bytes(private: X25519PrivateKey) -> bytes:
    return private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def public_key(private: bytes) -> bytes:
    """The X25519 public key of a 32-byte private key."""
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)


def recipient_tag(public: bytes) -> bytes:
    """4 bytes that name a recipient in a token and a key object (so that a client can tell a
    session made for another key from a damaged one); not secret."""
    return hashlib.sha256(b"synco/2 recipient" + public).digest()[:RECIPIENT_TAG_SIZE]


def _wrap_key(shared: bytes, ephemeral_public: bytes, recipient_public: bytes,
              sid: bytes) -> bytes:
    if shared == bytes(32):
        raise IntegrityError("the key object's ephemeral key is not a valid X25519 key")
    return _hkdf(shared, ephemeral_public + recipient_public, b"synco/2 key wrap" + sid)


def wrap_session_key(session_key: bytes, sid: bytes, recipient_public: bytes, *,
                     ephemeral: bytes | None = None) -> bytes:
    """The key object: the session key wrapped to ``recipient_public`` with a fresh ephemeral
    X25519 key (``ephemeral``, a private key, only for test vectors)."""
    eph = (X25519PrivateKey.generate() if ephemeral is None
           else X25519PrivateKey.from_private_bytes(ephemeral))
    eph_public = eph.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    shared = eph.exchange(X25519PublicKey.from_public_bytes(recipient_public))
    head = (KEY_OBJECT_MAGIC + bytes([KEY_OBJECT_VERSION]) + recipient_tag(recipient_public)
            + eph_public)
    wrap = _wrap_key(shared, eph_public, recipient_public, sid)
    return head + ChaCha20Poly1305(wrap).encrypt(bytes(12), session_key, head)


def unwrap_session_key(blob: bytes, sid: bytes, private: bytes) -> bytes:
    """The session key from a key object, with the recipient's private key. A key object for
    another recipient, of another session or altered raises IntegrityError."""
    if len(blob) < 9 or blob[:8] != KEY_OBJECT_MAGIC:
        raise IntegrityError("the session's key object is not one (bad magic)")
    if blob[8] != KEY_OBJECT_VERSION:
        raise UnsupportedFormat(f"key object version {blob[8]}; this synco reads "
                                f"{KEY_OBJECT_VERSION}")
    if len(blob) != KEY_OBJECT_SIZE:
        raise IntegrityError(f"the session's key object has {len(blob)} bytes, not "
                             f"{KEY_OBJECT_SIZE}")
    recipient_public = public_key(private)
    if blob[9:13] != recipient_tag(recipient_public):
        raise IntegrityError("the session's key is wrapped to another recipient key")
    eph_public = blob[13:45]
    try:
        shared = X25519PrivateKey.from_private_bytes(private).exchange(
            X25519PublicKey.from_public_bytes(eph_public))
    except ValueError:
        raise IntegrityError("the key object's ephemeral key is not a valid X25519 key") from None
    wrap = _wrap_key(shared, eph_public, recipient_public, sid)
    try:
        return ChaCha20Poly1305(wrap).decrypt(bytes(12), blob[45:], blob[:45])
    except InvalidTag:
        raise IntegrityError("the session's key object failed authentication (altered, or "
                             "of another session)") from None
