"""Writes the known-answer vectors of docs/FORMAT.md into this folder.

Run only when the format changes (and then bump its version): `python tests/vectors/make_vectors.py`.
Each vector is a text file: `key: value` header lines, a blank line, then the object in hex.
`expect:` is `ok`, `integrity` (IntegrityError) or `unsupported` (UnsupportedFormat).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from synco_source import crypto, format  # noqa: E402

HERE = Path(__file__).parent
KEY = bytes(range(32))
SID = bytes(range(0x40, 0x50))
SALT = bytes(range(0xA0, 0xB0))
NAME = "6c" * 32


def write(name: str, blob: bytes, *, expect: str, role: int, obj: str, body: bytes | None,
          comment: str, limit: int | None = None) -> None:
    lines = [f"expect: {expect}", f"comment: {comment}", f"key: {KEY.hex()}", f"session: {SID.hex()}",
             f"role: {role}", f"name: {obj}"]
    if limit is not None:
        lines.append(f"limit: {limit}")
    if body is not None:
        if len(body) > 64 and len(set(body)) == 1:
            lines.append(f"body-repeat: {body[:1].hex()} {len(body)}")
        else:
            lines.append(f"body: {body.hex()}")
    (HERE / f"{name}.txt").write_text("\n".join(lines) + "\n\n" + blob.hex() + "\n")


def main() -> None:
    seal = lambda body, role=crypto.ROLE_CHUNK, name=NAME, comp=0: crypto.seal(  # noqa: E731
        KEY, SID, role, name, body, comp, salt=SALT)
    hello = b"INSERT INTO `t` (`a`) VALUES (1);\n"
    write("chunk_small", seal(hello), expect="ok", role=3, obj=NAME, body=hello,
          comment="one segment, uncompressed")
    write("chunk_empty", seal(b""), expect="ok", role=3, obj=NAME, body=b"",
          comment="empty body: one empty last segment")
    two = b"a" * (crypto.SEGMENT_SIZE + 10)
    write("chunk_two_segments", seal(two), expect="ok", role=3, obj=NAME, body=two,
          comment="two segments: a full one, then 10 bytes")
    exact = b"b" * crypto.SEGMENT_SIZE
    write("chunk_exact_segment", seal(exact), expect="ok", role=3, obj=NAME, body=exact,
          comment="a single full last segment")
    packed = format.compress(hello * 50)
    write("chunk_zstd", seal(packed, comp=1), expect="ok", role=3, obj=NAME, body=packed,
          comment="compression 1: the body is a zstd frame (its plaintext is the statement x50)")
    meta = seal(b'{"format":1}', role=crypto.ROLE_META, name="meta")
    write("meta", meta, expect="ok", role=1, obj="meta", body=b'{"format":1}',
          comment="role meta, name 'meta'")
    good = seal(two)
    flipped = bytearray(seal(hello))
    flipped[30] ^= 1
    write("bad_flipped_byte", bytes(flipped), expect="integrity", role=3, obj=NAME, body=None,
          comment="one bit of the ciphertext flipped")
    header = bytearray(seal(hello))
    header[20] ^= 1
    write("bad_salt", bytes(header), expect="integrity", role=3, obj=NAME, body=None,
          comment="one bit of the salt flipped (other key)")
    write("bad_truncated_segment", good[:crypto.HEADER_SIZE + crypto.SEGMENT_SIZE + 16],
          expect="integrity", role=3, obj=NAME, body=None,
          comment="second segment dropped: the first was not sealed as last")
    write("bad_truncated_tail", good[:-1], expect="integrity", role=3, obj=NAME, body=None,
          comment="last byte missing")
    write("bad_extended", seal(hello) + bytes(16), expect="integrity", role=3, obj=NAME, body=None,
          comment="16 zero bytes appended")
    write("bad_other_name", seal(hello, name="6d" * 32), expect="integrity", role=3, obj=NAME,
          body=None, comment="sealed for another object name (swapped object)")
    write("bad_role", seal(hello, role=crypto.ROLE_MANIFEST), expect="integrity", role=3, obj=NAME,
          body=None, comment="a manifest served as a chunk")
    other = crypto.seal(KEY, bytes(16), crypto.ROLE_CHUNK, NAME, hello, 0, salt=SALT)
    write("bad_other_session", other, expect="integrity", role=3, obj=NAME, body=None,
          comment="same key and name, another session id")
    future = bytearray(seal(hello))
    future[5] = 2
    write("bad_version", bytes(future), expect="unsupported", role=3, obj=NAME, body=None,
          comment="format version 2")
    token = format.Token(url="https://shop.example/synco/" + SID.hex() + "/", session_id=SID, key=KEY)
    (HERE / "token.txt").write_text(
        f"key: {KEY.hex()}\nsession: {SID.hex()}\nurl: {token.url}\n\n{token.encode()}\n")
    bombs(seal)
    recipients()


def zeros_frame(size: int, *, declare: bool = True) -> bytes:
    """A Zstandard frame of ``size`` zero bytes, made in pieces (1 GiB never sits in memory)."""
    out = io.BytesIO()
    compressor = zstandard.ZstdCompressor(level=1, write_content_size=declare)
    with compressor.stream_writer(out, size=size if declare else -1, closefd=False) as writer:
        piece = bytes(min(size, 16 << 20))
        left = size
        while left:
            writer.write(piece[:left])
            left -= min(left, len(piece))
    return out.getvalue()


def bombs(seal) -> None:
    """Decompression bombs (FORMAT.md §3.4): authentic objects that inflate past their cap."""
    cap = 1000  # the size the manifest gives for the chunk
    declared = zeros_frame(64 << 20)
    write("bad_bomb_declared", seal(declared, comp=1), expect="integrity", role=3, obj=NAME,
          body=None, limit=cap, comment="a chunk listed with 1000 bytes whose frame declares "
          "and holds 64 MiB")
    lying = bytearray(declared)
    assert lying[4] >> 6 == 2 and not lying[4] & 0x20  # 4-byte content size after the window byte
    lying[6:10] = (100).to_bytes(4, "little")
    write("bad_bomb_lying", seal(bytes(lying), comp=1), expect="integrity", role=3, obj=NAME,
          body=None, limit=cap, comment="a frame that declares 100 bytes (within the cap) but "
          "holds 64 MiB")
    write("bad_bomb_undeclared", seal(zeros_frame(64 << 20, declare=False), comp=1),
          expect="integrity", role=3, obj=NAME, body=None, limit=cap,
          comment="a frame of 64 MiB that does not declare its size")
    write("bad_bomb_meta", seal(zeros_frame((1 << 30) + 1), role=crypto.ROLE_META, name="meta",
                                comp=1),
          expect="integrity", role=1, obj="meta", body=None, limit=1 << 30,
          comment="a meta whose frame declares and holds 1 GiB + 1 byte, over the 1 GiB cap")
    frame = format.compress(b"INSERT INTO `t` (`a`) VALUES (1);\n" * 50)
    write("bad_zstd_trailing", seal(frame + b"\x00" * 4, comp=1), expect="integrity", role=3,
          obj=NAME, body=None, limit=1 << 20, comment="four bytes after the Zstandard frame")
    write("bad_zstd_truncated", seal(frame[:-4], comp=1), expect="integrity", role=3,
          obj=NAME, body=None, limit=1 << 20, comment="a Zstandard frame cut short")


RECIPIENT = bytes(range(0x60, 0x80))     # the recipient's X25519 private key
OTHER = bytes(range(0x80, 0xA0))         # another recipient's
EPHEMERAL = bytes(range(0xC0, 0xE0))     # the source's ephemeral private key


def write_key(name: str, blob: bytes, *, expect: str, comment: str, sid: bytes = SID) -> None:
    lines = [f"expect: {expect}", f"comment: {comment}",
             f"recipient-private: {RECIPIENT.hex()}",
             f"recipient-public: {format.public_key_text(crypto.public_key(RECIPIENT))}",
             f"ephemeral-private: {EPHEMERAL.hex()}", f"session: {sid.hex()}"]
    if expect == "ok":
        lines.append(f"session-key: {KEY.hex()}")
    (HERE / f"{name}.txt").write_text("\n".join(lines) + "\n\n" + blob.hex() + "\n")


def recipients() -> None:
    """Format version 2 (FORMAT.md §9): key objects, and a token without a key."""
    public = crypto.public_key(RECIPIENT)
    wrap = lambda pub=public, sid=SID: crypto.wrap_session_key(  # noqa: E731
        KEY, sid, pub, ephemeral=EPHEMERAL)
    write_key("key_object", wrap(), expect="ok",
              comment="the session key wrapped to the recipient")
    write_key("key_bad_other_recipient", wrap(crypto.public_key(OTHER)), expect="integrity",
              comment="wrapped to another recipient: the tag does not match")
    flipped = bytearray(wrap())
    flipped[60] ^= 1
    write_key("key_bad_flipped_byte", bytes(flipped), expect="integrity",
              comment="one bit of the wrapped key flipped")
    tagged = bytearray(wrap())
    tagged[20] ^= 1
    write_key("key_bad_ephemeral", bytes(tagged), expect="integrity",
              comment="one bit of the ephemeral public key flipped")
    write_key("key_bad_other_session", wrap(sid=bytes(16)), expect="integrity",
              comment="wrapped for another session id (read with this one)")
    write_key("key_bad_truncated", wrap()[:-1], expect="integrity", comment="last byte missing")
    future = bytearray(wrap())
    future[8] = 2
    write_key("key_bad_version", bytes(future), expect="unsupported", comment="key object version 2")
    token = format.Token(url="https://shop.example/synco/" + SID.hex() + "/", session_id=SID,
                         recipient=crypto.recipient_tag(public))
    (HERE / "token_v2.txt").write_text(
        f"session: {SID.hex()}\nrecipient-public: {format.public_key_text(public)}\n"
        f"url: {token.url}\n\n{token.encode()}\n")


if __name__ == "__main__":
    main()
