"""The client under signals and after crashes: SIGTERM and SIGHUP clean up like Ctrl-C, a swap
is not stopped half-way, a killed run's staging folder is removed by the next run, and the
messages after a partial change say what was changed."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from rich.console import Console

from e2e import databases, make_files, one_error_line
from sourceproc import env_with
from synco import cli, files
from synco.download import Download, DownloadOptions
from synco.signals import Stopped, stop_as_interrupt
from synco.ui import UI
from synco_source.engines.common import no_sigint
from synco_source.errors import LocalIOError
from test_bad_input import FAST, download, local, published, url_of  # noqa: F401 (fixture)


def client(token: str, dst, folder: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "from synco.cli import run; run()", "download", token, "--yes",
         "--db-url", url_of(dst), "--files-dir", f"f={folder}"],
        env=env_with(**FAST), stderr=subprocess.PIPE, text=True)


def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def staging_folders(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(files.STAGING_PREFIX)]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_stop_signals_clean_up_like_ctrl_c(shop, local, mysql_server, tmp_path, signum):
    dst, folder, unchanged = local
    with published(shop, tmp_path, delay=0.7, files=make_files(tmp_path / "files")) as (source, _):
        proc = client(source.token, dst, folder)
        shadow = f"{dst.database}__synco_new"
        wait_for(lambda: shadow in databases(mysql_server), "the import into the shadow database")
        assert staging_folders(folder), "files are staged before the import"
        proc.send_signal(signum)
        code = proc.wait(60)
        stderr = proc.stderr.read()
    assert code == 130, stderr
    assert f"interrupted by {signal.Signals(signum).name}; nothing was changed" in one_error_line(stderr)
    unchanged()


def test_the_next_run_removes_what_a_killed_run_left(shop, local, tmp_path):
    """kill -9 leaves a staging folder (plaintext files); the next run, of another session,
    removes it and says so, and keeps the staging folder of a run that is still alive."""
    dst, folder, unchanged = local
    with published(shop, tmp_path, delay=0.7, files=make_files(tmp_path / "files")) as (source, _):
        proc = client(source.token, dst, folder)
        wait_for(lambda: staging_folders(folder), "the staging folder")
        wait_for(lambda: any(len(list(p.iterdir())) > 1 for p in staging_folders(folder)),
                 "a staged file")
        proc.kill()
        proc.wait(60)
        proc.stderr.close()
    left = staging_folders(folder)
    assert len(left) == 1 and (left[0] / files.LOCK_NAME).read_text().strip() == str(proc.pid)
    (tmp_path / "again").mkdir()
    with published(shop, tmp_path / "again", files=make_files(tmp_path / "files2")) as (source, _):
        result = download(source.token, dst, folder)
    assert result.code == 0, result.stderr
    assert f"removed {left[0]}, left behind by an earlier run that was stopped" in result.stderr
    assert staging_folders(folder) == []


def test_a_stop_signal_waits_for_the_end_of_a_swap():
    """Inside no_sigint (the swap) SIGTERM is held back, then delivered as soon as it ends."""
    progress = []
    with stop_as_interrupt():
        with pytest.raises(Stopped) as info:
            with no_sigint():
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(10):
                    time.sleep(0.02)
                progress.append("swap finished")
            time.sleep(5)
            progress.append("not stopped")
    assert progress == ["swap finished"] and info.value.name == "SIGTERM"


def test_signals_ignored_at_start_stay_ignored():
    old_hup, old_int = signal.signal(signal.SIGHUP, signal.SIG_IGN), signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with stop_as_interrupt():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)  # ignored from the start: no KeyboardInterrupt
            time.sleep(0.05)
            with pytest.raises(Stopped):  # SIGTERM still stops outside a swap
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, old_hup)
        signal.signal(signal.SIGINT, old_int)


def run_in_edge(token: str, dst, folder: Path) -> tuple[int, str]:
    """One download in this process through the CLI's edge; (exit code, what it printed)."""
    ui = UI(assume_yes=True)
    out = io.StringIO()
    ui.console = Console(file=out, width=400)
    opts = DownloadOptions(token=token, db_url=cli.dburl.parse(url_of(dst)), file_dirs={"f": folder},
                           poll_interval=0.05)
    try:
        with cli.edge(ui):
            Download(opts, ui).run()
    except typer.Exit as exc:
        return exc.exit_code, out.getvalue()
    return 0, out.getvalue()


@pytest.mark.parametrize("failure", [KeyboardInterrupt, LocalIOError])
def test_after_the_swap_nobody_is_told_nothing_was_changed(shop, local, tmp_path, monkeypatch, failure):
    dst, folder, _ = local

    def fail(self):
        raise failure("cannot put files into the folder" if failure is LocalIOError else None)

    monkeypatch.setattr(files.Staging, "commit", fail)
    with published(shop, tmp_path, files=make_files(tmp_path / "files")) as (source, _):
        code, printed = run_in_edge(source.token, dst, folder)
    assert "nothing was changed" not in printed
    expected = (f"the database {dst.database} was replaced; the files of set 'f' were not "
                f"updated: run again")
    if failure is KeyboardInterrupt:
        assert code == 130 and f"error: interrupted after {expected}" in printed, printed
    else:
        assert code == 9 and f"hint: {expected}" in printed, printed


def test_a_stop_signal_goes_to_the_handler_a_swap_installed_for_ctrl_c():
    """The MySQL swap takes Ctrl-C with its own handler until the point of no return (noted,
    rolled back at a safe point): SIGTERM and SIGHUP must go there too, not raise mid-statement."""
    pressed = []
    with stop_as_interrupt():
        old = signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
        try:
            for signum in (signal.SIGTERM, signal.SIGHUP):
                os.kill(os.getpid(), signum)
                time.sleep(0.05)
        finally:
            signal.signal(signal.SIGINT, old)
    assert pressed == [signal.SIGINT, signal.SIGINT]


def test_files_owed_after_the_swap_are_brought_by_the_next_run(shop, local, tmp_path, monkeypatch):
    """A run stopped after the database swap and before its files were put in place leaves a
    note; the next run (another session) says what happened and brings the files up to date."""
    from e2e import tree
    from synco import state

    dst, folder, _ = local
    source_files = make_files(tmp_path / "files")

    def stopped(self):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(files.Staging, "commit", stopped)
        with published(shop, tmp_path, files=source_files) as (source, _):
            code, printed = run_in_edge(source.token, dst, folder)
    assert code == 130, printed
    note = state.owed_files(folder)
    assert note is not None and note["database"] == dst.database, note
    (tmp_path / "again").mkdir()
    with published(shop, tmp_path / "again", files=source_files) as (source, _):
        code, printed = run_in_edge(source.token, dst, folder)
    assert code == 0, printed
    assert f"stopped after it replaced the database {dst.database}" in printed, printed
    have, want = tree(folder), tree(source_files)
    assert {path: have.get(path) for path in want} == want
    assert state.owed_files(folder) is None
