"""synco-source's command line (issue 15): errors before the token, one set of conventions
(help with examples, --debug and --quiet anywhere, one-line usage errors), the token line on a
terminal, one log line per download and serve --once."""

from __future__ import annotations

import os
import pty
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from dbfixtures import mysql_execute, url_text
from e2e import make_files, tree
from pgfixtures import pg_execute
from sourceproc import REPO, Source, env_with, synco
from synco_source import engines
from synco_source.dburl import parse

SOURCE = [sys.executable, "-m", "synco_source.cli"]


def run_source(*args: str, cwd: Path | None = None, env: dict | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(SOURCE + list(args), capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=env_with(**(env or {})))


def error_lines(stderr: str) -> list[str]:
    """The error line and its hint: what a failed run says, and no traceback."""
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines()
            if line.startswith(("synco-source: error:", "synco-source: hint:"))]


def fails_before_the_token(*args: str, code: int, cwd: Path | None = None) -> tuple[str, str]:
    """Run serve; it must fail with ``code`` within seconds, nothing on stdout; (error, hint)."""
    started = time.monotonic()
    run = run_source("serve", "--listen", "127.0.0.1:0", *args, cwd=cwd)
    took = time.monotonic() - started
    assert run.returncode == code, run.stderr
    assert run.stdout == "", "no token is printed"
    assert took < 15, f"took {took:.1f} s"
    lines = error_lines(run.stderr)
    assert len(lines) == 2 and lines[1].startswith("synco-source: hint: "), run.stderr
    return lines[0], lines[1]


class Silent:
    """A TCP port that accepts connections and never says a word (a database server behind a
    broken proxy, or a firewall that lets the handshake through)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def __enter__(self) -> "Silent":
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def where(text: str) -> str:
    """How messages name the database of URL ``text`` (MySQL's localhost may be the socket)."""
    return engines.resolve(parse(text)).redacted


# ---------------------------------------------------------------- errors before the token

def test_mysql_wrong_password(shop, mysql_server):
    url = url_text(mysql_server, shop.database, user="nobody_synco", password="wrong")
    error, hint = fails_before_the_token("--db-url", url, code=8)
    assert re.fullmatch(rf"synco-source: error: cannot connect to {re.escape(where(url))}: "
                        r"Access denied for user 'nobody_synco'@'[^']+' \(using password: YES\) "
                        r"\(error 1045\)", error), error
    assert hint == "synco-source: hint: check the user name and password in the database URL"


def test_mysql_unknown_database(mysql_server):
    name = f"synco_none_{uuid.uuid4().hex[:8]}"
    url = url_text(mysql_server, name)
    error, hint = fails_before_the_token("--db-url", url, code=8)
    assert error == (f"synco-source: error: cannot connect to {where(url)}: Unknown database "
                     f"'{name}' (error 1049)")
    assert hint == "synco-source: hint: check the database name in the database URL"


def test_mysql_host_refuses():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]  # a port nothing listens on once closed
    url = f"mysql://root@127.0.0.1:{port}/shop"
    error, hint = fails_before_the_token("--db-url", url, code=8)
    assert error == (f"synco-source: error: cannot connect to {url}: Can't connect to MySQL "
                     f"server on '127.0.0.1' ([Errno 111] Connection refused) (error 2003)")
    assert "check the host and port" in hint


@pytest.mark.parametrize("engine", ["mysql", "postgresql"])
def test_a_host_that_does_not_answer_fails_within_seconds(engine):
    with Silent() as silent:
        url = f"{engine}://app@127.0.0.1:{silent.port}/shop"
        started = time.monotonic()
        error, hint = fails_before_the_token("--db-url", url, code=8)
        took = time.monotonic() - started
    assert error == f"synco-source: error: cannot connect to {url}: no answer within 5 s"
    assert "no firewall" in hint
    assert took < 10


