"""The README's demo (docs/demo/run.sh) runs here as a user runs it, and proves itself: each line
marked with the side that printed it, the laptop's and the server's byte counts equal, and a
non-zero exit when the copy differs from production."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parent.parent / "docs" / "demo" / "run.sh"
BIN = Path(sys.executable).parent


def run_demo(bindir: Path, mysql_server) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYNCO_BIN": str(bindir), "DEMO_PREFIX": f"synco_t_demo_{secrets.token_hex(4)}"}
    return subprocess.run(["bash", str(DEMO)], env=env, capture_output=True, text=True, timeout=120)


def test_the_demo_runs_and_proves_itself(mysql_server):
    result = run_demo(BIN, mysql_server)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "demo: the local copy matches production" in out
    assert re.search(r"^  server \| synco download \S+$", out, re.M), out
    sent = re.search(r"^  server \| synco-source: download by [^;]+; \d+ objects, ([\d,]+) bytes", out, re.M)
    got = re.search(r"^  laptop \| synco: done, ([\d,]+) bytes downloaded \(compressed and encrypted\)", out, re.M)
    assert sent and got, out
    assert sent.group(1) == got.group(1)


def test_the_demo_fails_when_the_copy_differs(mysql_server, tmp_path):
    """A synco that loses a row after its download: the demo says so and exits non-zero."""
    (tmp_path / "synco-source").symlink_to(BIN / "synco-source")
    wrapper = tmp_path / "synco"
    wrapper.write_text("#!/bin/sh\nset -e\n"
                       f"{BIN / 'synco'} \"$@\"\n"
                       'db=${SYNCO_DB_URL##*/}\n'
                       "mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -u root \"$db\" "
                       "-e 'DELETE FROM order_line LIMIT 1'\n")
    wrapper.chmod(0o755)
    result = run_demo(tmp_path, mysql_server)
    assert result.returncode != 0, result.stdout
    assert "demo: the tables differ" in result.stderr
    assert "matches production" not in result.stdout
