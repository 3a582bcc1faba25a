"""``synco pull`` through a real sshd (tests/sshd.py) and stand-in kubectl/docker programs.

The "remote" is this machine reached over ssh on 127.0.0.1: its application folder is a generic
project (synco.yaml) in tmp_path, its TMPDIR is a folder of the test (so leftovers are seen), and
synco-source is either a wrapper on its PATH that runs this checkout's (fast), or the release
binary that synco uploads (built once per test run by the ``built`` fixture).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from binaries import SERVER
from e2e import make_files, make_shop, one_error_line, tree
from pgfixtures import pg_execute, pg_fingerprint
from dbfixtures import mysql_fingerprint, url_text
from sourceproc import StaticServer, env_with, synco
from sshd import Sshd, free_port, sshd_server  # noqa: F401 - the fixture
from synco_source import __version__

REPO = Path(__file__).resolve().parent.parent
VENV_SOURCE = Path(sys.executable).parent / "synco-source"


def mysql_url(db) -> str:
    return url_text(db)  # the server of SYNCO_TEST_MYSQL_URL, socket or TCP


def pg_url(db) -> str:
    return url_text(db)


def script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def install_wrapper(folder: Path) -> Path:
    """A synco-source already on the remote: a wrapper on its PATH running this checkout's."""
    return script(folder / "synco-source", f'#!/bin/sh\nexec {VENV_SOURCE} "$@"\n')


def make_app(root: Path, db_url: str, files: bool = True) -> Path:
    """The application on the "remote": a generic project whose synco.yaml names it all."""
    root.mkdir()
    text = f"database: {{url: '{db_url}'}}\n"
    if files:
        make_files(root / "uploads")
        text += "files: {uploads: uploads}\n"
    (root / "synco.yaml").write_text(text)
    return root


@pytest.fixture(autouse=True)
def _no_release_download(monkeypatch):
    """No test reaches for the real release location: a synco-source is on the remote, given,
    or served by the test itself."""
    monkeypatch.setenv("SYNCO_DOWNLOAD_URL", "http://127.0.0.1:9/")
    monkeypatch.delenv("SYNCO_SOURCE_BINARY", raising=False)


@pytest.fixture
def ssh_env(sshd_server, monkeypatch):
    monkeypatch.setenv("SYNCO_SSH_COMMAND", sshd_server.ssh_command)
    return sshd_server


@pytest.fixture
def pg_shop(pg_db):
    src = pg_db("src")
    pg_execute(src, "CREATE TABLE customer (id int PRIMARY KEY, name text, note text)",
               "INSERT INTO customer SELECT g, 'customer ' || g, repeat(md5(g::text), 4) "
               "FROM generate_series(1, 20000) g",
               "CREATE VIEW customer_names AS SELECT id, name FROM customer")
    return src


def pulled(result, sshd: Sshd) -> None:
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert sshd.leftovers() == [], sshd.leftovers()


# ----------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("how", ["installed", "uploaded"])
def test_pull_mysql_project_over_ssh(how, ssh_env, shop, mysql_db, tmp_path, request):
    sshd = ssh_env
    app = make_app(tmp_path / "app", mysql_url(shop))
    dst = mysql_db("dst")
    local = tmp_path / "local"
    local.mkdir()
    args = []
    if how == "installed":
        install_wrapper(sshd.bin)
    else:  # an older synco-source on the remote's PATH is not used
        script(sshd.bin / "synco-source", '#!/bin/sh\necho "synco-source 0.0.1"; exit 1\n')
        args = ["--source-binary", str(request.getfixturevalue("built") / SERVER.name)]
    result = synco("pull", sshd.url(app), "--yes", "--db-url", mysql_url(dst),
                   "--files-dir", f"uploads={local / 'uploads'}", *args, cwd=local)
    pulled(result, sshd)
    assert mysql_fingerprint(dst) == mysql_fingerprint(shop)
    assert tree(local / "uploads") == tree(app / "uploads")
    assert ("uploading synco-source" in result.stderr) == (how == "uploaded"), result.stderr
    assert ("is synco-source 0.0.1, not" in result.stderr) == (how == "uploaded"), result.stderr
    assert (f"using {sshd.bin / 'synco-source'}" in result.stderr) == (how == "installed")
    assert not [p for p in app.rglob("*") if "synco" in p.name and p.name != "synco.yaml"]