def test_mysql_a_table_the_user_may_not_read(shop, mysql_server):
    """The user may read some tables and only write another: named before the token, not a
    minute into the dump."""
    user = f"synco_ro_{uuid.uuid4().hex[:8]}"
    db = shop.database
    mysql_execute(mysql_server, f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'",
                  f"CREATE USER '{user}'@'localhost' IDENTIFIED BY 'pw'", database="")
    try:
        for host in ("%", "localhost"):
            mysql_execute(mysql_server, f"GRANT SELECT ON `{db}`.customer TO '{user}'@'{host}'",
                          f"GRANT SELECT ON `{db}`.audit TO '{user}'@'{host}'",
                          f"GRANT INSERT ON `{db}`.secret TO '{user}'@'{host}'", database="")
        url = url_text(mysql_server, db, user=user, password="pw")
        error, hint = fails_before_the_token("--db-url", url, code=8)
    finally:
        mysql_execute(mysql_server, f"DROP USER IF EXISTS '{user}'@'%'",
                      f"DROP USER IF EXISTS '{user}'@'localhost'", database="")
    assert re.fullmatch(rf"synco-source: error: user '{user}' may not read table secret of "
                        rf"{re.escape(where(url))}: SELECT command denied to user "
                        rf"'{user}'@'[^']+' for table [`'](\w+`\.`)?secret[`'] \(error 1142\)",
                        error), error
    assert hint == ("synco-source: hint: grant that user SELECT on every table of the database, "
                    "or use a user who has it")


@pytest.fixture
def pg_shop(pg_db):
    url = pg_db("shop")
    pg_execute(url, "CREATE TABLE customer (id int PRIMARY KEY, name text)",
               "INSERT INTO customer SELECT g, 'c' || g FROM generate_series(1, 100) g",
               "CREATE TABLE secret (id int PRIMARY KEY, value text)")
    return url


def test_pg_unknown_database(pg_server):
    name = f"synco_none_{uuid.uuid4().hex[:8]}"
    url = url_text(pg_server, name)
    error, hint = fails_before_the_token("--db-url", url, code=8)
    assert error.startswith(f"synco-source: error: cannot connect to {where(url)}: connection "
                            f"failed: "), error
    assert error.endswith(f'FATAL: database "{name}" does not exist'), error
    assert hint == "synco-source: hint: check the database name in the database URL"


def test_pg_unknown_user(pg_shop, pg_server):
    """The test server trusts every local connection, so a password is never wrong there: a
    user that does not exist is the login failure it can show."""
    user = f"nobody_{uuid.uuid4().hex[:8]}"
    url = url_text(pg_server, pg_shop.database, user=user, password="wrong")
    error, _ = fails_before_the_token("--db-url", url, code=8)
    assert error.startswith(f"synco-source: error: cannot connect to {where(url)}: connection "
                            f"failed: "), error
    assert error.endswith(f'FATAL: role "{user}" does not exist'), error


def test_pg_host_refuses():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    url = f"postgresql://postgres@127.0.0.1:{port}/shop"
    error, hint = fails_before_the_token("--db-url", url, code=8)
    assert error.startswith(f"synco-source: error: cannot connect to {url}: connection failed: "
                            f'connection to server at "127.0.0.1", port {port} failed: '
                            f"Connection refused"), error
    assert "check the host and port" in hint


def test_pg_a_table_the_user_may_not_read(pg_shop, pg_server):
    user = f"synco_ro_{uuid.uuid4().hex[:8]}"
    pg_execute(pg_server, f"CREATE ROLE {user} LOGIN", database="postgres")
    try:
        pg_execute(pg_shop, f"GRANT SELECT ON customer TO {user}")
        url = url_text(pg_server, pg_shop.database, user=user)
        error, hint = fails_before_the_token("--db-url", url, code=8)
    finally:
        pg_execute(pg_shop, f"REVOKE ALL ON customer FROM {user}")
        pg_execute(pg_server, f"DROP ROLE {user}", database="postgres")
    assert error == ('synco-source: error: the user may not read the table public.secret '
                     '(permission denied)'), error
    assert hint == "synco-source: hint: grant it SELECT (or dump as the owner of the database)"


def test_missing_folder(tmp_path):
    error, hint = fails_before_the_token("--no-db", "--files", f"media={tmp_path / 'nope'}",
                                         code=2)
    assert error == f"synco-source: error: file set media: folder {tmp_path / 'nope'} does not exist"
    assert hint == ("synco-source: hint: check the path of file set media (--files media=PATH, "
                    "synco.yaml or the project's configuration)")


