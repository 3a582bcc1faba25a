"""synco's command line as a user meets it (issue 15): -h, --version, --debug and --quiet
anywhere, usage errors in one line, shell completion, the token from an argument, standard
input or SYNCO_TOKEN, --json, --output -, visible retries, the replace prompt."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from e2e import make_files, make_local, one_error_line, tree
from sourceproc import Source, StaticServer, env_with, synco
from synco import cli
from synco.download import Summary
from synco.fetch import Remote
from synco.ui import UI
from synco_source import __version__
from synco_source.errors import TokenError
from synco_source.format import Token

CLIENT = [sys.executable, "-c", "from synco.cli import run; run()"]
FAST = {"SYNCO_HTTP_RETRIES": "0", "SYNCO_HTTP_BACKOFF": "0.01"}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dead_token() -> str:
    """A well-formed token of a session at a port where nothing listens."""
    return Token(url=f"http://127.0.0.1:{closed_port()}/", session_id=b"s" * 16,
                 key=b"k" * 32).encode()


def run(*args: str, stdin: str | None = None, cwd: Path | None = None, **env: str):
    return subprocess.run([*CLIENT, *args], capture_output=True, text=True, input=stdin,
                          cwd=cwd, env=env_with(**env), timeout=120)


# ---------------------------------------------------------------- conventions


def test_version_option_and_command():
    for args in (["--version"], ["version"]):
        result = run(*args)
        assert (result.returncode, result.stdout) == (0, f"synco {__version__}\n"), result.stderr


@pytest.mark.parametrize("args", [
    ["download", "--no-such-option"],
    ["download", "--db-url"],
    ["no-such-command"],
    ["version", "extra"],
    ["cache", "--bogus"],
    ["download", "--cache-siz", "5G"],
])
def test_usage_errors_are_one_line_and_a_hint(args, tmp_path):
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("synco: error: ") and lines[1].startswith("synco: hint: ")
    assert not re.search(r"[╭│╰─]|^Usage:|^Error:|Traceback", result.stderr, re.M)
    assert result.stdout == ""
    assert "--help" in lines[1]


def test_a_near_miss_option_is_suggested():
    result = run("download", "--db-ur", "x")
    assert result.stderr.splitlines()[0] == "synco: error: no such option: --db-ur"
    assert "did you mean --db-url" in result.stderr


def test_no_arguments_prints_the_help_and_exits_2():
    result = run()
    assert result.returncode == 2
    assert "Commands:" in result.stderr and "download" in result.stderr


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_is_accepted_before_and_after_the_command(where, tmp_path):
    args = ["--debug", "download", "AAAA"] if where == "before" else ["download", "AAAA", "--debug"]
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 3
    assert "Traceback" in result.stderr and "TokenError" in result.stderr
    plain = run("download", "AAAA", cwd=tmp_path)
    assert plain.returncode == 3 and "Traceback" not in plain.stderr


@pytest.mark.parametrize("args", [["cache", "clear"], ["-q", "cache", "clear"],
                                  ["cache", "clear", "--quiet"], ["--quiet", "cache", "clear", "-q"]])
def test_quiet_is_accepted_before_and_after_the_command(args):
    result = run(*args)
    assert result.returncode == 0, result.stderr
    quiet = len(args) > 2
    assert (result.stderr == "") == quiet, result.stderr
    if not quiet:
        assert result.stderr.startswith("synco: removed 0 entries")


def test_install_completion_works_in_bash(tmp_path):
    """`synco --install-completion` from bash writes a script that bash then uses to complete
    command names (the real bash, the real script, synco on PATH)."""
    home = tmp_path / "home"
    home.mkdir()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "synco"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -c 'from synco.cli import run; run()' \"$@\"\n")
    wrapper.chmod(0o755)
    env = env_with(HOME=str(home), PATH=f"{bindir}:{os.environ['PATH']}")
    # "; exit": bash stays synco's parent (a lone command it would exec), where typer looks
    install = subprocess.run(["bash", "-c", "synco --install-completion; exit $?"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert install.returncode == 0, install.stderr
    assert "bash completion installed" in install.stdout
    assert ".bash_completions/synco.sh" in (home / ".bashrc").read_text()
    complete = subprocess.run(
        ["bash", "-c", "source ~/.bash_completions/synco.sh; COMP_WORDS=(synco dow); COMP_CWORD=1; "
                       "$(complete -p synco | sed -e 's/.*-F \\([^ ]*\\) .*/\\1/') synco; "
                       "echo \"${COMPREPLY[@]}\"; COMP_WORDS=(synco download --db); COMP_CWORD=2; "
                       "$(complete -p synco | sed -e 's/.*-F \\([^ ]*\\) .*/\\1/') synco; "
                       "echo \"${COMPREPLY[@]}\""],
        env=env, capture_output=True, text=True, timeout=60)
    assert complete.returncode == 0, complete.stderr
    commands, options = complete.stdout.splitlines()[-2:]
    assert commands.split() == ["download"], complete.stdout
    assert options.split() == ["--db-url"], complete.stdout


def test_show_completion_prints_a_script():
    result = run("--show-completion", "bash", _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
    assert result.returncode == 0, result.stderr
    assert "_SYNCO_COMPLETE" in result.stdout


# ---------------------------------------------------------------- the token


def real_token() -> str:
    return Token(url="http://shop.example.com:8765/", session_id=bytes(range(16)),
                 key=bytes(range(32))).encode()


@pytest.mark.parametrize("pasted", [
    "{t}", "  {t}\n", "'{t}'", '"{t}"', "\u201c{t}\u201d", "`{t}`", "{t} {t}", "{t}{t}",
    "{t}\n{t}\n", "synco download {t}", "synco download {t}synco download {t}",
    "synco download {t}\nsynco download {t}\n", "'synco download {t}'",
])
def test_clean_token_tolerates_pastes(pasted):
    token = real_token()
    text = cli.clean_token(pasted.format(t=token))
    assert text == token
    assert Token.decode(text).url == "http://shop.example.com:8765/"


@pytest.mark.parametrize("pasted", ["", "  '' ", "synco download", "{t} {u}"])
def test_clean_token_refuses_nothing_or_two_tokens(pasted):
    other = Token(url="http://other.example.com/", session_id=b"x" * 16, key=b"y" * 32).encode()
    with pytest.raises(TokenError):
        cli.clean_token(pasted.format(t=real_token(), u=other))


def test_clean_token_keeps_what_it_cannot_mend():
    with pytest.raises(TokenError, match="checksum"):
        Token.decode(cli.clean_token(real_token()[:-2] + "xx"))


def reached(result, token: str) -> bool:
    """The run decoded the token and went for its server (exit 5 naming the token's URL)."""
    url = Token.decode(token).url
    return result.returncode == 5 and f"cannot reach {url}" in one_error_line(result.stderr)


@pytest.mark.parametrize("how", ["argument", "stdin", "stdin-doubled", "env", "pasted-line",
                                 "pasted-words", "quoted"])
def test_the_token_from_argument_stdin_or_environment(how, dead_token, tmp_path):
    args, stdin, env = ["download"], None, dict(FAST)
    if how == "argument":
        args.append(dead_token)
    elif how == "stdin":
        args.append("-")
        stdin = f"{dead_token}\n"
    elif how == "stdin-doubled":
        args.append("-")
        stdin = f"synco download {dead_token}\nsynco download {dead_token}\n"
    elif how == "env":
        env["SYNCO_TOKEN"] = f" {dead_token}\n"
    elif how == "pasted-line":
        args.append(f"synco download {dead_token}")
    elif how == "pasted-words":
        args += ["synco", "download", dead_token]
    else:
        args.append(f"\u2018{dead_token}\u2019 ")
    result = run(*args, stdin=stdin, cwd=tmp_path, **env)
    assert reached(result, dead_token), result.stderr
    assert dead_token not in result.stderr, "the token is a secret: never printed"


def test_no_token_at_all_is_a_usage_error(tmp_path):
    result = run("download", cwd=tmp_path, SYNCO_TOKEN="")
    assert result.returncode == 2
    assert one_error_line(result.stderr) == "synco: error: no token given"
    assert "SYNCO_TOKEN" in result.stderr and "'-'" in result.stderr


def test_empty_standard_input_is_a_token_error(tmp_path):
    result = run("download", "-", stdin="\n", cwd=tmp_path)
    assert result.returncode == 3
    assert "standard input held no token" in one_error_line(result.stderr)


# ---------------------------------------------------------------- retries


def test_retries_are_visible_and_quiet_hides_them(dead_token, tmp_path):
    result = run("download", dead_token, cwd=tmp_path, SYNCO_HTTP_RETRIES="2",
                 SYNCO_HTTP_BACKOFF="0.01")
    assert reached(result, dead_token), result.stderr
    retries = [line for line in result.stderr.splitlines() if "retry" in line]
    assert len(retries) == 2, result.stderr
    assert re.fullmatch(r"synco: server not answering \(.+\), retry 1 of 2 in 0\.01 s", retries[0])
    assert retries[1].endswith("retry 2 of 2 in 0.02 s")
    quiet = run("download", dead_token, "-q", cwd=tmp_path, SYNCO_HTTP_RETRIES="2",
                SYNCO_HTTP_BACKOFF="0.01")
    assert reached(quiet, dead_token) and "retry" not in quiet.stderr


def test_retry_of_a_5xx_is_said_once_per_retry(caplog):
    answers = iter([503, 503, 200])
    transport = httpx.MockTransport(lambda request: httpx.Response(next(answers), content=b"ok"))
    with caplog.at_level("INFO", logger="synco"):
        with Remote("http://x.example/", transport=transport, retries=3, backoff=0.01) as remote:
            assert remote.get("m") == b"ok"
    assert [r.getMessage() for r in caplog.records] == [
        "server answered HTTP 503, retry 1 of 3 in 0.01 s",
        "server answered HTTP 503, retry 2 of 3 in 0.02 s"]


# ---------------------------------------------------------------- --json and --output -


DOWNLOAD_KEYS = {"command", "database", "output", "tables", "rows", "unchanged", "previous", "files_written",
                 "files_present", "bytes_fetched", "chunks_fetched", "chunks_cached", "verified"}


def test_download_json_summary_of_a_files_only_session(tmp_path):
    files = make_files(tmp_path / "files")
    with Source(["--no-db", "--files", f"f={files}", "--listen", "127.0.0.1:0"]) as source:
        result = synco("download", source.token, "--files-dir", f"f={tmp_path / 'local'}",
                       "--json", cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    summary = json.loads(result.stdout)
    assert set(summary) == DOWNLOAD_KEYS
    assert summary["command"] == "downloaded"
    assert (summary["files_written"], summary["files_present"], summary["tables"]) == (4, 0, 0)
    assert summary["database"] is None and summary["previous"] is None
    assert summary["bytes_fetched"] > 5_000_000
    assert "synco: done" in result.stderr, "messages stay on stderr"
    assert tree(tmp_path / "local") == tree(files)


def test_json_and_output_to_stdout_exclude_each_other(dead_token, tmp_path):
    result = run("download", dead_token, "--json", "-o", "-", cwd=tmp_path)
    assert result.returncode == 2
    assert "--json and --output -" in one_error_line(result.stderr)


def test_output_dash_writes_the_script_to_stdout(shop, tmp_path):
    dump = tmp_path / "dump.sql"
    with Source(["--listen", "127.0.0.1:0"], db_url=cli_url(shop)) as source:
        to_file = synco("download", source.token, "--output", str(dump), cwd=tmp_path)
        assert to_file.code == 0, to_file.stderr
        to_stdout = subprocess.run([*CLIENT, "download", source.token, "-o", "-"], cwd=tmp_path,
                                   capture_output=True, env=env_with(), timeout=300)
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout == dump.read_bytes()
    assert to_stdout.stdout.startswith(b"-- synco SQL script")
    assert b"SQL script on stdout: 3 tables" in to_stdout.stderr
    assert list(tmp_path.glob(".*")) == [], "no temporary file left in the folder"


def test_output_dash_writes_nothing_when_the_download_fails(shop, tmp_path):
    publish = tmp_path / "public"
    publish.mkdir()
    with StaticServer(publish, fail_after=4) as web:
        with Source(["--publish-dir", str(publish), "--base-url", web.url],
                    db_url=cli_url(shop)) as source:
            source.wait_ready()
            result = run("download", source.token, "-o", "-", cwd=tmp_path, **FAST)
    assert result.returncode == 5, result.stderr
    assert result.stdout == ""


def cli_url(url) -> str:
    from dbfixtures import url_text

    return url_text(url)


def test_detect_json_keys_and_no_password(tmp_path):
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "a.txt").write_text("12345")
    result = run("detect", "--json", "--db-url", "mysql://app:S3CRET@127.0.0.1:3306/shop",
                 "--files-dir", f"up={tmp_path / 'up'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"framework", "context", "folder", "database", "base_url", "file_sets",
                         "rows_left_out", "after_import", "after_import_runs", "notes"}
    assert data["database"] == {"engine": "mysql", "name": "shop", "host": "127.0.0.1",
                                "port": 3306, "socket": None, "user": "app"}
    assert data["file_sets"] == [{"name": "up", "path": str(tmp_path / "up"), "exists": True,
                                  "files": 1, "bytes": 5, "public": False}]
    assert "S3CRET" not in result.stdout + result.stderr


def test_cache_json_keys():
    result = run("cache", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"location", "entries", "bytes", "limit_bytes", "partial_bytes"}
    assert data["entries"] == 0 and data["limit_bytes"] > 0


# ---------------------------------------------------------------- what the user is told


class Recorder(UI):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)


