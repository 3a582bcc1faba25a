"""synco-source under faults: every failure is reported as what it is, leftovers of killed runs
are swept, and the sets it reads stay inside their folders (issue 11, server side)."""

from __future__ import annotations

import signal
import sys
import textwrap
from pathlib import Path

import pytest

from sourceproc import Source, synco
from synco_source import cli
from synco_source.format import SessionCrypto, Token


def read_meta(folder: Path, token: Token) -> dict:
    """The meta of a session folder, opened with the token's key."""
    return SessionCrypto(token.key, token.session_id).open_meta((folder / "meta").read_bytes())


@pytest.fixture
def handlers():
    """Signal handlers as they were: cli.main installs its own in this process."""
    saved = {s: signal.getsignal(s) for s in cli.STOP_SIGNALS}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def serve_in_process(monkeypatch, tmp_path, *extra: str) -> tuple[int, Path]:
    folder = tmp_path / "files"
    folder.mkdir(exist_ok=True)
    (folder / "a.txt").write_text("a\n")
    publish = tmp_path / "public"
    publish.mkdir(exist_ok=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNCO_DB_URL", raising=False)
    code = cli.main([*extra, "serve", "--no-db", "--files", f"f={folder}", "--publish-dir",
                     str(publish), "--base-url", "http://x.invalid/", "--keep"])
    return code, publish


@pytest.mark.parametrize("debug", [False, True])
def test_a_bug_in_the_producer_fails_the_session_with_its_message(monkeypatch, tmp_path, capsys,
                                                                   handlers, debug):
    """Not a deleted session (the laptop would say 'the token has expired'): the meta says
    failed with 'unexpected RuntimeError: ...', the server says so and exits 70 after the grace."""
    def broken(session, plan, say):
        session.publish_meta("dumping", progress={"step": "database"})
        raise RuntimeError("boom in the producer")

    monkeypatch.setattr("synco_source.produce.produce", broken)
    monkeypatch.setattr(cli, "FAILED_GRACE", 0.5)
    code, publish = serve_in_process(monkeypatch, tmp_path, *(["--debug"] if debug else []))
    out, err = capsys.readouterr()
    assert code == 70, err
    (folder,) = [p for p in publish.iterdir() if p.is_dir()]
    meta = read_meta(folder, Token.decode(out.split()[2]))
    assert meta["state"] == "failed"
    assert meta["message"] == "unexpected RuntimeError: boom in the producer"
    assert "synco-source: error: unexpected RuntimeError: boom in the producer" in err
    assert ("Traceback" in err) == debug, err
    assert "--debug" in err


def test_a_synco_error_in_the_producer_keeps_its_exit_code(monkeypatch, tmp_path, capsys, handlers):
    from synco_source.errors import DatabaseError

    def broken(session, plan, say):
        raise DatabaseError("the database went away")

    monkeypatch.setattr("synco_source.produce.produce", broken)
    monkeypatch.setattr(cli, "FAILED_GRACE", 0.2)
    code, publish = serve_in_process(monkeypatch, tmp_path)
    out, err = capsys.readouterr()
    assert code == 8, err
    (folder,) = [p for p in publish.iterdir() if p.is_dir()]
    assert read_meta(folder, Token.decode(out.split()[2]))["message"] == "the database went away"
    assert "Traceback" not in err


BROKEN_SERVER = textwrap.dedent("""
    import sys
    import synco_source.produce
    from synco_source import cli

    def broken(session, plan, say):
        raise KeyError("no such column")

    synco_source.produce.produce = broken
    sys.exit(cli.main(sys.argv[1:]))
""")


def test_the_laptop_is_told_what_failed_on_the_server(tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    (files / "a.txt").write_text("a\n")
    with Source(["--no-db", "--files", f"f={files}", "--listen", "127.0.0.1:0"],
                python=[sys.executable, "-c", BROKEN_SERVER]) as source:
        source.wait_ready()
        run = synco("download", source.token, "--only", "f", "--files-dir", f"f={tmp_path / 'here'}",
                    "--yes", cwd=tmp_path, timeout=120)
        assert run.code == 7, run.stderr
        assert "synco-source failed on the server: unexpected KeyError: 'no such column'" in run.stderr
        assert "expired" not in run.stderr
        code = source.stop(signal.SIGTERM)
    assert code == 70, source.stderr
    assert "removed everything published" in source.stderr


def test_removed_everything_is_said_only_when_true(monkeypatch, tmp_path, capsys, handlers):
    """A session folder that cannot be deleted is named, with what is left, instead of a false
    'removed everything published'."""
    from synco_source import session as session_module

    monkeypatch.setattr(session_module.shutil, "rmtree", lambda *a, **k: None)
    monkeypatch.setattr(session_module.time, "sleep", lambda s: None)
    monkeypatch.setattr(cli, "FAILED_GRACE", 0.2)

    def quick(session, plan, say):
        raise RuntimeError("stop here")

    monkeypatch.setattr("synco_source.produce.produce", quick)
    folder = tmp_path / "files"
    folder.mkdir()
    (tmp_path / "public").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNCO_DB_URL", raising=False)
    cli.main(["serve", "--no-db", "--files", f"f={folder}", "--publish-dir",
              str(tmp_path / "public"), "--base-url", "http://x.invalid/"])
    err = capsys.readouterr().err
    assert "removed everything published" not in err
    assert "could not remove everything published" in err and "meta" in err
