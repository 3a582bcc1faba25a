"""The local side of file sets against a hostile or broken manifest and a folder full of links:
sessions are crafted and sealed here with the real SessionCrypto and served from memory, so every
path the client sees went through the same decryption and checks as a real download."""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synco import files
from synco.download import Download, DownloadOptions
from synco.state import FileHashes
from synco.ui import UI
from synco_source import format
from synco_source.errors import IntegrityError, LocalIOError, SessionNotFound, UnsupportedFormat

MTIME = 1_500_000_000_000_000_000


class Memory:
    """A session's objects in memory, with the interface Download wants of a remote."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def get(self, path: str) -> bytes:
        if path not in self.blobs:
            raise SessionNotFound(url="memory:")
        return self.blobs[path]

    def close(self) -> None:
        pass

    def __enter__(self) -> "Memory":
        return self

    def __exit__(self, *exc) -> None:
        pass


def entry(path, content: bytes = b"x", mode: int = 0o644, mtime_ns: int = MTIME) -> dict:
    return {"path": path, "content": content, "mode": mode, "mtime_ns": mtime_ns}


def session(entries: list[dict], name: str = "f") -> tuple[Memory, format.SessionCrypto]:
    """A ready session with one file set of ``entries`` (each with its ``content``)."""
    memory = Memory()
    sc = format.SessionCrypto(os.urandom(32), os.urandom(16))
    listed = []
    for e in entries:
        content = e["content"]
        digest = hashlib.sha256(content).digest()
        chunk, blob = sc.seal_chunk(content, digest)
        memory.blobs[format.object_path(chunk)] = blob
        listed.append({"path": e["path"], "size": len(content), "sha256": digest.hex(),
                       "mode": e["mode"], "mtime_ns": e["mtime_ns"],
                       "chunks": [{"id": chunk, "size": len(content), "sha256": digest.hex()}]})
    manifest = {"format": format.FORMAT_VERSION, "name": name, "kind": "files", "root": name,
                "entries": listed, "skipped": [], "size": sum(len(e["content"]) for e in entries)}
    mname, mblob = sc.seal_manifest(name, manifest)
    memory.blobs[format.object_path(mname)] = mblob
    now = int(time.time())
    memory.blobs[format.META_PATH] = sc.seal_meta({
        "format": format.FORMAT_VERSION, "session": sc.session_id.hex(), "seq": 1,
        "state": "ready", "created": now, "expires": now + 3600, "synco": "test",
        "sets": [{"name": name, "kind": "files", "manifest": mname, "size": 0}]})
    return memory, sc


def pull(entries: list[dict], target: Path, name: str = "f"):
    memory, sc = session(entries, name)
    opts = DownloadOptions(file_dirs={name: target}, poll_interval=0)
    return Download(opts, UI(quiet=True), remote=memory, sc=sc).run()


def snapshot(root: Path) -> dict:
    """Everything under ``root`` as lstat sees it (links not followed): content, mode, mtime."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            body = (os.readlink(path) if stat.S_ISLNK(st.st_mode) else
                    path.read_bytes() if stat.S_ISREG(st.st_mode) else None)
            out[str(path.relative_to(root))] = (stat.S_IFMT(st.st_mode), st.st_mode & 0o7777,
                                                st.st_mtime_ns, body)
    return out