def test_report_says_where_the_previous_copy_is_kept():
    from types import SimpleNamespace

    project = SimpleNamespace(post_import=[])  # a project without post-import steps
    ui = Recorder()
    summary = Summary(tables=3, rows=10, database="shop", previous="shop__synco_prev")
    cli._report(summary, project, None, ui, "downloaded")
    assert "previous copy kept as shop__synco_prev; 'synco restore' brings it back" in ui.lines
    ui = Recorder()
    cli._report(Summary(tables=3, rows=10, database="shop"), project, None, ui, "downloaded")
    assert not [line for line in ui.lines if "previous" in line]


def test_confirm_shows_its_choices(monkeypatch):
    import io

    from rich.console import Console

    ui = UI()
    out = io.StringIO()
    ui.console = Console(file=out, force_terminal=False, highlight=False)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda *a: "n")
    with pytest.raises(Exception, match="stopped"):
        ui.confirm("replace database shop (3 tables)?", "pass --yes")
    assert out.getvalue() == "synco: replace database shop (3 tables)? [y/N] "


def in_pty(args: list[str], answer: bytes, env: dict, timeout: float = 300) -> tuple[int, str]:
    """Run synco on a pseudo terminal, answer its question with ``answer`` once it asks."""
    main, secondary = pty.openpty()
    proc = subprocess.Popen([*CLIENT, *args], stdin=secondary, stdout=secondary,
                            stderr=secondary, env=env, close_fds=True)
    os.close(secondary)
    seen, answered = b"", False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(main, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
            if not answered and b"[y/N]" in seen:
                os.write(main, answer)
                answered = True
            if proc.poll() is not None and not ready:
                break
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)
    return proc.returncode, seen.decode("utf-8", "replace").replace("\r\n", "\n")


