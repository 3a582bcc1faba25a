"""The known-answer vectors of docs/FORMAT.md, checked two ways: by synco's own code, and by a
second implementation written here from the specification alone (so the spec and the code agree)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest
import zstandard
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


def spec_decompress(frame: bytes, limit: int) -> bytes:
    """FORMAT.md §3.4: one Zstandard frame (RFC 8878) that declares its content size, at most
    ``limit``, decompressed to exactly that size with nothing after it. The header is read here
    by hand, so the cap is checked without trusting the library's reading of it."""
    assert frame[:4] == b"\x28\xb5\x2f\xfd", "not a Zstandard frame"
    descriptor = frame[4]
    fcs_flag, single, dict_flag = descriptor >> 6, descriptor >> 5 & 1, descriptor & 3
    at = 5 + (0 if single else 1) + (0, 1, 2, 4)[dict_flag]
    width = (1 if single else 0, 2, 4, 8)[fcs_flag]
    assert width, "the frame does not declare its content size"
    declared = int.from_bytes(frame[at:at + width], "little") + (256 if width == 2 else 0)
    assert declared <= limit, f"declares {declared} bytes, over the cap of {limit}"
    inflater = zstandard.ZstdDecompressor().decompressobj()
    out = b""
    for i in range(0, len(frame), 4096):  # small steps, so a lying frame stops near the cap
        out += inflater.decompress(frame[i:i + 4096])
        assert len(out) <= declared, "more than declared"
    assert inflater.eof and not inflater.unused_data and len(out) == declared
    return out


def spec_plaintext(fields: dict, blob: bytes) -> bytes:
    key, sid = bytes.fromhex(fields["key"]), bytes.fromhex(fields["session"])
    body = spec_open(key, sid, int(fields["role"]), fields["name"], blob)
    limit = int(fields.get("limit", 1 << 30))
    return spec_decompress(body, limit) if blob[7] == 1 else body


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.stem)
def test_vector(path: Path) -> None:
    fields, blob = load(path)
    key, sid = bytes.fromhex(fields["key"]), bytes.fromhex(fields["session"])
    role, name = int(fields["role"]), fields["name"]
    limit = int(fields.get("limit", format.MAX_JSON_SIZE))
    if fields["expect"] == "ok":
        body = bytes.fromhex(fields["body"])
        assert crypto.open_(key, sid, role, name, blob)[1] == body
        assert spec_open(key, sid, role, name, blob) == body
        salt = blob[8:24]
        assert crypto.seal(key, sid, role, name, body, blob[7], salt=salt) == blob
        plain = format.open_object(key, sid, role, name, blob, limit)
        assert spec_plaintext(fields, blob) == plain
        assert plain == (zstandard.ZstdDecompressor().decompress(body) if blob[7] else body)
    else:
        with pytest.raises(EXPECT[fields["expect"]]):
            format.open_object(key, sid, role, name, blob, limit)
        with pytest.raises((AssertionError, InvalidTag, zstandard.ZstdError)):
            spec_plaintext(fields, blob)


def test_enough_vectors() -> None:
    kinds = [load(p)[0]["expect"] for p in VECTOR_FILES]
    assert kinds.count("ok") >= 5 and kinds.count("integrity") >= 14
    bombs = [p for p in VECTOR_FILES if p.stem.startswith("bad_bomb")]
    assert len(bombs) >= 4


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