@pytest.mark.parametrize("how", ["installed", "uploaded"])
def test_pull_postgres_project_over_ssh(how, ssh_env, pg_shop, pg_db, tmp_path, monkeypatch,
                                        request):
    sshd = ssh_env
    app = make_app(tmp_path / "app", pg_url(pg_shop), files=False)
    dst = pg_db("dst")
    if how == "installed":
        install_wrapper(sshd.bin)
    else:  # the binary from the environment variable this time
        monkeypatch.setenv("SYNCO_SOURCE_BINARY", str(request.getfixturevalue("built") / SERVER.name))
    result = synco("pull", sshd.url(app), "--yes", "--db-url", pg_url(dst), cwd=tmp_path)
    pulled(result, sshd)
    assert pg_fingerprint(dst) == pg_fingerprint(pg_shop)


def test_upload_where_programs_may_run(built, shop, tmp_path, monkeypatch):
    """The remote's TMPDIR is mounted noexec: the binary goes to the next folder where programs
    may run (here the host's /tmp), runs, and is removed from there too."""
    sshd = Sshd(tmp_path / "sshd", noexec_tmp=True)
    try:
        monkeypatch.setenv("SYNCO_SSH_COMMAND", sshd.ssh_command)
        wait_for(lambda: sshd.tmp_view.exists(), 10, "sshd's namespace")
        check = sshd.tmp_view / "run-test"  # the mount is really noexec
        script(check, "#!/bin/sh\n")
        with pytest.raises(PermissionError):
            subprocess.run([str(check)])
        check.unlink()
        app = make_app(tmp_path / "app", mysql_url(shop), files=False)
        before = set(Path("/tmp").glob("synco-pull-*"))
        result = synco("pull", sshd.url(app), "--output", str(tmp_path / "out.sql"),
                       "--source-binary", str(built / SERVER.name), cwd=tmp_path)
        assert result.code == 0, result.stderr
        assert "uploading synco-source" in result.stderr
        assert b"PLAINTEXT-MARKER" in (tmp_path / "out.sql").read_bytes()
        assert sshd.leftovers() == []
        assert set(Path("/tmp").glob("synco-pull-*")) <= before
    finally:
        sshd.stop()


def test_only_the_public_key_travels(ssh_env, shop, mysql_db, tmp_path):
    """The remote command line holds a public key and no session key; the token the server
    would print is never needed."""
    sshd = ssh_env
    seen = sshd.bin / "argv.log"
    script(sshd.bin / "synco-source", f'#!/bin/sh\necho "$*" >>{seen}\nexec {VENV_SOURCE} "$@"\n')
    app = make_app(tmp_path / "app", mysql_url(shop), files=False)
    result = synco("pull", sshd.url(app), "--output", str(tmp_path / "out.sql"), cwd=tmp_path)
    pulled(result, sshd)
    serve = [line for line in seen.read_text().splitlines() if line.startswith("serve")]
    assert len(serve) == 1 and "--stdio" in serve[0] and "--recipient syncopk1" in serve[0], serve
    assert b"PLAINTEXT-MARKER" in (tmp_path / "out.sql").read_bytes()


# ------------------------------------------------------------------ other channels, remotes


def standin(folder: Path, name: str, body: str) -> None:
    """A stand-in kubectl or docker (no cluster or daemon here): Python that checks the
    argument shape the real tool documents and runs the command locally."""
    script(folder / name, f"#!{sys.executable}\nimport json, os, sys\nargs = sys.argv[1:]\n{body}")