def test_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    error, _ = fails_before_the_token("--no-db", "--files", f"media={tmp_path / 'f.txt'}", code=2)
    assert error == f"synco-source: error: file set media: {tmp_path / 'f.txt'} is not a folder"


def test_an_unreadable_folder(tmp_path, monkeypatch):
    """In-process, so that it holds when the tests run as root (who may read any folder)."""
    from synco_source import preflight
    from synco_source.errors import UsageError

    folder = tmp_path / "locked"
    folder.mkdir()

    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(preflight.os, "scandir", denied)
    with pytest.raises(UsageError) as caught:
        preflight.check_folders({"media": folder})
    assert str(caught.value) == f"file set media: cannot read folder {folder}: Permission denied"
    assert caught.value.exit_code == 2


def test_a_missing_folder_with_a_good_database_still_fails_first(shop, tmp_path):
    error, _ = fails_before_the_token("--db-url", url_text(shop), "--files",
                                      f"media={tmp_path / 'nope'}", code=2)
    assert "does not exist" in error


def test_stdio_fails_before_the_hello_with_the_error_as_its_last_line(mysql_server):
    """synco pull shows the remote side's last synco-source error line: with --stdio the error
    comes before any frame, as the last line of stderr."""
    name = f"synco_none_{uuid.uuid4().hex[:8]}"
    url = url_text(mysql_server, name)
    run = subprocess.run(SOURCE + ["serve", "--stdio", "--db-url", url], input=b"",
                         capture_output=True, timeout=60, env=env_with())
    assert run.returncode == 8
    assert run.stdout == b"", "no frame before the error"
    lines = run.stderr.decode().splitlines()
    assert lines[-2] == (f"synco-source: error: cannot connect to {where(url)}: Unknown "
                         f"database '{name}' (error 1049)")
    assert lines[-1].startswith("synco-source: hint: ")


# ---------------------------------------------------------------- conventions

@pytest.mark.parametrize("command", [[], ["serve"], ["detect"], ["version"]])
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_of_every_command_has_an_example(command, flag):
    run = run_source(*command, flag)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"usage: synco-source{' ' + command[0] if command else ''}")
    assert "example" in run.stdout
    assert re.search(r"^\s+synco-source \w+", run.stdout, re.M), run.stdout


def test_version():
    from synco_source import __version__

    for args in (["--version"], ["version"], ["version", "--debug", "-q"]):
        run = run_source(*args)
        assert (run.returncode, run.stdout) == (0, f"synco-source {__version__}\n"), args


@pytest.mark.parametrize("args, error, hint", [
    ([], "no command given", "synco-source serve (publish)"),
    (["serv"], "argument COMMAND: invalid choice: 'serv'", "see 'synco-source --help'"),
    (["serve", "--ttl"], "argument --ttl: expected one argument", "see 'synco-source serve --help'"),
    (["serve", "--bogus"], "unrecognized arguments: --bogus", "see 'synco-source serve --help'"),
    (["detect", "--listen", "x"], "unrecognized arguments: --listen x",
     "see 'synco-source detect --help'"),
])
def test_usage_errors_are_one_line_and_a_hint(args, error, hint):
    run = run_source(*args)
    assert run.returncode == 2
    assert "usage:" not in run.stderr and run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 2, run.stderr
    assert lines[0].startswith(f"synco-source: error: {error}"), lines
    assert lines[1].startswith(f"synco-source: hint: {hint}"), lines


@pytest.mark.parametrize("where_", ["before", "after"])
def test_debug_before_or_after_the_command(tmp_path, where_):
    serve = ["serve", "--no-db", "--files", f"m={tmp_path / 'nope'}"]
    args = ["--debug", *serve] if where_ == "before" else [*serve, "--debug"]
    run = run_source(*args)
    assert run.returncode == 2 and "Traceback" in run.stderr
    plain = run_source(*serve)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr


