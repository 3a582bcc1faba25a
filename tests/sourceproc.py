"""Run the real programs in tests: synco-source as a subprocess, synco's CLI as a subprocess, and
a small static web server (the stand-in for an application's web server in --publish-dir mode)
that can be made slow or made to fail after some requests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def env_with(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "SYNCO_DB_URL"}
    env.update(extra)
    return env


class Source:
    """``synco-source serve ARGS`` in a subprocess; ``token`` is read from its first stdout line."""

    def __init__(self, args: list[str], *, cwd: Path | None = None, db_url: str | None = None,
                 python: list[str] | None = None, ignore: tuple[int, ...] = (),
                 new_session: bool = False) -> None:
        """``ignore``: signals it starts with ignored (as under nohup); ``new_session``: its own
        process group, for signals sent to the whole group."""
        env = env_with(**({"SYNCO_DB_URL": db_url} if db_url else {}))
        cmd = (python or [sys.executable, "-m", "synco_source.cli"]) + ["serve", *args]

        def ignored() -> None:
            for signum in ignore:
                signal.signal(signum, signal.SIG_IGN)

        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     preexec_fn=ignored if ignore else None,
                                     start_new_session=new_session)
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        line = self.proc.stdout.readline()
        if not line.startswith("synco download "):
            self.stop()
            raise AssertionError(f"synco-source printed {line!r}; stderr: {self.stderr}")
        self.token = line.split()[2]
        self.stdout_rest = ""

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            if "synco-source: ready" in line or "synco-source: error" in line:
                self._ready.set()
        self._ready.set()

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self, timeout: float = 120) -> None:
        if not self._ready.wait(timeout):
            raise AssertionError(f"synco-source not ready after {timeout} s: {self.stderr}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.stdout_rest = self.proc.stdout.read()
        self._reader.join(5)
        return code

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def synco(*args: str, cwd: Path | None = None, db_url: str | None = None, timeout: float = 300,
          stdin: str | None = None) -> Result:
    """Run the client CLI in a subprocess, as a user would."""
    env = env_with(**({"SYNCO_DB_URL": db_url} if db_url else {}))
    run = subprocess.run([sys.executable, "-c", "from synco.cli import run; run()", *args],
                         cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                         input=stdin)
    return Result(run.returncode, run.stdout, run.stderr)


class StaticServer(ThreadingHTTPServer):
    """Serves a folder like a plain web server; ``delay`` slows every request, ``fail_after``
    makes every request after that many answer 503 (a server going away)."""

    daemon_threads = True

    def __init__(self, folder: Path, *, delay: float = 0.0, fail_after: int | None = None) -> None:
        self.folder, self.delay, self.fail_after = folder, delay, fail_after
        self.requests = 0
        self.paths: list[str] = []
        self.lock = threading.Lock()
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(server.folder), **kwargs)

            def log_message(self, *args):
                pass

            def do_GET(self):
                with server.lock:
                    server.requests += 1
                    server.paths.append(self.path)
                    count = server.requests
                time.sleep(server.delay)
                if server.fail_after is not None and count > server.fail_after:
                    self.send_error(503)
                    return
                super().do_GET()

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def __enter__(self) -> "StaticServer":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
