# Shared by the two .spec files (exec'd, so it sees SPEC): exclude lists and the RPATH clean-up.
import os
import shutil
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(SPEC)))  # noqa: F821 (set by PyInstaller)



def import_from_checkout():
    """Make this checkout's packages importable, here and in the helper processes of
    collect_submodules (which only see PYTHONPATH, not the spec's pathex)."""
    import sys

    paths = [REPO, os.path.join(REPO, "frameworks")]
    sys.path[:0] = paths
    os.environ["PYTHONPATH"] = os.pathsep.join(paths + [os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)


# stdlib that neither program needs (tests, GUI, docs, other protocols and formats). Not ctypes:
# psycopg imports it (psycopg.pq.misc) even with its C implementation. Not sqlite3 (the SQLite
# engine, both sides) nor xml.etree and pyexpat (the S3 target reads the store's XML answers).
STDLIB_EXCLUDES = [
    "tkinter", "_tkinter", "turtle", "turtledemo", "idlelib", "lib2to3", "pydoc", "pydoc_data",
    "doctest", "unittest", "test", "distutils", "setuptools", "pkg_resources", "pip", "ensurepip",
    "venv", "xmlrpc", "xml.dom", "xml.sax", "xml.parsers.expat.model", "dbm", "curses",
    "_curses", "_curses_panel", "readline", "multiprocessing", "_multiprocessing",
    "pickletools", "tracemalloc", "_tracemalloc", "cProfile", "profile", "pstats", "pdb",
    "bdb", "ftplib", "imaplib", "poplib", "smtplib", "nntplib", "telnetlib", "mailbox", "tarfile",
    "zipapp", "lzma", "_lzma", "bz2", "_bz2", "audioop", "_testcapi", "_testinternalcapi",
    "_testbuffer", "_testmultiphase", "_xxtestfuzz", "xxlimited", "_ctypes_test",
]


def _dynamic(path):
    """(NEEDED list, RPATH/RUNPATH entries) of an ELF file; None for anything else."""
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        if f.read(4) != b"\x7fELF":
            return None
        f.seek(0)
        dyn = ELFFile(f).get_section_by_name(".dynamic")
        if dyn is None:
            return [], []
        needed, paths = [], []
        for tag in dyn.iter_tags():
            if tag.entry.d_tag == "DT_NEEDED":
                needed.append(tag.needed)
            elif tag.entry.d_tag in ("DT_RPATH", "DT_RUNPATH"):
                paths += (tag.rpath if tag.entry.d_tag == "DT_RPATH" else tag.runpath).split(":")
        return needed, paths


def _patched(dest, src, workpath, *args):
    copy = os.path.join(workpath, "patched", dest)
    os.makedirs(os.path.dirname(copy), exist_ok=True)
    shutil.copy2(src, copy)
    subprocess.run(["patchelf", *args, copy], check=True)
    return copy


def fix_binaries(entries, workpath):
    """Copies of the binaries whose RPATH/RUNPATH names absolute folders (a Python built with one,
    e.g. by pyenv), with only the $ORIGIN-relative entries kept: staticx refuses the others, and
    they would name a folder of the build machine. Also shares one OpenSSL (see share_openssl)."""
    entries = share_openssl(entries, workpath)
    out = []
    for dest, src, kind in entries:
        info = _dynamic(src) if kind in ("BINARY", "EXTENSION") else None
        if info and any(not p.startswith("$ORIGIN") for p in info[1]):
            keep = ":".join(p for p in info[1] if p.startswith("$ORIGIN"))
            src = _patched(dest, src, workpath,
                           *(["--set-rpath", keep] if keep else ["--remove-rpath"]))
        out.append((dest, src, kind))
    return out


def share_openssl(entries, workpath):
    """psycopg_binary brings its own OpenSSL 3 (libpq needs it); Python's _ssl and _hashlib would
    bring a second copy (2.2 MB compressed). OpenSSL keeps its ABI within 3.x, so point _ssl and
    _hashlib at psycopg's copy and leave the other one out."""
    libs = {os.path.basename(d).split("-")[0]: d for d, s, k in entries
            if d.startswith("psycopg_binary.libs/") and d.endswith(".so.3")}
    if not {"libcrypto", "libssl"} <= set(libs):
        return entries
    out = []
    for dest, src, kind in entries:
        name = os.path.basename(dest)
        if name.startswith(("_ssl.", "_hashlib.")):
            up = "/".join([".."] * dest.count("/"))
            src = _patched(dest, src, workpath,
                           "--replace-needed", "libcrypto.so.3", os.path.basename(libs["libcrypto"]),
                           "--replace-needed", "libssl.so.3", os.path.basename(libs["libssl"]),
                           "--force-rpath", "--set-rpath", f"$ORIGIN/{up}/psycopg_binary.libs")
        out.append((dest, src, kind))
    still = {n for d, s, k in out if k in ("BINARY", "EXTENSION") and d not in ("libcrypto.so.3", "libssl.so.3")
             for n in (_dynamic(s) or ([], []))[0]}
    return [e for e in out if e[0] not in ("libcrypto.so.3", "libssl.so.3") or e[0] in still]