@pytest.mark.parametrize("where_", ["before", "after"])
def test_quiet_before_or_after_the_command(tmp_path, where_):
    files = make_files(tmp_path / "files")
    serve = ["--no-db", "--files", f"f={files}", "--listen", "127.0.0.1:0"]
    python = SOURCE + (["--quiet"] if where_ == "before" else [])
    with Source(serve + ([] if where_ == "before" else ["-q"]), python=python,
                cwd=tmp_path) as source:
        time.sleep(1.5)  # indexed, serving
        assert source.stop() == 0
    assert source.lines == [], source.lines  # not even "stopped by SIGTERM"
    quiet_error = run_source("serve", "--no-db", "--files", f"m={tmp_path / 'nope'}", "-q")
    assert len(error_lines(quiet_error.stderr)) == 2


def test_the_old_name_files_dir_works_on_the_server(tmp_path):
    files = make_files(tmp_path / "files")
    run = run_source("detect", "--no-db", "--files-dir", f"f={files}", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "file set f: files (4 files" in run.stdout, run.stdout


# ---------------------------------------------------------------- the token line

def test_the_token_line_stands_out_on_a_terminal(tmp_path):
    files = make_files(tmp_path / "files")
    for no_color, styled in (("", True), ("1", False)):
        master, slave = pty.openpty()
        env = env_with(NO_COLOR=no_color, TERM="xterm")
        proc = subprocess.Popen(SOURCE + ["serve", "--no-db", "--files", f"f={files}", "--listen",
                                          "127.0.0.1:0"], stdout=slave, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=env, cwd=tmp_path)
        os.close(slave)
        try:
            data = b""
            while b"\n" not in data:
                data += os.read(master, 4096)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            proc.stderr.close()
            os.close(master)
        line = data.split(b"\r\n", 1)[0].decode()
        plain = re.sub(r"\x1b\[[0-9;]*m", "", line)
        assert re.fullmatch(r"synco download [A-Za-z0-9_-]{40,}", plain), line
        assert (line != plain) == styled, line
        if styled:
            assert line.startswith("\x1b[1;32msynco download ") and line.endswith("\x1b[0m")


def test_the_token_line_is_one_plain_line_in_a_pipe(tmp_path):
    files = make_files(tmp_path / "files")
    with Source(["--no-db", "--files", f"f={files}", "--listen", "127.0.0.1:0"],
                cwd=tmp_path) as source:
        source.wait_ready()
        source.stop()
    assert "\x1b" not in source.token and source.stdout_rest == ""


# ---------------------------------------------------------------- downloads and --once

DOWNLOAD_LINE = re.compile(r"synco-source: download by (?P<client>.+?): (?P<sets>[^;]+); "
                           r"(?P<objects>\d+) objects, (?P<bytes>[\d,]+) bytes in "
                           r"(?P<seconds>[\d.]+) s; (?P<how>complete|incomplete)")


def download_lines(lines: list[str]) -> list[dict]:
    return [m.groupdict() for line in lines if (m := DOWNLOAD_LINE.fullmatch(line))]


def wait_exit(source: Source, timeout: float) -> int:
    try:
        return source.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running after {timeout} s: {source.stderr}") from None


def test_once_ends_after_the_first_complete_download(shop, mysql_db, tmp_path):
    files = make_files(tmp_path / "files")
    dst = mysql_db("dst", create=False)
    source = Source(["--files", f"f={files}", "--listen", "127.0.0.1:0", "--once"],
                    db_url=url_text(shop), cwd=tmp_path)
    try:
        result = synco("download", source.token, "--yes", "--db-url", url_text(dst),
                       "--files-dir", f"f={tmp_path / 'local'}", "--no-cache")
        assert result.code == 0, result.stderr
        code = wait_exit(source, 30)
    finally:
        source.stop()
    assert code == 0, source.stderr
    assert tree(tmp_path / "local") == tree(files)
    (line,) = download_lines(source.lines)
    assert line["client"] == "127.0.0.1" and line["sets"] == "db, f" and line["how"] == "complete"
    assert int(line["bytes"].replace(",", "")) > 100_000 and int(line["objects"]) > 5
    assert "synco-source: one download complete; stopping (--once)" in source.lines
    assert source.lines[-1] == "synco-source: removed everything published"


def test_a_partial_download_is_logged_as_incomplete_and_once_keeps_serving(shop, tmp_path):
    """A client that fetched one set of two and did not say it is done: not complete, so --once
    waits; the line comes when the server stops. synco itself says it is done at its end, so
    its --only db download completes."""
    import httpx

    from synco_source.format import SessionCrypto, Token

    files = make_files(tmp_path / "files")
    source = Source(["--files", f"f={files}", "--listen", "127.0.0.1:0", "--once"],
                    db_url=url_text(shop), cwd=tmp_path)
    try:
        source.wait_ready()
        token = Token.decode(source.token)
        sc = SessionCrypto(token.key, token.session_id)
        meta = sc.open_meta(httpx.get(token.url + "meta").content)
        (db,) = [s for s in meta["sets"] if s["name"] == "db"]
        assert httpx.get(token.url + "o/" + db["manifest"]).status_code == 200
        time.sleep(2)
        assert source.proc.poll() is None, source.stderr
        assert source.stop() == 0
    finally:
        source.stop()
    (line,) = download_lines(source.lines)
    assert line["sets"] == "db" and line["how"] == "incomplete", line
    again = Source(["--files", f"f={files}", "--listen", "127.0.0.1:0", "--once"],
                   db_url=url_text(shop), cwd=tmp_path)
    try:
        result = synco("download", again.token, "--only", "db", "--output",
                       str(tmp_path / "db.sql"), "--no-cache")
        assert result.code == 0, result.stderr
        assert wait_exit(again, 30) == 0, again.stderr
    finally:
        again.stop()
    (line,) = download_lines(again.lines)
    assert line["sets"] == "db" and line["how"] == "complete", line


def test_the_final_request_completes_a_download(tmp_path):
    """A client that says it is done (the meta with ?done), whatever it fetched: a client whose
    chunks came from its own cache."""
    from synco_source.format import Token

    files = make_files(tmp_path / "files")
    source = Source(["--no-db", "--files", f"f={files}", "--listen", "127.0.0.1:0", "--once"],
                    cwd=tmp_path)
    try:
        source.wait_ready()
        url = Token.decode(source.token).url
        with urllib.request.urlopen(url + "meta") as answer:
            answer.read()
        time.sleep(1.5)
        assert source.proc.poll() is None, "the meta alone is not a download"
        with urllib.request.urlopen(url + "meta?done") as answer:
            answer.read()
        assert wait_exit(source, 30) == 0
    finally:
        source.stop()
    (line,) = download_lines(source.lines)
    assert line["how"] == "complete" and line["sets"] == "no set" and line["objects"] == "0"


def test_once_is_refused_with_publish_dir(tmp_path):
    run = run_source("serve", "--no-db", "--files", f"f={tmp_path}", "--publish-dir", str(tmp_path),
                     "--base-url", "http://x.invalid/", "--once")
    assert run.returncode == 2
    assert error_lines(run.stderr)[0].startswith("synco-source: error: --once needs the "
                                                 "built-in listener")


def test_the_pipe_logs_its_download_with_the_ssh_client(shop, mysql_db, tmp_path):
    from synco.download import Download, DownloadOptions
    from synco.pipe import PipeSource, open_session
    from synco.ui import UI

    files = make_files(tmp_path / "files")
    dst = mysql_db("dst", create=False)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    lines: list[str] = []
    env = env_with(TMPDIR=str(tmp), PYTHONPATH=str(REPO), SSH_CLIENT="192.0.2.7 50312 22")
    source = PipeSource(SOURCE + ["serve", "--stdio", "--db-url", url_text(shop), "--files",
                                  f"f={files}"], env=env, on_stderr=lines.append)
    opts = DownloadOptions(db_url=dst, file_dirs={"f": tmp_path / "local"}, poll_interval=0.1,
                           no_cache=True)
    Download(opts, UI(assume_yes=True, quiet=True), remote=source, sc=open_session(source)).run()
    assert source.proc.returncode == 0, lines
    (line,) = download_lines(lines)
    assert line["client"] == "192.0.2.7 (over ssh)" and line["sets"] == "db, f", line
    assert line["how"] == "complete", lines
