"""Pack a staticx-prepared program into synco's self-extracting launcher (build/launcher.c).

    pack.py LAUNCHER STATICX_OUTPUT OUTPUT    write OUTPUT = LAUNCHER + payload + trailer
    pack.py --list FILE                       print the payload of a packed FILE

staticx does the analysis: it finds every system library the program and the libraries in its
PyInstaller archive need, adds its NSS fix, gives the program a placeholder interpreter and RPATH,
and stores all that as a tar in the ELF section ``.staticx.archive``. Its own runtime unpacks that
tar with one compression setting for everything; this payload compresses each library with xz
(x86 filter) and stores the program as it is, its PyInstaller archive being compressed already.

Layout (all integers little-endian), read by build/launcher.c:

    launcher | entry... | trailer
    entry:   u8 kind (0 file, 1 symlink), u8 codec (0 stored, 1 xz), u8 role (0 library,
             1 program, 2 interpreter), u8 0, u32 mode, u32 name length, u64 size,
             u64 stored size, name, stored bytes (a symlink's are its target)
    trailer: u64 offset of the first entry, u32 entry count, u32 format version (1), "SYNCOSFX"
"""

from __future__ import annotations

import io
import lzma
import struct
import sys
import tarfile

MAGIC = b"SYNCOSFX"
VERSION = 1
ENTRY = struct.Struct("<BBBBIIQQ")
TRAILER = struct.Struct("<QII8s")
FILE, SYMLINK = 0, 1
STORED, XZ = 0, 1
LIBRARY, PROGRAM, INTERPRETER = 0, 1, 2
ROLES = {LIBRARY: "library", PROGRAM: "program", INTERPRETER: "interpreter"}
CODECS = {STORED: "stored", XZ: "xz"}


def xz(data: bytes) -> bytes:
    """The smallest xz the launcher decodes quickly: x86 branch filter, preset 9e, and a
    dictionary no larger than the file (the decoder allocates all of it)."""
    dict_size = max(1 << 16, 1 << (len(data) - 1).bit_length())
    return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32, filters=[
        {"id": lzma.FILTER_X86},
        {"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME,
         "dict_size": min(dict_size, 1 << 26)},
    ])


def staticx_archive(path: str) -> tarfile.TarFile:
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        section = ELFFile(f).get_section_by_name(".staticx.archive")
        if section is None:
            sys.exit(f"pack.py: {path} has no .staticx.archive section (not made by staticx?)")
        data = section.data()
    if data[:6] == b"\xfd7zXZ\0":
        sys.exit(f"pack.py: {path} was made with compression; run staticx with --no-compress")
    return tarfile.open(fileobj=io.BytesIO(data))


def pack(launcher: str, prepared: str, output: str) -> None:
    tar = staticx_archive(prepared)
    links = {m.name: m.linkname for m in tar.getmembers() if m.issym()}
    program, interpreter = links.pop(".staticx.prog"), links.pop(".staticx.interp")
    entries = []
    for member in tar.getmembers():
        name = member.name
        if name.startswith(".staticx."):
            continue
        if "/" in name:
            sys.exit(f"pack.py: unexpected folder in the staticx archive: {name}")
        role = PROGRAM if name == program else INTERPRETER if name == interpreter else LIBRARY
        if member.issym():
            target = member.linkname.encode()
            entries.append((SYMLINK, STORED, role, 0o777, name, len(target), target))
        elif member.isfile():
            data = tar.extractfile(member).read()
            codec, stored = (STORED, data) if role == PROGRAM else (XZ, xz(data))
            entries.append((FILE, codec, role, member.mode, name, len(data), stored))
        else:
            sys.exit(f"pack.py: unexpected entry in the staticx archive: {name}")
    with open(launcher, "rb") as f:
        head = f.read()
    with open(output, "wb") as out:
        out.write(head)
        for kind, codec, role, mode, name, size, stored in entries:
            raw = name.encode()
            out.write(ENTRY.pack(kind, codec, role, 0, mode, len(raw), size, len(stored)))
            out.write(raw)
            out.write(stored)
        out.write(TRAILER.pack(len(head), len(entries), VERSION, MAGIC))


def read(path: str) -> list[dict]:
    """The entries of a packed file (what ``--list`` prints), stored bytes included."""
    with open(path, "rb") as f:
        data = f.read()
    offset, count, version, magic = TRAILER.unpack_from(data, len(data) - TRAILER.size)
    if magic != MAGIC or version != VERSION:
        raise ValueError(f"{path}: no payload of format {VERSION}")
    entries = []
    for _ in range(count):
        kind, codec, role, _, mode, name_len, size, stored_len = ENTRY.unpack_from(data, offset)
        offset += ENTRY.size
        name = data[offset:offset + name_len].decode()
        offset += name_len
        stored = data[offset:offset + stored_len]
        offset += stored_len
        entries.append({"name": name, "kind": "symlink" if kind == SYMLINK else "file",
                        "codec": CODECS[codec], "role": ROLES[role], "mode": mode, "size": size,
                        "stored": stored})
    return entries


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "--list":
        for e in read(argv[1]):
            print(f"{e['role']:<12} {e['kind']:<8} {e['codec']:<7} {e['size']:>10} "
                  f"{len(e['stored']):>10} "
                  f"{e['name']}")
    elif len(argv) == 3:
        pack(*argv)
    else:
        sys.exit(__doc__.split("\n\n")[1])


if __name__ == "__main__":
    main(sys.argv[1:])