DOCKER = """
if args[:2] != ["exec", "-i"] or len(args) < 4:
    sys.exit(f"stand-in docker: unexpected arguments {args}")
if args[2] != os.environ["STANDIN_CONTAINER"]:
    sys.exit(f"Error response from daemon: No such container: {args[2]}")
os.execvp(args[3], args[3:])
"""

KUBECTL = """
ns = os.environ["STANDIN_NS"]
def take(flag):
    if flag in args:
        i = args.index(flag)
        value = args[i + 1]
        del args[i:i + 2]
        return value
if take("--context") != os.environ.get("STANDIN_CONTEXT"):
    sys.exit('error: context was not found for specified context')
if take("-n") != ns:
    sys.exit(f"stand-in kubectl: wrong namespace in {sys.argv}")
if args[:1] == ["get"]:
    assert take("-o") == "json", sys.argv
    if args[1:] == ["deployment", "shop"]:
        print(json.dumps({"spec": {"selector": {"matchLabels": {"app": "shop"}}}}))
    elif args[1:] == ["pods", "-l", "app=shop"]:
        print(json.dumps({"items": [
            {"metadata": {"name": "shop-old"}, "status": {"phase": "Pending"}},
            {"metadata": {"name": "shop-7d9f8-abcde"}, "status": {"phase": "Running",
             "containerStatuses": [{"ready": True}]}}]}))
    else:
        sys.exit(f'Error from server (NotFound): deployments.apps "{args[2]}" not found')
    sys.exit(0)
if args[:2] != ["exec", "-i"] or "--" not in args:
    sys.exit(f"stand-in kubectl: unexpected arguments {sys.argv}")
cut = args.index("--")
pod, rest, command = args[2], args[3:cut], args[cut + 1:]
if pod != "shop-7d9f8-abcde":
    sys.exit(f'Error from server (NotFound): pods "{pod}" not found')
if rest != ["-c", "php"]:
    sys.exit(f'error: unable to upgrade connection: container not found ("{rest[-1] if rest else ""}")')
os.execvp(command[0], command)
"""


@pytest.fixture
def standins(tmp_path, monkeypatch):
    folder = tmp_path / "standin-bin"
    folder.mkdir()
    standin(folder, "docker", DOCKER)
    standin(folder, "kubectl", KUBECTL)
    install_wrapper(folder)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "remote-tmp"))
    (tmp_path / "remote-tmp").mkdir()
    return tmp_path / "remote-tmp"


