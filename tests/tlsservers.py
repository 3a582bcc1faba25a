"""Throwaway database servers that require TLS, for tests/test_tls.py: certificates made with
``cryptography`` (a CA, a server certificate for 127.0.0.1 and localhost, a client certificate),
one MariaDB (mariadb-install-db, ``--require-secure-transport``) and one PostgreSQL (initdb,
``ssl=on``, a pg_hba.conf of ``hostssl`` lines only), each in its own temporary folder with its own
free port and socket, stopped and removed afterwards. The machine's own servers are never touched.

As root the servers run as the ``mysql`` and ``postgres`` users (both refuse root), with their
folders made theirs. A missing binary skips the tests, except on CI (``CI`` set): there it fails.
"""

from __future__ import annotations

import datetime
import glob
import ipaddress
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from binaries import need

START_TIMEOUT = 60
# the password of the servers' test user: every character a URL or a shell could trip over
PASSWORD = "p@ss:w/o%rd #?&é ü"
CERT_USER = "synco_cert"  # authenticated by the client certificate (its common name)


@dataclass
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing here: verification against it fails


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(key, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _ca(common: str):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(common)).issuer_name(_name(common))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def _leaf(ca_key, ca_cert, common: str, server: bool):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(common)).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                     else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def make_certs(folder: Path) -> Certs:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate for CERT_USER
    (both signed by it), and an unrelated CA."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca("synco test CA")
    server_key, server_cert = _leaf(ca_key, ca_cert, "localhost", server=True)
    client_key, client_cert = _leaf(ca_key, ca_cert, CERT_USER, server=False)
    _, other = _ca("another CA")
    pem = serialization.Encoding.PEM
    certs = Certs(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem",
                  folder / "client.pem", folder / "client-key.pem", folder / "other-ca.pem")
    certs.ca.write_bytes(ca_cert.public_bytes(pem))
    certs.other_ca.write_bytes(other.public_bytes(pem))
    certs.server_cert.write_bytes(server_cert.public_bytes(pem))
    certs.client_cert.write_bytes(client_cert.public_bytes(pem))
    _write_key(server_key, certs.server_key)
    _write_key(client_key, certs.client_key)
    return certs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_user(user: str) -> tuple[list[str], pwd.struct_passwd | None]:
    """The command prefix that runs a server as ``user`` when we are root (else as ourselves)."""
    if os.geteuid() != 0:
        return [], None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        need(False, f"the system user {user!r} (created by the server's package)")
        raise
    runuser = shutil.which("runuser") or shutil.which("setpriv")
    need(runuser is not None, "runuser or setpriv (util-linux)")
    if runuser.endswith("runuser"):
        return [runuser, "-u", user, "--"], entry
    return [runuser, f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups"], entry


def _own(folder: Path, entry: pwd.struct_passwd | None) -> None:
    if entry is None:
        return
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)


class Server:
    """A started server process; ``stop()`` ends it and removes its folder."""

    def __init__(self, folder: Path, proc: subprocess.Popen, port: int, socket_path: str,
                 certs: Certs, log: Path) -> None:
        self.folder, self.proc, self.port, self.socket, self.certs, self.log = (
            folder, proc, port, socket_path, certs, log)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def _wait(server: Server, ready) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            log = server.log_text()
            server.stop()
            raise AssertionError(f"the test server stopped at its start:\n{log}")
        if ready():
            return
        time.sleep(0.2)
    log = server.log_text()
    server.stop()
    raise AssertionError(f"the test server did not start in {START_TIMEOUT} s:\n{log}")


def _run(cmd: list[str], what: str) -> None:
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if run.returncode:
        raise AssertionError(f"{what} failed ({run.returncode}):\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")


def start_mariadb() -> Server:
    """MariaDB with TLS required on TCP; root over its socket without a password."""
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    daemon = shutil.which("mariadbd") or next(iter(glob.glob("/usr/sbin/mariadbd")), None)
    need(install is not None and daemon is not None,
         "mariadb-install-db and mariadbd (apt-get install mariadb-server)")
    prefix, entry = _as_user("mysql")
    folder = Path(tempfile.mkdtemp(prefix="synco-tls-mariadb-"))
    certs = make_certs(folder / "certs")
    data, sock, log = folder / "data", str(folder / "mysqld.sock"), folder / "server.log"
    _own(folder, entry)
    common = ["--no-defaults", f"--datadir={data}", "--innodb-buffer-pool-size=16M",
              "--innodb-log-file-size=8M", "--skip-name-resolve"]
    _run(prefix + [install, *common, "--auth-root-authentication-method=normal", "--skip-test-db"],
         "mariadb-install-db")
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(prefix + [daemon, *common, f"--port={port}", "--bind-address=127.0.0.1",
                                          f"--socket={sock}", f"--pid-file={folder / 'mysqld.pid'}",
                                          "--skip-log-bin", "--performance-schema=OFF",
                                          f"--ssl-ca={certs.ca}", f"--ssl-cert={certs.server_cert}",
                                          f"--ssl-key={certs.server_key}", "--require-secure-transport=ON"],
                                stdout=out, stderr=subprocess.STDOUT)
    server = Server(folder, proc, port, sock, certs, log)

    def ready() -> bool:
        return os.path.exists(sock) and subprocess.run(
            [shutil.which("mariadb-admin") or "mysqladmin", "--no-defaults", "-uroot", f"--socket={sock}",
             "ping"], capture_output=True).returncode == 0

    _wait(server, ready)
    return server


def start_postgresql() -> Server:
    """PostgreSQL with ``ssl=on`` and only ``hostssl`` lines for TCP; the superuser ``postgres``
    over its socket without a password."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                  key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    initdb = bins[-1] if bins else shutil.which("initdb")
    need(initdb is not None, "initdb and postgres (apt-get install postgresql)")
    postgres = str(Path(initdb).with_name("postgres"))
    prefix, entry = _as_user("postgres")
    folder = Path(tempfile.mkdtemp(prefix="synco-tls-pg-"))
    certs = make_certs(folder / "certs")
    data, log = folder / "data", folder / "server.log"
    _own(folder, entry)
    _run(prefix + [initdb, "-D", str(data), "-U", "postgres", "--auth-local=trust",
                   "--auth-host=reject", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"], "initdb")
    (data / "pg_hba.conf").write_text(
        "local all all trust\n"
        f"hostssl all {CERT_USER} 127.0.0.1/32 cert\n"
        "hostssl all all 127.0.0.1/32 scram-sha-256\n"
        "hostssl all all ::1/128 scram-sha-256\n")
    _own(data, entry)
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(prefix + [postgres, "-D", str(data), "-p", str(port), "-k", str(folder),
                                          "-c", "listen_addresses=127.0.0.1", "-c", "ssl=on",
                                          "-c", f"ssl_cert_file={certs.server_cert}",
                                          "-c", f"ssl_key_file={certs.server_key}",
                                          "-c", f"ssl_ca_file={certs.ca}", "-c", "fsync=off",
                                          "-c", "shared_buffers=16MB", "-c", "max_connections=20"],
                                stdout=out, stderr=subprocess.STDOUT)
    server = Server(folder, proc, port, str(folder), certs, log)
    isready = str(Path(initdb).with_name("pg_isready"))

    def ready() -> bool:
        return subprocess.run([isready, "-q", "-h", str(folder), "-p", str(port)]).returncode == 0

    _wait(server, ready)
    return server
