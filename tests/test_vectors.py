"""The known-answer vectors of docs/FORMAT.md, checked two ways: by synco's own code, and by a
second implementation written here from the specification alone (so the spec and the code agree)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from synco_source import crypto, format
from synco_source.errors import IntegrityError, UnsupportedFormat

VECTORS = Path(__file__).parent / "vectors"
EXPECT = {"integrity": IntegrityError, "unsupported": UnsupportedFormat}


def load(path: Path) -> tuple[dict, bytes]:
    head, _, blob = path.read_text().partition("\n\n")
    fields = dict(line.split(": ", 1) for line in head.splitlines())
    if "body-repeat" in fields:
        byte, count = fields["body-repeat"].split()
        fields["body"] = (bytes.fromhex(byte) * int(count)).hex()
    return fields, bytes.fromhex(blob.strip())


def spec_open(key: bytes, sid: bytes, role: int, name: str, blob: bytes) -> bytes:
    """FORMAT.md §3, independently of synco_source.crypto."""
    assert blob[:5] == b"SYNCO" and blob[5] == 1 and blob[6] == role
    header, payload = blob[:24], blob[24:]
    okey = HKDF(hashes.SHA256(), 32, salt=header[8:24],
                info=b"synco/1 object" + bytes([role]) + sid + name.encode()).derive(key)
    pieces = [payload[i:i + 65552] for i in range(0, len(payload), 65552)] or [b""]
    out = b""
    for i, piece in enumerate(pieces):
        nonce = i.to_bytes(11, "big") + (b"\x01" if i == len(pieces) - 1 else b"\x00")
        out += ChaCha20Poly1305(okey).decrypt(nonce, piece, header)
    return out


VECTOR_FILES = sorted(p for p in VECTORS.glob("*.txt")
                      if not p.name.startswith(("token", "key_")))
KEY_FILES = sorted(VECTORS.glob("key_*.txt"))


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.stem)
def test_vector(path: Path) -> None:
    fields, blob = load(path)
    key, sid = bytes.fromhex(fields["key"]), bytes.fromhex(fields["session"])
    role, name = int(fields["role"]), fields["name"]
    if fields["expect"] == "ok":
        body = bytes.fromhex(fields["body"])
        assert crypto.open_(key, sid, role, name, blob)[1] == body
        assert spec_open(key, sid, role, name, blob) == body
        salt = blob[8:24]
        assert crypto.seal(key, sid, role, name, body, blob[7], salt=salt) == blob
    else:
        with pytest.raises(EXPECT[fields["expect"]]):
            crypto.open_(key, sid, role, name, blob)
        with pytest.raises((AssertionError, InvalidTag)):
            spec_open(key, sid, role, name, blob)


def test_enough_vectors() -> None:
    kinds = [load(p)[0]["expect"] for p in VECTOR_FILES]
    assert kinds.count("ok") >= 5 and kinds.count("integrity") >= 8


def test_token_vector() -> None:
    head, _, text = (VECTORS / "token.txt").read_text().partition("\n\n")
    fields = dict(line.split(": ", 1) for line in head.splitlines())
    token = format.Token.decode(text.strip())
    assert token.key.hex() == fields["key"] and token.session_id.hex() == fields["session"]
    assert token.url == fields["url"]
    assert token.encode() == text.strip()


def spec_public_key(text: str) -> bytes:
    """FORMAT.md §9.1: 'syncopk1' + base32 (lowercase, unpadded) of key || 4-byte checksum."""
    assert text.startswith("syncopk1")
    data = text[8:].upper()
    raw = base64.b32decode(data + "=" * (-len(data) % 8))
    assert len(raw) == 36 and hashlib.sha256(b"syncopk1" + raw[:32]).digest()[:4] == raw[32:]
    return raw[:32]


def spec_unwrap(blob: bytes, sid: bytes, private: bytes) -> bytes:
    """FORMAT.md §9.2, independently of synco_source.crypto."""
    me = X25519PrivateKey.from_private_bytes(private)
    mine = me.public_key().public_bytes_raw()
    assert len(blob) == 93 and blob[:8] == b"SYNCOKEY" and blob[8] == 1
    assert blob[9:13] == hashlib.sha256(b"synco/2 recipient" + mine).digest()[:4]
    ephemeral = blob[13:45]
    shared = me.exchange(X25519PublicKey.from_public_bytes(ephemeral))
    wrap = HKDF(hashes.SHA256(), 32, salt=ephemeral + mine,
                info=b"synco/2 key wrap" + sid).derive(shared)
    return ChaCha20Poly1305(wrap).decrypt(bytes(12), blob[45:], blob[:45])


@pytest.mark.parametrize("path", KEY_FILES, ids=lambda p: p.stem)
def test_key_object_vector(path: Path) -> None:
    fields, blob = load(path)
    private, sid = bytes.fromhex(fields["recipient-private"]), bytes.fromhex(fields["session"])
    public = spec_public_key(fields["recipient-public"])
    assert X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw() == public
    assert format.parse_public_key(fields["recipient-public"]) == public
    if fields["expect"] == "ok":
        key = bytes.fromhex(fields["session-key"])
        assert crypto.unwrap_session_key(blob, sid, private) == key
        assert spec_unwrap(blob, sid, private) == key
        ephemeral = bytes.fromhex(fields["ephemeral-private"])
        assert crypto.wrap_session_key(key, sid, public, ephemeral=ephemeral) == blob
    else:
        with pytest.raises(EXPECT[fields["expect"]]):
            crypto.unwrap_session_key(blob, sid, private)
        with pytest.raises((AssertionError, InvalidTag)):
            spec_unwrap(blob, sid, private)


def test_enough_key_vectors() -> None:
    kinds = [load(p)[0]["expect"] for p in KEY_FILES]
    assert kinds.count("ok") >= 1 and kinds.count("integrity") >= 5


def test_token_v2_vector() -> None:
    head, _, text = (VECTORS / "token_v2.txt").read_text().partition("\n\n")
    fields = dict(line.split(": ", 1) for line in head.splitlines())
    text = text.strip()
    token = format.Token.decode(text)
    public = spec_public_key(fields["recipient-public"])
    assert token.key == b"" and token.version == 2
    assert token.session_id.hex() == fields["session"] and token.url == fields["url"]
    assert token.encode() == text
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))  # FORMAT.md §2, version 2
    assert raw[0] == 2 and hashlib.sha256(raw[:-4]).digest()[:4] == raw[-4:]
    assert raw[1:17].hex() == fields["session"]
    assert raw[17:21] == hashlib.sha256(b"synco/2 recipient" + public).digest()[:4]
    assert raw[21:-4].decode() == fields["url"]


def test_names_follow_spec() -> None:
    key = bytes(range(32))
    ikey = HKDF(hashes.SHA256(), 32, salt=None, info=b"synco/1 object-id").derive(key)
    sc = format.SessionCrypto(key, bytes(16))
    digest = hashlib.sha256(b"x").digest()
    assert sc.chunk_name(digest) == hmac.new(ikey, b"chunk\0" + digest, hashlib.sha256).hexdigest()
    assert sc.manifest_name("db") == hmac.new(ikey, b"manifest\0db", hashlib.sha256).hexdigest()