@pytest.fixture(autouse=True)
def state_home(tmp_path, monkeypatch):
    """The client's state folder inside the test's own folder."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture
def places(tmp_path):
    """(target folder with a file of the developer's, a folder outside it with a secret file)."""
    target, outside = tmp_path / "target", tmp_path / "outside"
    target.mkdir()
    outside.mkdir()
    (target / "mine.txt").write_text("mine\n")
    (outside / "secret.txt").write_text("secret\n")
    os.chmod(outside / "secret.txt", 0o600)
    os.utime(outside / "secret.txt", ns=(MTIME, MTIME))
    return target, outside


LONG = "n" * 256
DEEP = "/".join(["d" * 200] * 21)  # each part fine, the whole path over 4096 bytes


@pytest.mark.parametrize("path", [
    "/etc/passwd", "../escape", "a/../../escape", "a/..", "./a", "a/./b", "a//b", "a/", "",
    "a\0b", "a\\..\\..\\escape", "C:\\escape", LONG, f"a/{LONG}", DEEP,
])
def test_unsafe_paths_are_refused_before_anything_is_written(places, tmp_path, path):
    target, outside = places
    before = snapshot(tmp_path)
    with pytest.raises(IntegrityError, match="unsafe path|not a string"):
        pull([entry("ok.txt"), entry(path)], target)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("path", [7, None, ["a"]])
def test_a_path_that_is_no_string_is_refused(places, tmp_path, path):
    target, _ = places
    before = snapshot(tmp_path)
    with pytest.raises((IntegrityError, UnsupportedFormat)):
        pull([entry("ok.txt"), entry(path)], target)
    assert snapshot(tmp_path) == before


def test_safe_names_still_work(places):
    target, _ = places
    names = ["é/ü.txt", "with space", "a" * 255, "/".join(["d" * 100] * 30), ".hidden", "..dots",
             "x..y", "-dash"]
    pull([entry(name, name.encode()) for name in names], target)
    for name in names:
        assert (target / name).read_bytes() == name.encode()


@pytest.mark.parametrize("paths, needle", [
    (["a.txt", "a.txt"], "twice"),
    (["a", "a/b.txt"], "both as a file and as the folder"),
    (["x/a", "x/a/b/c"], "both as a file and as the folder"),
    ([".synco-staging-0123456789abcdef/0"], "inside a staging folder of synco"),
])
def test_manifests_that_contradict_themselves_are_refused(places, paths, needle):
    target, _ = places
    before = snapshot(target)
    with pytest.raises(IntegrityError, match=needle):
        pull([entry(p, p.encode()) for p in paths], target)
    assert snapshot(target) == before


@pytest.mark.parametrize("a, b", [("README", "readme"), ("caf\u00e9.txt", "cafe\u0301.txt"),
                                  ("Dir/x", "dir/x")])
def test_names_one_file_system_would_merge(places, monkeypatch, a, b):
    """Refused where the file system folds case or normalization (one would silently overwrite
    the other); kept apart where it does not (Linux)."""
    target, _ = places
    monkeypatch.setattr(files, "folds_names", lambda folder: True)
    before = snapshot(target)
    with pytest.raises(IntegrityError, match="one file on this file system"):
        pull([entry(a, b"A"), entry(b, b"B")], target)
    assert snapshot(target) == before
    monkeypatch.undo()
    assert files.folds_names(target) is False, "this test needs a case-sensitive file system"
    pull([entry(a, b"A"), entry(b, b"B")], target)
    assert (target / a).read_bytes() == b"A" and (target / b).read_bytes() == b"B"
    assert not [p for p in target.iterdir() if p.name.startswith(".synco-probe")]


def test_a_linked_folder_on_the_path_is_never_written_through(places, tmp_path):
    target, outside = places
    os.symlink(outside, target / "uploads")
    before = snapshot(tmp_path)
    with pytest.raises(LocalIOError, match=r"uploads is a symbolic link"):
        pull([entry("uploads/secret.txt", b"overwritten"), entry("uploads/new.txt")], target)
    assert snapshot(tmp_path) == before


def test_a_linked_folder_deeper_down_and_a_relative_link(places, tmp_path):
    target, outside = places
    (target / "a").mkdir()
    os.symlink("../../outside", target / "a" / "b")
    before = snapshot(tmp_path)
    with pytest.raises(LocalIOError, match=r"a/b is a symbolic link"):
        pull([entry("a/b/c/new.txt")], target)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("same_content", [True, False])
def test_a_file_that_is_a_link_is_replaced_and_its_target_left_alone(places, tmp_path, same_content):
    target, outside = places
    os.symlink(outside / "secret.txt", target / "doc.txt")
    content = b"secret\n" if same_content else b"from the server\n"
    before = snapshot(outside)
    summary = pull([entry("doc.txt", content, mode=0o644, mtime_ns=MTIME + 7)], target)
    assert snapshot(outside) == before, "the file the link pointed at was touched"
    st = (target / "doc.txt").lstat()
    assert stat.S_ISREG(st.st_mode) and st.st_mode & 0o777 == 0o644 and st.st_mtime_ns == MTIME + 7
    assert (target / "doc.txt").read_bytes() == content
    assert summary.files_written == 1


def test_a_file_where_the_server_has_a_folder(places):
    target, _ = places
    with pytest.raises(LocalIOError, match="mine.txt is a file locally but a folder"):
        pull([entry("mine.txt/x")], target)
    assert (target / "mine.txt").read_text() == "mine\n"


def test_modes_are_masked_to_permission_bits(places):
    target, _ = places
    (target / "same.txt").write_bytes(b"same")
    pull([entry("new.sh", b"#!/bin/sh\n", mode=0o6755), entry("sticky", b"s", mode=0o1777),
          entry("same.txt", b"same", mode=0o4700)], target)
    assert (target / "new.sh").stat().st_mode & 0o7777 == 0o755
    assert (target / "sticky").stat().st_mode & 0o7777 == 0o777
    assert (target / "same.txt").stat().st_mode & 0o7777 == 0o700


def test_a_link_swapped_in_after_the_plan_is_not_followed(places, tmp_path):
    """The race: a folder checked at plan time becomes a link before the files are moved in."""
    target, outside = places
    (target / "sub").mkdir()
    memory, sc = session([entry("sub/new.txt", b"new")])
    manifest_entry = sc.open_meta(memory.get("meta"))["sets"][0]
    manifest = sc.open_manifest(manifest_entry["manifest"],
                                memory.get(format.object_path(manifest_entry["manifest"])), "f")
    plan = files.plan("f", manifest, target)
    with files.Staging(plan, "ab" * 16) as staging:
        e = plan.needed[0]
        staging.write(e, [sc.open_chunk(c["id"], memory.get(format.object_path(c["id"])),
                                        c["size"], c["sha256"]) for c in e["chunks"]])
        (target / "sub").rmdir()
        os.symlink(outside, target / "sub")
        with pytest.raises(LocalIOError, match="sub is a symbolic link"):
            staging.commit()
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert not [p for p in target.iterdir() if p.name.startswith(files.STAGING_PREFIX)]


def count_hashes(monkeypatch) -> list[str]:
    """Names of the local files read to be hashed from now on."""
    read: list[str] = []
    real = files._hash

    def counting(dir_fd, name, st):
        read.append(name)
        return real(dir_fd, name, st)

    monkeypatch.setattr(files, "_hash", counting)
    return read


def manifest_of(entries: list[dict]) -> dict:
    return {"entries": [{"path": e["path"], "size": len(e["content"]), "mode": e["mode"],
                         "sha256": hashlib.sha256(e["content"]).hexdigest(),
                         "mtime_ns": e["mtime_ns"], "chunks": []} for e in entries]}


def test_a_second_plan_reads_no_unchanged_file(places, monkeypatch):
    target, _ = places
    entries = [entry(f"d/{i}.bin", os.urandom(1000 + i)) for i in range(20)]
    pull(entries, target)
    read = count_hashes(monkeypatch)
    plan = files.plan("f", manifest_of(entries), target)
    assert len(plan.present) == 20 and read == []
    assert plan.hashes.hits == 20

    # touched: mtime changed, content the same -> hashed again, still present
    os.utime(target / "d/3.bin", ns=(MTIME + 1, MTIME + 1))
    # changed in place, same size, mtime set back: only the ctime tells -> hashed, needed
    data = bytearray((target / "d/5.bin").read_bytes())
    data[0] ^= 1
    (target / "d/5.bin").write_bytes(bytes(data))
    os.utime(target / "d/5.bin", ns=(MTIME, MTIME))
    # replaced by another file (new inode), same size and mtime
    (target / "d/7.bin").unlink()
    (target / "d/7.bin").write_bytes(entries[7]["content"][::-1])
    os.utime(target / "d/7.bin", ns=(MTIME, MTIME))
    plan = files.plan("f", manifest_of(entries), target)
    assert sorted(read) == ["3.bin", "5.bin", "7.bin"]
    assert sorted(e["path"] for e in plan.needed) == ["d/5.bin", "d/7.bin"]


def test_a_broken_state_file_is_ignored(places, monkeypatch):
    target, _ = places
    entries = [entry("a.txt", b"a"), entry("b.txt", b"b")]
    pull(entries, target)
    state = FileHashes(target).path
    assert state.is_file() and state.stat().st_mode & 0o077 == 0
    for broken in (b"{not json", b'{"version": 99, "files": {}}', b"[]",
                   b'{"version": 1, "root": "/elsewhere", "files": {}}'):
        state.write_bytes(broken)
        read = count_hashes(monkeypatch)
        plan = files.plan("f", manifest_of(entries), target)
        assert len(plan.present) == 2 and sorted(read) == ["a.txt", "b.txt"]
        monkeypatch.undo()
        monkeypatch.setenv("XDG_STATE_HOME", str(state.parent.parent.parent))


def hold_lock(folder: Path) -> subprocess.Popen:
    """A process that holds the staging lock of ``folder``, as a running synco does."""
    code = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder / files.LOCK_NAME)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_sweep_removes_only_the_staging_folders_of_dead_runs(places):
    target, _ = places
    dead, alive, old, young = (target / f"{files.STAGING_PREFIX}{n}" for n in
                               ("dead", "alive", "old", "young"))
    for folder in (dead, alive, old, young):
        folder.mkdir()
        (folder / "0").write_bytes(b"plaintext of a file")
    (dead / files.LOCK_NAME).write_text("123\n")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    not_ours = target / f"{files.STAGING_PREFIX}link"
    os.symlink(target / "mine.txt", not_ours)
    holder = hold_lock(alive)
    try:
        removed = files.sweep(target)
        assert sorted(p.name for p in removed) == [dead.name, old.name]
        assert alive.is_dir() and young.is_dir() and not_ours.is_symlink()
        assert (target / "mine.txt").read_text() == "mine\n"
    finally:
        holder.kill()
        holder.wait()
    assert [p.name for p in files.sweep(target)] == [alive.name]


def test_a_live_staging_folder_of_the_same_session_is_not_taken_over(places):
    target, _ = places
    plan = files.plan("f", manifest_of([entry("a.txt")]), target)
    with files.Staging(plan, "cd" * 16) as first:
        assert (first.folder / files.LOCK_NAME).read_text() == f"{os.getpid()}\n"
        with pytest.raises(Exception, match="another synco run is writing"):
            files.Staging(plan, "cd" * 16).__enter__()
        assert files.sweep(target) == [], "a live run's staging folder is kept"
        assert first.folder.is_dir()
    assert not first.folder.exists()


def test_the_lock_is_really_held(places):
    target, _ = places
    plan = files.plan("f", manifest_of([entry("a.txt")]), target)
    with files.Staging(plan, "ef" * 16) as staging:
        fd = os.open(staging.folder / files.LOCK_NAME, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
