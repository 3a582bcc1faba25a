"""The known-answer vectors of docs/FORMAT.md, checked two ways: by synco's own code, and by a
second implementation written here from the specification alone (so the spec and the code agree)."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
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


VECTOR_FILES = sorted(p for p in VECTORS.glob("*.txt") if p.name != "token.txt")


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


def test_names_follow_spec() -> None:
    key = bytes(range(32))
    ikey = HKDF(hashes.SHA256(), 32, salt=None, info=b"synco/1 object-id").derive(key)
    sc = format.SessionCrypto(key, bytes(16))
    digest = hashlib.sha256(b"x").digest()
    assert sc.chunk_name(digest) == hmac.new(ikey, b"chunk\0" + digest, hashlib.sha256).hexdigest()
    assert sc.manifest_name("db") == hmac.new(ikey, b"manifest\0db", hashlib.sha256).hexdigest()