def test_pull_through_docker_exec(standins, shop, mysql_db, tmp_path, monkeypatch):
    monkeypatch.setenv("STANDIN_CONTAINER", "shop_php_1")
    app = make_app(tmp_path / "app", mysql_url(shop), files=False)
    dst = mysql_db("dst")
    result = synco("pull", f"docker://shop_php_1{app}", "--yes", "--db-url", mysql_url(dst),
                   cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert mysql_fingerprint(dst) == mysql_fingerprint(shop)
    assert list(standins.iterdir()) == []
    missing = synco("pull", f"docker://other{app}", "--db-url", mysql_url(dst), cwd=tmp_path)
    assert missing.code != 0 and "no container other" in one_error_line(missing.stderr)


def test_pull_through_kubectl_deployment(standins, shop, mysql_db, tmp_path, monkeypatch):
    monkeypatch.setenv("STANDIN_NS", "shop-prod")
    monkeypatch.setenv("STANDIN_CONTEXT", "prod")
    app = make_app(tmp_path / "app", mysql_url(shop), files=False)
    dst = mysql_db("dst")
    result = synco("pull", f"kubectl://shop-prod/deploy:shop{app}", "--container", "php",
                   "--context", "prod", "--yes", "--db-url", mysql_url(dst), cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert mysql_fingerprint(dst) == mysql_fingerprint(shop)
    assert list(standins.iterdir()) == []
    for url, extra, words in [
        (f"kubectl://shop-prod/shop-gone{app}", ["-c", "php"], "no pod shop-gone"),
        (f"kubectl://shop-prod/shop-7d9f8-abcde{app}", ["-c", "nginx"], "no container nginx"),
        (f"kubectl://shop-prod/deploy:nope{app}", ["-c", "php"], "no deployment nope"),
    ]:
        bad = synco("pull", url, *extra, "--context", "prod", "--db-url", mysql_url(dst),
                    cwd=tmp_path)
        assert bad.code != 0 and words in one_error_line(bad.stderr), bad.stderr


def test_pull_through_exec_prefix(ssh_env, shop, mysql_db, tmp_path):
    """--exec with an ssh prefix (a command line for the remote shell, here with env on top)
    and with a prefix that takes arguments (env)."""
    sshd = ssh_env
    install_wrapper(sshd.bin)
    app = make_app(tmp_path / "app", mysql_url(shop), files=False)
    dst = mysql_db("dst")
    prefix = f"{sshd.ssh_command} -l {sshd.user} 127.0.0.1 env LC_ALL=C"
    result = synco("pull", "--exec", prefix, str(app), "--yes", "--db-url", mysql_url(dst),
                   cwd=tmp_path)
    pulled(result, sshd)
    assert mysql_fingerprint(dst) == mysql_fingerprint(shop)
    local = synco("pull", "--exec", f"env PATH={sshd.bin}:{os.environ['PATH']} "
                  f"TMPDIR={sshd.tmp}", str(app), "--yes", "--db-url", mysql_url(dst),
                  cwd=tmp_path)
    pulled(local, sshd)


def test_remotes_in_synco_yaml(ssh_env, shop, mysql_db, tmp_path):
    sshd = ssh_env
    install_wrapper(sshd.bin)
    app = make_app(tmp_path / "app", mysql_url(shop), files=False)
    dst = mysql_db("dst")
    local = tmp_path / "local"
    local.mkdir()
    (local / "synco.yaml").write_text(
        f"database: {{url: '{mysql_url(dst)}'}}\n"
        f"remotes:\n  production: {{url: 'ssh://{sshd.user}@127.0.0.1', path: '{app}'}}\n")
    listed = synco("remotes", cwd=local)
    assert listed.code == 0 and listed.stdout.split() == ["production", sshd.url(app)], listed
    result = synco("pull", "--yes", cwd=local)
    pulled(result, sshd)
    assert mysql_fingerprint(dst) == mysql_fingerprint(shop)
    (local / "synco.yaml").write_text(
        f"database: {{url: '{mysql_url(dst)}'}}\nremotes:\n"
        f"  a: {{url: 'ssh://127.0.0.1{app}'}}\n  b: {{url: 'docker://c{app}'}}\n")
    which = synco("pull", "--yes", cwd=local)
    assert which.code == 2 and "synco.yaml names 2: a, b" in one_error_line(which.stderr)
    unknown = synco("pull", "staging", cwd=local)
    assert unknown.code == 2 and "'staging'" in one_error_line(unknown.stderr)


# -------------------------------------------------------------------- the binary's origin


def test_binary_downloaded_once_from_the_release_with_its_checksum(tmp_path, monkeypatch):
    import hashlib

    from synco import sourcebin
    from synco_source.errors import IntegrityError, SyncoError

    release = tmp_path / "release" / f"v{__version__}"
    release.mkdir(parents=True)
    body = os.urandom(200_000)
    (release / sourcebin.FILE).write_bytes(body)
    (release / "SHA256SUMS").write_text(f"{hashlib.sha256(body).hexdigest()}  {sourcebin.FILE}\n")
    monkeypatch.delenv("SYNCO_SOURCE_BINARY", raising=False)
    with StaticServer(tmp_path / "release") as web:
        monkeypatch.setenv("SYNCO_DOWNLOAD_URL", web.url)
        got = sourcebin.obtain(None)
        assert got.read_bytes() == body and got.parent == sourcebin.cache_dir()
        requests = web.requests
        assert sourcebin.obtain(None) == got and web.requests == requests  # from the cache now
        got.unlink()
        (release / "SHA256SUMS").write_text(f"{'0' * 64}  {sourcebin.FILE}\n")
        with pytest.raises(IntegrityError):
            sourcebin.obtain(None)
        assert list(sourcebin.cache_dir().iterdir()) == []
        (release / "SHA256SUMS").unlink()
        with pytest.raises(SyncoError) as info:
            sourcebin.obtain(None)
        assert "HTTP 404" in str(info.value) and "--source-binary" in info.value.hint
    given = tmp_path / "given"
    given.write_bytes(b"x")
    assert sourcebin.obtain(given) == given


# ----------------------------------------------------------------------- nothing left behind


def remote_tree_pids(marker: str) -> list[int]:
    """Processes whose environment holds ``marker`` (the remote side's TMPDIR)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def listening_inodes() -> set[str]:
    inodes = set()
    for table in ("tcp", "tcp6", "udp", "udp6"):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" or table.startswith("udp"):  # TCP LISTEN, any bound UDP socket
                inodes.add(fields[9])
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[3], 16) & 0x10000:  # __SO_ACCEPTCON: a listening unix socket
            inodes.add(fields[6])
    return inodes


def socket_inodes(pid: int) -> set[str]:
    found = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                found.add(target[8:-1])
    except OSError:
        pass
    return found


def test_no_listening_socket_on_the_server_side(ssh_env, shop, tmp_path):
    """While a pull runs, no process of the remote side (all carry its TMPDIR) holds a
    listening socket."""
    sshd = ssh_env
    install_wrapper(sshd.bin)
    app = make_app(tmp_path / "app", mysql_url(shop))
    seen: set[int] = set()
    listening: list[tuple[int, str]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            listen = listening_inodes()
            for pid in remote_tree_pids(str(sshd.tmp)):
                seen.add(pid)
                listening.extend((pid, i) for i in socket_inodes(pid) & listen)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = synco("pull", sshd.url(app), "--output", str(tmp_path / "out.sql"),
                       "--files-dir", f"uploads={tmp_path / 'uploads'}", cwd=tmp_path)
    finally:
        stop.set()
        watcher.join(5)
    pulled(result, sshd)
    assert seen, "the watcher saw no process of the remote side"
    assert listening == []


def start_pull(sshd: Sshd, app: Path, dst_url: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from synco.cli import run; run()", "pull",
                             sshd.url(app), "--yes", "--db-url", dst_url],
                            cwd=cwd, env=env_with(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def children(pid: int) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
            found.append((int(entry.name), name))
    return found


ENDS = {"ctrl-c": 130, "kill-9": -9, "sigterm": 130, "sighup": 130, "network-drop": 5}


@pytest.mark.parametrize("how", list(ENDS))
def test_remote_folder_removed_when_the_laptop_side_ends(how, ssh_env, mysql_db, tmp_path):
    """Mid-pull, Ctrl-C (SIGINT to the whole foreground group, as a terminal sends it), SIGKILL,
    SIGTERM or SIGHUP to the local synco alone, or the connection dropping (its ssh killed): the
    remote side sees the end of its input and removes its folder; its processes are gone."""
    sshd = ssh_env
    # a slow remote: the dump is held up by a wrapper that sleeps before starting
    script(sshd.bin / "synco-source",
           f'#!/bin/sh\n[ "$1" = serve ] && sleep 3\nexec {VENV_SOURCE} "$@"\n')
    src = mysql_db("src")
    make_shop(src)
    app = make_app(tmp_path / "app", mysql_url(src), files=False)
    dst = mysql_db("dst")
    proc = start_pull(sshd, app, mysql_url(dst), tmp_path)
    try:
        wait_for(lambda: sshd.leftovers(), 30, "the remote folder appears")
        assert remote_tree_pids(str(sshd.tmp))
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        elif how == "network-drop":
            (ssh,) = [pid for pid, name in children(proc.pid) if name == "ssh"]
            os.kill(ssh, signal.SIGKILL)
        else:
            os.kill(proc.pid, {"kill-9": signal.SIGKILL, "sigterm": signal.SIGTERM,
                               "sighup": signal.SIGHUP}[how])
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = proc.stderr.read()
    assert code == ENDS[how], stderr
    if how == "network-drop":
        assert "cannot reach ssh://" in one_error_line(stderr)
    wait_for(lambda: sshd.leftovers() == [], 20, f"the remote folder is removed ({sshd.leftovers()})")
    wait_for(lambda: remote_tree_pids(str(sshd.tmp)) == [], 20, "the remote processes end")
    assert mysql_fingerprint(dst) == {} or not mysql_fingerprint(dst).get("tables")


def test_a_later_pull_sweeps_folders_of_dead_runs(ssh_env, shop, tmp_path):
    sshd = ssh_env
    install_wrapper(sshd.bin)
    app = make_app(tmp_path / "app", mysql_url(shop), files=False)
    dead = sshd.tmp / "synco-pull-4000000.AbCdEf"   # no such pid (above pid_max's default)
    alive = sshd.tmp / f"synco-pull-{os.getpid()}.XyZ123"
    fresh = sshd.tmp / "synco-pull-4000001.Fresh1"  # dead, but younger than a minute
    for folder in (dead, alive, fresh):
        folder.mkdir()
        (folder / "synco-source").write_bytes(b"x")
    old = time.time() - 600
    os.utime(dead, (old, old))
    os.utime(alive, (old, old))
    result = synco("pull", sshd.url(app), "--output", str(tmp_path / "out.sql"), cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert f"removed {dead}" in result.stderr
    assert sshd.leftovers() == sorted([alive.name, fresh.name])


# ------------------------------------------------------------------------------- bad input


DIES = """#!{python}
import os, subprocess, sys
child = subprocess.Popen(["{source}", *sys.argv[1:]], stdout=subprocess.PIPE)
sent = 0
while sent < 100_000:
    data = os.read(child.stdout.fileno(), 65536)
    if not data:
        break
    os.write(1, data)
    sent += len(data)
child.kill()
print("synco-source: killed by the test", file=sys.stderr, flush=True)
sys.exit(137)
"""


def test_bad_input_one_line_each(ssh_env, shop, mysql_db, tmp_path, monkeypatch):
    sshd = ssh_env
    install_wrapper(sshd.bin)
    app = make_app(tmp_path / "app", mysql_url(shop), files=False)
    dst = mysql_db("dst")
    conn = __import__("dbfixtures").mysql_connect  # the local database must stay as it was
    c = conn(dst, dst.database)
    with c.cursor() as cur:
        cur.execute("CREATE TABLE mine (id INT PRIMARY KEY)")
    c.close()
    before = mysql_fingerprint(dst)

    def fails(*args, env: dict | None = None, code: int | None = None) -> str:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        result = synco("pull", *args, "--yes", "--db-url", mysql_url(dst), cwd=tmp_path,
                       timeout=120)
        for key in env or {}:
            monkeypatch.setenv(key, sshd.ssh_command) if key == "SYNCO_SSH_COMMAND" else \
                monkeypatch.delenv(key, raising=False)
        assert result.code != 0 and (code is None or result.code == code), result
        return one_error_line(result.stderr) + "\n" + result.stderr

    port = free_port()
    assert "Connection refused" in fails(f"ssh://127.0.0.1:{port}{app}", env={
        "SYNCO_SSH_COMMAND": sshd.ssh_command.replace(f"-p {sshd.port}", f"-p {port}")})
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    assert "login was refused" in fails(sshd.url(app), env={
        "SYNCO_SSH_COMMAND": sshd.ssh_command.replace(str(sshd.key), str(other))})
    sshd.known_hosts.write_text("")
    text = fails(sshd.url(app))
    assert "host key is not known" in text and f"ssh -p {sshd.port}" not in text  # port via -p in the command
    assert f"ssh {sshd.user}@127.0.0.1" in text
    other_host = tmp_path / "other_host"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_host)], check=True)
    sshd.known_hosts.write_text(f"[127.0.0.1]:{sshd.port} "
                                + " ".join((tmp_path / "other_host.pub").read_text().split()[:2]) + "\n")
    text = fails(sshd.url(app))
    assert "host key has changed" in text and "ssh-keygen -R 127.0.0.1" in text
    sshd.accept_host_key()
    assert "no folder" in fails(sshd.url(tmp_path / "nowhere"), code=2)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "synco-source failed on the server" in fails(sshd.url(empty))
    # the remote side dying mid-transfer (after 100 kB of output), its last words shown
    script(sshd.bin / "synco-source", DIES.format(python=sys.executable, source=VENV_SOURCE))
    text = fails(sshd.url(app))
    assert "killed by the test" in text and "remote" in text
    # no synco-source there, and none obtainable here
    (sshd.bin / "synco-source").unlink()
    with StaticServer(tmp_path) as web:
        text = fails(sshd.url(app), env={"SYNCO_DOWNLOAD_URL": web.url + "none/"})
    assert "no synco-source binary" in text and "--source-binary" in text
    # an unsupported remote system
    script(sshd.bin / "uname", '#!/bin/sh\necho "Darwin arm64"\n')
    text = fails(sshd.url(app), env={"SYNCO_SOURCE_BINARY": str(tmp_path / "app" / "synco.yaml")})
    assert "Darwin arm64" in text and "Linux x86_64 only" in text
    # kubectl and docker missing here
    monkeypatch.setenv("PATH", "/nonexistent")
    for url, tool in ((f"kubectl://ns/pod{app}", "kubectl"), (f"docker://c{app}", "docker")):
        result = subprocess.run([sys.executable, "-c", "from synco.cli import run; run()", "pull",
                                 url, "--db-url", mysql_url(dst)], capture_output=True, text=True,
                                cwd=tmp_path, env=env_with())
        assert result.returncode == 2, result
        assert f"{tool} is not installed" in one_error_line(result.stderr)
    assert mysql_fingerprint(dst) == before
    assert sshd.leftovers() == []


def test_no_permission_to_read_the_application(built, tmp_path):
    """As a user who may not read the folder, or its configuration: one line each. The remote
    user is 'nobody' through a generic --exec prefix (setpriv), so the uploaded release binary
    runs as that user even though the tests run as root."""
    import shutil

    from sshd import need

    need(shutil.which("setpriv") is not None, "setpriv (util-linux)")
    base = Path(tempfile.mkdtemp(prefix="synco-pull-perm-"))  # outside tmp_path: 'nobody' must
    try:                                                       # reach it through every parent
        base.chmod(0o755)
        remote_tmp = base / "tmp"
        remote_tmp.mkdir(mode=0o1777)
        remote_tmp.chmod(0o1777)
        app = base / "app"
        app.mkdir()
        (app / "synco.yaml").write_text("database: {url: 'mysql://root@127.0.0.1:3306/x'}\n")
        (app / "synco.yaml").chmod(0o600)
        prefix = (f"setpriv --reuid=nobody --regid=nogroup --clear-groups env TMPDIR={remote_tmp} "
                  "PATH=/usr/bin:/bin")
        binary = str(built / SERVER.name)
        config = synco("pull", "--exec", prefix, str(app), "--source-binary", binary,
                       "--db-url", "mysql://root@127.0.0.1:3306/nothing", cwd=tmp_path)
        assert config.code == 7, config
        assert "cannot read synco.yaml: Permission denied" in one_error_line(config.stderr)
        app.chmod(0o700)
        folder = synco("pull", "--exec", prefix, str(app), "--source-binary", binary,
                       "--db-url", "mysql://root@127.0.0.1:3306/nothing", cwd=tmp_path)
        assert folder.code == 1 and "no permission to read" in one_error_line(folder.stderr)
        assert list(remote_tmp.iterdir()) == []
    finally:
        shutil.rmtree(base)


def test_urls_and_command_lines():
    """The argument lists handed to ssh, kubectl and docker (their documented syntax)."""
    from synco import channels

    target = channels.parse("ssh://deploy@shop.example.com:2222/var/www/shop")
    ssh = target.channel
    ssh.batch = True
    assert target.path == "/var/www/shop"
    argv = ssh.argv(["sh", "-c", "echo 'a b'", "x y"])
    assert argv[-2:] == ["shop.example.com", "sh -c 'echo '\"'\"'a b'\"'\"'' 'x y'"]
    assert ["-p", "2222"] == argv[argv.index("-p"):argv.index("-p") + 2]
    assert "-T" in argv and "BatchMode=yes" in argv and "StrictHostKeyChecking=no" not in argv
    assert channels.parse("ssh://host/~/app").path == "~/app"
    kube = channels.parse("kubectl://shop-prod/shop-7d9f8-abcde/app", container="php",
                          context="prod")
    assert kube.path == "/app"
    assert kube.channel.argv(["sh", "-c", "x"]) == [
        "kubectl", "exec", "-i", "-n", "shop-prod", "--context", "prod", "shop-7d9f8-abcde",
        "-c", "php", "--", "sh", "-c", "x"]
    docker = channels.parse("docker://shop_php_1/var/www/html")
    assert docker.channel.argv(["sh", "-c", "x"]) == ["docker", "exec", "-i", "shop_php_1", "sh",
                                                      "-c", "x"]
    line = channels.exec_target("ssh host sudo -u www-data", "/srv/app").channel
    assert line.argv(["sh", "-c", "a b"]) == ["ssh", "host", "sudo", "-u", "www-data", "sh", "-c",
                                              "'a b'"]
    args = channels.exec_target("docker exec -i c", "/srv/app").channel
    assert args.argv(["sh", "-c", "a b"]) == ["docker", "exec", "-i", "c", "sh", "-c", "a b"]
    assert channels.label_selector({"matchLabels": {"app": "shop", "tier": "web"},
                                    "matchExpressions": [{"key": "env", "operator": "In",
                                                          "values": ["prod", "eu"]}]}) == \
        "app=shop,tier=web,env in (prod,eu)"
    from synco_source.errors import UsageError
    for bad in ("ftp://host/x", "ssh://host", "ssh://host:99999/x", "kubectl://ns/pod",
                "docker://c"):
        with pytest.raises(UsageError):
            channels.parse(bad)


def test_remotes_in_synco_yaml_are_checked(tmp_path):
    from synco_frameworks import config
    from synco_source.errors import UsageError

    def load(text: str):
        (tmp_path / "synco.yaml").write_text(text)
        return config.load(tmp_path, {"HOST": "shop.example.com"})

    found = load("remotes:\n  prod: ssh://deploy@${HOST}/srv/shop\n"
                 "  k8s: {url: 'kubectl://ns/deploy:shop', path: /app, container: php}\n")
    assert found.remotes["prod"].url == "ssh://deploy@shop.example.com/srv/shop"
    assert (found.remotes["k8s"].path, found.remotes["k8s"].container) == ("/app", "php")
    for bad, words in (("remotes: [a]", "must be a mapping"),
                       ("remotes: {prod: {path: /x}}", "has no url"),
                       ("remotes: {prod: {url: 'ssh://h/x', port: 22}}", "must be a URL or"),
                       ("remotes: {prod: {exec: 'ssh h'}}", "exec needs a path")):
        with pytest.raises(UsageError) as info:
            load(bad)
        assert words in str(info.value), (bad, str(info.value))
