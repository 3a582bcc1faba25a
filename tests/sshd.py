"""A real OpenSSH server for the tests of ``synco pull``, all of it in a temporary folder.

``/usr/sbin/sshd -D -e -f <own config>`` on 127.0.0.1 and a free port, with a generated host key,
a generated client key in its own ``authorized_keys``, and ``SetEnv`` giving the sessions a PATH
with a folder of the test's own (stand-in programs, a synco-source wrapper) and a TMPDIR inside
the test's folder, so whatever the remote side leaves is seen, and nothing lands in /tmp. The
client side is ``ssh_command``, for SYNCO_SSH_COMMAND: no user config, its own known_hosts.
No system file is touched; sshd only needs its privilege separation folder (``/run/sshd``),
which the openssh-server package's service would create, and is created here when missing.
Without openssh-server the tests skip, and fail when CI is set.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from binaries import need

SSHD = "/usr/sbin/sshd"
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:
    """``noexec_tmp``: the sessions' TMPDIR is a tmpfs mounted noexec (as on hardened servers), in
    a mount namespace of sshd's own (``unshare -m``), seen from here through /proc/PID/root."""

    def __init__(self, folder: Path, *, noexec_tmp: bool = False) -> None:
        need(os.path.exists(SSHD) and shutil.which("ssh") and shutil.which("ssh-keygen"),
             "openssh-server and openssh-client (apt-get install openssh-server)")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.bin = folder / "remote-bin"        # first on the sessions' PATH
        self.tmp = folder / "remote-tmp"        # the sessions' TMPDIR
        self.bin.mkdir()
        self.tmp.mkdir()
        self.host_key = folder / "host_key"
        self.key = folder / "client_key"
        for key in (self.host_key, self.key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "synco-test",
                            "-f", str(key)], check=True)
        authorized = folder / "authorized_keys"
        authorized.write_text((folder / "client_key.pub").read_text())
        self.user = os.environ.get("USER") or __import__("pwd").getpwuid(os.getuid()).pw_name
        self.port = free_port()
        self.known_hosts = folder / "known_hosts"
        self.accept_host_key()
        self.config = folder / "sshd_config"
        self.config.write_text("\n".join([
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}",
            f"AuthorizedKeysFile {authorized}",
            f"PidFile {folder / 'sshd.pid'}",
            "UsePAM no",
            "StrictModes no",
            "PermitRootLogin yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PrintMotd no",
            "LogLevel VERBOSE",
            f"SetEnv PATH={self.bin}:{BASE_PATH} TMPDIR={self.tmp}",
            "",
        ]))
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.log = open(folder / "sshd.log", "wb")
        argv = [SSHD, "-D", "-e", "-f", str(self.config)]
        if noexec_tmp:
            need(os.getuid() == 0 and shutil.which("unshare") is not None,
                 "root and unshare (util-linux) for a noexec mount of our own")
            argv = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                    'mount -t tmpfs -o noexec,mode=1777 synco-test "$0" && exec "$@"',
                    str(self.tmp), *argv]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        self.tmp_view = Path(f"/proc/{self.proc.pid}/root{self.tmp}") if noexec_tmp else self.tmp
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"sshd exited: {self.log_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise AssertionError(f"sshd does not answer: {self.log_text()}")

    def accept_host_key(self) -> None:
        public = (self.folder / "host_key.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {public[0]} {public[1]}\n")

    def log_text(self) -> str:
        self.log.flush()
        return (self.folder / "sshd.log").read_text(errors="replace")

    @property
    def ssh_command(self) -> str:
        """For SYNCO_SSH_COMMAND: this server's key and known_hosts, no user or system config."""
        return shlex.join(["ssh", "-F", "/dev/null", "-i", str(self.key), "-o", "IdentitiesOnly=yes",
                           "-o", f"UserKnownHostsFile={self.known_hosts}",
                           "-o", "GlobalKnownHostsFile=/dev/null",
                           "-o", "StrictHostKeyChecking=yes", "-p", str(self.port)])

    def url(self, path: Path | str) -> str:
        return f"ssh://{self.user}@127.0.0.1{path}"

    def leftovers(self) -> list[str]:
        """What the remote sessions left in their TMPDIR."""
        return sorted(p.name for p in self.tmp_view.iterdir())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def sshd_server(tmp_path):
    server = Sshd(tmp_path / "sshd")
    yield server
    server.stop()
