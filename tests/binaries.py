"""The release binaries, built once per test run by build/build.sh (about a minute; the first run
also installs its tools into build/work/venv). ``built`` is a session fixture, registered in
conftest.py so that every test module shares the one build."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DIST = REPO / "dist"
PLATFORM = "linux-x86_64"
SERVER = DIST / f"synco-source-{PLATFORM}"
CLIENT = DIST / f"synco-{PLATFORM}"


def need(condition: bool, what: str) -> None:
    """Skip locally, fail on CI: nothing that CI runs may be skipped."""
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(f"needed for this test: {what}")
        pytest.skip(f"needs {what}")


@pytest.fixture(scope="session")
def built() -> Path:
    need(shutil.which("musl-gcc") is not None, "musl-gcc for the launcher (apt-get install musl-tools)")
    need(Path("/usr/include/lzma.h").is_file(), "liblzma's headers (apt-get install liblzma-dev)")
    run = subprocess.run([str(REPO / "build" / "build.sh")], capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, f"build/build.sh failed:\n{run.stdout}\n{run.stderr}"
    return DIST