def test_replace_prompt_shows_y_n_on_a_terminal(shop, mysql_db, tmp_path):
    from dbfixtures import mysql_fingerprint

    dst = mysql_db("dst")
    make_local(dst)
    before = mysql_fingerprint(dst)
    with Source(["--listen", "127.0.0.1:0"], db_url=cli_url(shop)) as source:
        code, seen = in_pty(["download", source.token, "--db-url", cli_url(dst)], b"n\n",
                            env_with(COLUMNS="200"))
    assert code == 11, seen
    assert re.search(r"replace database \S+ \(1 tables\) on .*\? the current one is kept for "
                     r"'synco restore' \[y/N\]", seen), seen
    assert mysql_fingerprint(dst) == before


def test_after_a_replace_it_says_where_the_previous_copy_is(shop, mysql_db, tmp_path):
    """The replace names where the previous copy is kept; --reload imports an unchanged copy."""
    dst = mysql_db("dst")
    make_local(dst)
    with Source(["--listen", "127.0.0.1:0"], db_url=cli_url(shop)) as source:
        code, seen = in_pty(["download", source.token, "--db-url", cli_url(dst)], b"y\n",
                            env_with(COLUMNS="300"))
        assert code == 0, seen
        same = synco("download", source.token, "--yes", "--json", db_url=cli_url(dst))
        again = synco("download", source.token, "--yes", "--json", "--reload", db_url=cli_url(dst))
    assert (f"synco: previous copy kept as {dst.database}__synco_prev; 'synco restore' brings "
            f"it back") in seen
    # nothing changed on either side: nothing imported, no new previous copy (docs/verify.md)
    assert json.loads(same.stdout)["unchanged"] is True and json.loads(same.stdout)["previous"] is None
    assert json.loads(again.stdout)["unchanged"] is False
    assert json.loads(again.stdout)["previous"] == f"{dst.database}__synco_prev"


def test_pull_json_summary(shop, mysql_db, tmp_path):
    """synco pull --json through --exec with a local prefix (the remote is this machine)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "synco-source"
    wrapper.write_text(f'#!/bin/sh\nexec {Path(sys.executable).parent / "synco-source"} "$@"\n')
    wrapper.chmod(0o755)
    remote_tmp = tmp_path / "remote-tmp"
    remote_tmp.mkdir()
    app = tmp_path / "app"
    app.mkdir()
    (app / "synco.yaml").write_text(f"database: {{url: '{cli_url(shop)}'}}\n")
    dst = mysql_db("dst", create=False)
    result = synco("pull", "--exec", f"env PATH={bindir}:{os.environ['PATH']} TMPDIR={remote_tmp}",
                   str(app), "--yes", "--json", "--db-url", cli_url(dst), cwd=tmp_path)
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert set(summary) == DOWNLOAD_KEYS
    assert (summary["command"], summary["database"], summary["tables"]) == ("pulled", dst.database, 3)
    assert summary["previous"] is None and summary["verified"] is None
