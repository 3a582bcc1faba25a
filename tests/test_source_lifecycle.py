"""synco-source removes everything it published when it is stopped, at any point."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from dbfixtures import url_text
from sourceproc import Source


@pytest.fixture(scope="module")
def big_db(mysql_server):
    """A database whose dump takes seconds (100,000 rows of 256 bytes, about 3 s here): long
    enough to stop synco-source in the middle of it, after chunks were written."""
    from dbfixtures import _drop_all, _make, mysql_execute

    url = _make(mysql_server, "big", True)
    try:
        mysql_execute(url, "CREATE TABLE big (id INT PRIMARY KEY, payload TEXT)",
                      "INSERT INTO big SELECT seq, REPEAT(MD5(seq), 8) FROM seq_1_to_100000",
                      database=url.database)
        yield url
    finally:
        _drop_all(mysql_server, url.database)


def wait_for_a_chunk(source: Source, publish: Path, timeout: float = 60) -> dict:
    """The session's meta as soon as a sealed object is in the session folder."""
    from synco_source.format import SessionCrypto, Token

    token = Token.decode(source.token)
    folder = publish / token.session_id.hex()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert source.proc.poll() is None, source.stderr
        try:
            names = os.listdir(folder / "o")
        except FileNotFoundError:
            names = []
        if any(re.fullmatch(r"[0-9a-f]{64}", name) for name in names):
            # the first object (the schema part) can be written just before the meta says dumping
            meta = SessionCrypto(token.key, token.session_id).open_meta((folder / "meta").read_bytes())
            if meta["state"] != "created":
                return meta
        time.sleep(0.01)
    raise AssertionError(f"no object written after {timeout} s: {source.stderr}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_stop_during_the_dump_removes_everything(big_db, tmp_path, sig):
    """Signalled while the dump runs, after chunks were written: everything goes, the dump
    thread's late writes included."""
    publish = tmp_path / "public"
    publish.mkdir()
    source = Source(["--publish-dir", str(publish), "--base-url", "http://x.invalid/"],
                    db_url=url_text(big_db))
    meta = wait_for_a_chunk(source, publish)
    assert meta["state"] == "dumping", meta
    code = source.stop(sig)
    assert "synco-source: ready" not in source.stderr, "the dump ended before the signal"
    assert code == (130 if sig == signal.SIGINT else 0), source.stderr
    assert list(publish.iterdir()) == []
    assert "removed everything published" in source.stderr
    assert "Traceback" not in source.stderr and "unexpected" not in source.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_stop_while_serving_removes_everything(shop, tmp_path, sig):
    publish = tmp_path / "public"
    publish.mkdir()
    source = Source(["--publish-dir", str(publish), "--base-url", "http://x.invalid/"],
                    db_url=url_text(shop))
    source.wait_ready()
    assert [p.name for p in publish.iterdir()], "the session folder exists while it runs"
    code = source.stop(sig)
    assert code == (130 if sig == signal.SIGINT else 0), source.stderr
    assert list(publish.iterdir()) == []
    assert "removed everything published" in source.stderr
    assert "Traceback" not in source.stderr


def test_a_signal_ignored_at_start_stays_ignored(shop, tmp_path):
    """Started under nohup (SIGHUP ignored): a hang-up does not stop it; SIGTERM still does."""
    import time

    source = Source(["--listen", "127.0.0.1:0"], db_url=url_text(shop),
                    ignore=(signal.SIGHUP,))
    source.wait_ready()
    source.proc.send_signal(signal.SIGHUP)
    time.sleep(1)
    assert source.proc.poll() is None, source.stderr
    assert source.stop(signal.SIGTERM) == 0, source.stderr
    assert "stopped by SIGTERM" in source.stderr


def test_keep_leaves_the_session(shop, tmp_path):
    publish = tmp_path / "public"
    publish.mkdir()
    source = Source(["--publish-dir", str(publish), "--base-url", "http://x.invalid/", "--keep"],
                    db_url=url_text(shop))
    source.wait_ready()
    source.stop()
    (folder,) = publish.iterdir()
    assert (folder / "meta").is_file() and len(list((folder / "o").iterdir())) > 3


def test_bad_options_are_one_line(tmp_path):
    import os
    import subprocess
    import sys
    for args, needle in [(["--ttl", "soon"], "bad duration"),
                         (["--listen", "nowhere"], "bad --listen"),
                         (["--no-db", "--files", f"f={tmp_path}", "--publish-dir", str(tmp_path)],
                          "needs --base-url"),
                         ([], "no known framework"),
                         (["--db-url", "sqlite:"], "names no SQLite database file"),
                         (["--db-url", "mysql://root@127.0.0.1/"], "names no database"),
                         (["--no-db"], "nothing to publish")]:
        run = subprocess.run([sys.executable, "-m", "synco_source.cli", "serve", *args],
                             capture_output=True, text=True, timeout=30, cwd=tmp_path,
                             env={k: v for k, v in os.environ.items() if k != "SYNCO_DB_URL"})
        assert run.returncode == 2, (args, run.stderr)
        assert run.stdout == ""
        errors = [l for l in run.stderr.splitlines() if l.startswith("synco-source: error:")]
        assert len(errors) == 1 and needle in errors[0], run.stderr


def test_a_second_signal_does_not_stop_the_cleanup(shop, tmp_path):
    """A terminal's Ctrl-C can arrive twice (the one-file binary's launchers pass it on)."""
    publish = tmp_path / "public"
    publish.mkdir()
    source = Source(["--publish-dir", str(publish), "--base-url", "http://x.invalid/"],
                    db_url=url_text(shop))
    source.wait_ready()
    for sig in (signal.SIGINT, signal.SIGINT, signal.SIGTERM):
        source.proc.send_signal(sig)
    assert source.stop() == 130, source.stderr  # the first one counts
    assert list(publish.iterdir()) == []
    assert "unexpected" not in source.stderr and "Traceback" not in source.stderr


def test_publish_dir_without_a_known_url_asks_on_a_terminal(shop, tmp_path):
    import os
    import pty
    import subprocess
    import sys

    publish = tmp_path / "public"
    publish.mkdir()
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "synco_source.cli", "serve", "--publish-dir",
                             str(publish), "--db-url", url_text(shop)],
                            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    os.close(slave)
    os.write(master, b"https://shop.example/public\n")
    line = proc.stdout.readline()
    proc.terminate()
    proc.wait(30)
    os.close(master)
    from synco_source.format import Token
    assert Token.decode(line.split()[2]).url.startswith("https://shop.example/public/")
    assert "public URL of" in proc.stderr.read()


def test_signals_named_by_the_launcher_are_ignored_first_thing(monkeypatch):
    """The release binary's launcher names the signals ignored at its start; main() ignores them
    before anything else (framework detection may take a while) and does not pass the name on."""
    from synco_source import cli

    saved = {s: signal.getsignal(s) for s in (signal.SIGHUP, signal.SIGUSR1, signal.SIGTERM,
                                              signal.SIGINT)}
    monkeypatch.setenv(cli.IGNORED_SIGNALS_VAR, "HUP,USR1,BOGUS")
    try:
        assert cli.main(["version"]) == 0
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) == saved[signal.SIGTERM]
        assert cli.IGNORED_SIGNALS_VAR not in os.environ
        stop = cli.StopSignals()
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN  # stays ignored
        assert signal.getsignal(signal.SIGTERM) == stop._handle
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
