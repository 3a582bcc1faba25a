"""Recipient keys (docs/FORMAT.md §9): `synco keygen`, `synco-source serve --recipient KEY` over
the listener, a --publish-dir and the pipe, and the errors of a key that does not match."""

from __future__ import annotations

import stat
import subprocess
import sys

import pytest

from e2e import make_files, one_error_line, tree
from sourceproc import REPO, Source, StaticServer, env_with, synco
from synco.download import Download, DownloadOptions
from synco.keys import Identity
from synco.pipe import PipeSource, open_session
from synco.ui import UI
from synco_source import crypto, format
from synco_source.errors import IntegrityError, UnsupportedFormat, UsageError
from test_source_deps import BLOCK


@pytest.fixture
def state(tmp_path, monkeypatch):
    """A state folder of our own, for the CLI subprocesses too."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state" / "synco"


def keygen(*args: str) -> str:
    result = synco("keygen", *args)
    assert result.code == 0, result.stderr
    return result.stdout.strip()


def test_keygen_makes_one_private_key_file(state):
    public = keygen()
    assert public.startswith("syncopk1") and len(public) == 66
    assert format.parse_public_key(public)
    assert stat.S_IMODE((state / "identity").stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert keygen() == public, "a second keygen shows the same key"
    assert Identity.load(state / "identity").public_text == public
    assert keygen("--new") != public


def test_listener_session_for_a_recipient(state, tmp_path):
    public = keygen()
    files = make_files(tmp_path / "files")
    with Source(["--no-db", "--files", f"f={files}", "--listen", "127.0.0.1:0",
                 "--recipient", public]) as source:
        token = format.Token.decode(source.token)
        assert token.version == 2 and token.key == b""
        result = synco("download", source.token, "--files-dir", f"f={tmp_path / 'local'}")
        assert result.code == 0, result.stderr
    assert tree(tmp_path / "local") == tree(files)


def test_publish_dir_holds_only_the_wrapped_key(state, tmp_path):
    identity = Identity.generate()
    identity.save(state / "identity")
    publish = tmp_path / "public"
    publish.mkdir()
    files = make_files(tmp_path / "files")
    with StaticServer(publish) as web:
        with Source(["--no-db", "--files", f"f={files}", "--publish-dir", str(publish),
                     "--base-url", web.url, "--recipient", identity.public_text]) as source:
            source.wait_ready()
            token = format.Token.decode(source.token)
            (folder,) = publish.iterdir()
            blob = (folder / "key").read_bytes()
            assert len(blob) == crypto.KEY_OBJECT_SIZE
            key = identity.unwrap(blob, token.session_id)
            published = b"".join(p.read_bytes() for p in publish.rglob("*") if p.is_file())
            assert key not in published and key.hex().encode() not in published
            assert key.hex() not in source.token and key.hex() not in source.stderr
            result = synco("download", source.token, "--files-dir", f"f={tmp_path / 'local'}")
            assert result.code == 0, result.stderr
            assert any(p.endswith("/key") for p in web.paths)
    assert tree(tmp_path / "local") == tree(files)


def test_a_token_for_another_key_or_no_key_fails_in_one_line(state, tmp_path):
    files = make_files(tmp_path / "files")
    other = Identity.generate()
    with Source(["--no-db", "--files", f"f={files}", "--listen", "127.0.0.1:0",
                 "--recipient", other.public_text]) as source:
        missing = synco("download", source.token, "--files-dir", f"f={tmp_path / 'local'}")
        assert missing.code == UsageError.exit_code
        assert "no key pair" in one_error_line(missing.stderr)
        keygen()
        wrong = synco("download", source.token, "--files-dir", f"f={tmp_path / 'local'}")
        assert wrong.code == UsageError.exit_code
        assert "made for another recipient key" in one_error_line(wrong.stderr)
    assert not (tmp_path / "local").exists()


def test_a_bad_recipient_is_refused_in_one_line(tmp_path):
    text = Identity.generate().public_text
    broken = text[:-1] + ("a" if text[-1] != "a" else "b")
    run = subprocess.run([sys.executable, "-m", "synco_source.cli", "serve", "--no-db", "--files",
                          f"f={tmp_path}", "--recipient", broken], capture_output=True, text=True,
                         env=env_with(PYTHONPATH=str(REPO)), timeout=60)
    errors = [line for line in run.stderr.splitlines() if "error:" in line]
    assert run.returncode == UsageError.exit_code and run.stdout == ""
    assert len(errors) == 1 and "checksum does not match" in errors[0], run.stderr


def test_pipe_with_an_ephemeral_recipient(tmp_path):
    files = make_files(tmp_path / "files")
    identity = Identity.generate()
    # the server side as it must run on a server: without the client's packages
    argv = [sys.executable, "-c", BLOCK, "serve", "--stdio", "--no-db",
            "--files", f"f={files}", "--recipient", identity.public_text]
    source = PipeSource(argv, env=env_with(PYTHONPATH=str(REPO)), on_stderr=None)
    assert "key" not in source.hello
    with pytest.raises(UnsupportedFormat):
        open_session(source)
    with pytest.raises(IntegrityError, match="another recipient"):
        open_session(source, Identity.generate())
    sc = open_session(source, identity)
    opts = DownloadOptions(file_dirs={"f": tmp_path / "local"}, poll_interval=0.1)
    Download(opts, UI(quiet=True), remote=source, sc=sc).run()
    assert source.proc.returncode == 0
    assert tree(tmp_path / "local") == tree(files)


def test_wrapping_binds_the_session():
    identity = Identity.generate()
    key, sid = crypto.new_session_key(), crypto.new_session_id()
    blob = crypto.wrap_session_key(key, sid, identity.public)
    assert identity.unwrap(blob, sid) == key
    assert crypto.wrap_session_key(key, sid, identity.public) != blob, "a fresh ephemeral key"
    with pytest.raises(IntegrityError):
        identity.unwrap(blob, crypto.new_session_id())
