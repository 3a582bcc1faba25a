"""TLS to the database, and the MySQL socket, against throwaway servers that require TLS
(tests/tlsservers.py: one MariaDB, one PostgreSQL, each started once for this module).

What is checked: the mysql client's ssl-mode semantics (PREFERRED negotiates, REQUIRED fails
against a server without TLS, VERIFY_IDENTITY checks the CA and the name) and libpq's sslmode;
client certificates; the options from the URL and from Flow's and Symfony's configuration; a
password full of URL characters throughout; and one real download from each TLS server into a
database whose name has a space, a dash, a quote and non-ASCII letters.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from urllib.parse import quote, urlencode

import pymysql
import pytest

import tlsservers
from binaries import need
from dbfixtures import mysql_connect, mysql_fingerprint, url_text
from fw_trees import neos_tree, source, symfony_tree
from pgfixtures import pg_execute, pg_fingerprint
from sourceproc import Source, env_with, synco
from synco_source import engines
from synco_source.dburl import parse
from synco_source.engines.mysql import sql as mysql_sql
from synco_source.engines.postgresql import sql as pg_sql
from synco_source.errors import DatabaseError

PASSWORD = tlsservers.PASSWORD
SOURCE_DB = "shop src-ü 'x'"
ROWS = [(1, "eins"), (2, "zwei 🐬"), (3, "drei")]


def _url(engine: str, server, *, user: str = "synco", host: str = "127.0.0.1", db: str = SOURCE_DB,
         **params: str) -> str:
    who = quote(user, safe="") + (f":{quote(PASSWORD, safe='')}" if user == "synco" else "")
    query = ("?" + urlencode(params)) if params else ""
    return f"{engine}://{who}@{host}:{server.port}/{quote(db, safe='')}{query}"


def _failure(fn, *args) -> DatabaseError:
    with pytest.raises(DatabaseError) as info:
        fn(*args)
    exc = info.value
    assert "\n" not in str(exc) and PASSWORD not in str(exc) and PASSWORD not in (exc.hint or "")
    return exc


# --- MariaDB ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_mariadb():
    server = tlsservers.start_mariadb()
    try:
        conn = pymysql.connect(unix_socket=server.socket, user="root", charset="utf8mb4", autocommit=True)
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {mysql_sql.qi(SOURCE_DB)} CHARACTER SET utf8mb4")
            cur.execute("CREATE USER 'synco'@'%%' IDENTIFIED BY %s", (PASSWORD,))
            cur.execute(f"CREATE USER '{tlsservers.CERT_USER}'@'%' REQUIRE X509")
            for user in ("synco", tlsservers.CERT_USER):
                cur.execute(f"GRANT ALL ON *.* TO '{user}'@'%'")
            cur.execute(f"CREATE TABLE {mysql_sql.qi(SOURCE_DB)}.`Item list` (id INT PRIMARY KEY, "
                        "`näme` VARCHAR(20)) CHARACTER SET utf8mb4")
            cur.executemany(f"INSERT INTO {mysql_sql.qi(SOURCE_DB)}.`Item list` VALUES (%s, %s)", ROWS)
        conn.close()
        yield server
    finally:
        server.stop()


def _mysql_cipher(url) -> str:
    conn = mysql_sql.connect(mysql_sql.resolve_localhost(url))
    try:
        return mysql_sql.query(conn, "SHOW SESSION STATUS LIKE 'Ssl_cipher'")[0][1]
    finally:
        conn.close()


def test_mysql_verify_identity_with_the_ca_dumps_over_tls(tls_mariadb):
    url = parse(_url("mysql", tls_mariadb, **{"ssl-mode": "VERIFY_IDENTITY", "ssl-ca": str(tls_mariadb.certs.ca)}))
    assert _mysql_cipher(url)
    with engines.dumper(url) as dumper:
        assert dumper.tables() == ["Item list"]
        assert len(list(dumper.rows("Item list"))) == len(ROWS)


@pytest.mark.parametrize("params", [
    {},  # PREFERRED: TLS is negotiated, as the server requires
    {"ssl_mode": "required"},
    {"sslmode": "REQUIRED"},
    {"ssl-ca": "CA"},  # a CA alone means VERIFY_CA
    {"ssl_mode": "verify_ca", "ssl_ca": "CA"},
])
def test_mysql_ssl_modes_and_spellings_reach_a_server_that_requires_tls(tls_mariadb, params):
    params = {k: str(tls_mariadb.certs.ca) if v == "CA" else v for k, v in params.items()}
    assert _mysql_cipher(parse(_url("mysql", tls_mariadb, **params)))


def test_mysql_verify_identity_without_the_right_ca_fails_in_one_line(tls_mariadb):
    for params in ({"ssl-mode": "VERIFY_IDENTITY"},  # the system's CAs do not know ours
                   {"ssl-mode": "VERIFY_CA", "ssl-ca": str(tls_mariadb.certs.other_ca)}):
        url = parse(_url("mysql", tls_mariadb, **params))
        exc = _failure(mysql_sql.connect, url)
        assert str(exc).startswith(f"cannot connect to {url.redacted}: TLS failed: ")
        assert "certificate" in str(exc) and "ssl-ca=" in exc.hint
        assert "?" not in url.redacted and "VERIFY" not in str(exc)


def test_mysql_missing_ca_file_is_one_line(tls_mariadb, tmp_path):
    url = parse(_url("mysql", tls_mariadb, **{"ssl-ca": str(tmp_path / "nowhere.pem")}))
    exc = _failure(mysql_sql.connect, url)
    assert f"cannot use ssl-ca {tmp_path / 'nowhere.pem'}: No such file or directory" in str(exc)


def test_mysql_disabled_against_a_tls_only_server_says_so(tls_mariadb):
    exc = _failure(mysql_sql.connect, parse(_url("mysql", tls_mariadb, **{"ssl-mode": "DISABLED"})))
    assert "Access denied" in str(exc) or "insecure transport" in str(exc)  # MariaDB's, MySQL's
    assert "remove ssl-mode=DISABLED" in exc.hint


def test_mysql_client_certificate(tls_mariadb):
    certs = tls_mariadb.certs
    base = {"ssl-mode": "VERIFY_IDENTITY", "ssl-ca": str(certs.ca)}
    assert _mysql_cipher(parse(_url("mysql", tls_mariadb, user=tlsservers.CERT_USER, **base,
                                    **{"ssl-cert": str(certs.client_cert), "ssl-key": str(certs.client_key)})))
    exc = _failure(mysql_sql.connect, parse(_url("mysql", tls_mariadb, user=tlsservers.CERT_USER, **base)))
    assert "Access denied" in str(exc)


def test_mysql_required_against_a_server_without_tls_fails_in_one_line(mysql_server):
    host = "127.0.0.1" if mysql_server.socket else mysql_server.host
    port = 3306 if mysql_server.socket else mysql_server.port
    plain = parse(f"mysql://{quote(mysql_server.user)}:{quote(mysql_server.password)}@{host}:{port}/")
    conn = mysql_sql.connect(plain)
    have_ssl = mysql_sql.query(conn, "SHOW VARIABLES LIKE 'have_ssl'")[0][1]
    conn.close()
    need(have_ssl != "YES", f"a test MySQL/MariaDB server without TLS at {host}:{port}")
    url = parse(f"mysql://{quote(mysql_server.user)}:{quote(mysql_server.password)}@{host}:{port}/"
                "?ssl-mode=REQUIRED")
    exc = _failure(mysql_sql.connect, url)
    assert str(exc).startswith(f"cannot connect to {url.redacted}: ") and "2026" in str(exc)
    assert "does not offer TLS" in exc.hint


def test_mysql_unix_socket_and_localhost_as_php_reads_it(tls_mariadb, monkeypatch):
    """Over the socket no TLS is needed (the server counts it as secure); ``localhost`` on the
    default port is the socket, found like the mysql client finds it ($MYSQL_UNIX_PORT first)."""
    for text in (_url("mysql", tls_mariadb, host="localhost") + f"?unix_socket={tls_mariadb.socket}",
                 _url("mysql", tls_mariadb, host="localhost") + f"?socket={tls_mariadb.socket}"
                 + "&ssl-mode=REQUIRED"):
        url = parse(text)
        assert url.socket == tls_mariadb.socket
        assert _mysql_cipher(url) == ""
    monkeypatch.setenv("MYSQL_UNIX_PORT", tls_mariadb.socket)
    url = parse(f"mysql://synco:{quote(PASSWORD, safe='')}@localhost/{quote(SOURCE_DB, safe='')}")
    assert engines.resolve(url).socket == tls_mariadb.socket
    with engines.dumper(url) as dumper:
        assert dumper.tables() == ["Item list"]


def _yaml(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@pytest.mark.parametrize("ca_key, verify", [("1009", ""), ("'PDO::MYSQL_ATTR_SSL_CA'", "\n" + " " * 18 + "1014: false")])
def test_mysql_tls_and_password_from_flow_settings(tls_mariadb, tmp_path, ca_key, verify):
    certs = tls_mariadb.certs
    settings = f"""\
        Neos:
          Flow:
            persistence:
              backendOptions:
                driver: pdo_mysql
                host: 127.0.0.1
                port: {tls_mariadb.port}
                dbname: {_yaml(SOURCE_DB)}
                user: synco
                password: {_yaml(PASSWORD)}
                driverOptions:
                  {ca_key}: {_yaml(str(certs.ca))}{verify}
        """
    project = source(neos_tree(tmp_path, {"Configuration/Settings.yaml": settings}))
    url = project.database
    assert url.password == PASSWORD and url.database == SOURCE_DB
    assert url.option("ssl-mode") == ("REQUIRED" if verify else "VERIFY_IDENTITY")
    assert _mysql_cipher(url)


def test_mysql_tls_and_password_from_symfony_env(tls_mariadb, tmp_path):
    """DATABASE_URL in double quotes as Symfony's Dotenv reads them (\\" and \\$ escapes), the
    password percent-encoded, the CA as Doctrine's driverOptions[PDO::MYSQL_ATTR_SSL_CA]."""
    text = (_url("mysql", tls_mariadb) + f"?serverVersion=mariadb-10.11.0&driverOptions[1009]={tls_mariadb.certs.ca}")
    env_line = 'DATABASE_URL="' + text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"\n'
    project = source(symfony_tree(tmp_path, {".env": "APP_ENV=prod\n" + env_line}))
    url = project.database
    assert url.password == PASSWORD and url.database == SOURCE_DB
    assert url.option("ssl-mode") == "VERIFY_IDENTITY"
    assert _mysql_cipher(url)


def test_download_from_tls_mariadb_into_a_database_with_an_unusual_name(tls_mariadb, mysql_db):
    src = parse(_url("mysql", tls_mariadb, **{"ssl-mode": "VERIFY_IDENTITY", "ssl-ca": str(tls_mariadb.certs.ca)}))
    dst = mysql_db("dst x-'é")
    conn = mysql_connect(dst, dst.database)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE mine (id INT PRIMARY KEY)")  # kept as the __synco_prev database
    conn.close()
    with Source(["--listen", "127.0.0.1:0"], db_url=_url("mysql", tls_mariadb, **dict(src.params))) as served:
        result = synco("download", served.token, "--yes", db_url=url_text(dst))
        assert result.code == 0, result.stderr + served.stderr
    over_socket = parse(f"mysql://root@localhost/{quote(SOURCE_DB, safe='')}?socket={tls_mariadb.socket}")
    assert mysql_fingerprint(dst) == mysql_fingerprint(over_socket)
    conn = mysql_connect(dst)
    with conn.cursor() as cur:
        cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
                    (dst.database + "__synco_prev",))
        assert cur.fetchall() == (("mine",),)
    conn.close()


# --- PostgreSQL ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_pg():
    server = tlsservers.start_postgresql()
    try:
        admin = parse(f"postgresql://postgres@localhost:{server.port}/?socket={server.socket}")
        pg_execute(admin, f"CREATE ROLE synco LOGIN SUPERUSER PASSWORD {pg_sql.ql(PASSWORD)}",
                   f"CREATE ROLE {tlsservers.CERT_USER} LOGIN SUPERUSER",
                   f"CREATE DATABASE {pg_sql.qi(SOURCE_DB)} TEMPLATE template0 ENCODING 'UTF8'",
                   database="postgres")
        pg_execute(admin, 'CREATE TABLE "Item list" (id int PRIMARY KEY, "näme" text)',
                   "INSERT INTO \"Item list\" VALUES " + ", ".join(f"({i}, {pg_sql.ql(v)})" for i, v in ROWS),
                   database=SOURCE_DB)
        server.admin = admin
        yield server
    finally:
        server.stop()


def _pg_ssl(url) -> bool:
    with pg_sql.connect(url) as conn:
        return pg_sql.query(conn, "SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()")[0][0]


@pytest.fixture
def no_home_certs(tmp_path, monkeypatch):
    """libpq looks for ~/.postgresql/root.crt and reads PGSSL* variables: neither may interfere."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY"):
        monkeypatch.delenv(name, raising=False)


def test_pg_verify_full_with_the_ca_dumps_over_tls(tls_pg, no_home_certs):
    url = parse(_url("postgresql", tls_pg, sslmode="verify-full", sslrootcert=str(tls_pg.certs.ca)))
    assert _pg_ssl(url)
    with engines.dumper(url) as dumper:
        (table,) = dumper.tables()
        assert len(list(dumper.rows(table))) == len(ROWS)


def test_pg_default_prefer_reaches_a_tls_only_server(tls_pg, no_home_certs):
    assert _pg_ssl(parse(_url("postgresql", tls_pg)))
    assert _pg_ssl(parse(_url("postgresql", tls_pg, sslmode="require")))


def test_pg_verify_full_without_the_ca_fails_in_one_line(tls_pg, no_home_certs):
    url = parse(_url("postgresql", tls_pg, sslmode="verify-full"))
    exc = _failure(pg_sql.connect, url)
    assert str(exc).startswith(f"cannot connect to {url.redacted}: ") and "root certificate file" in str(exc)
    assert "sslrootcert=" in exc.hint
    exc = _failure(pg_sql.connect, parse(_url("postgresql", tls_pg, sslmode="verify-ca",
                                              sslrootcert=str(tls_pg.certs.other_ca))))
    assert "certificate verify failed" in str(exc) and "sslrootcert=" in exc.hint


def test_pg_disable_against_a_tls_only_server_says_so(tls_pg, no_home_certs):
    exc = _failure(pg_sql.connect, parse(_url("postgresql", tls_pg, sslmode="disable")))
    assert "no encryption" in str(exc) and "sslmode=require" in exc.hint


def test_pg_require_against_a_server_without_tls_fails_in_one_line(pg_server, no_home_certs):
    host = "127.0.0.1" if pg_server.socket else pg_server.host
    port = 5432 if pg_server.socket else pg_server.port
    plain = parse(f"postgresql://{quote(pg_server.user)}@{host}:{port}/postgres")
    with pg_sql.connect(plain) as conn:
        have_ssl = pg_sql.query(conn, "SHOW ssl")[0][0]
    need(have_ssl != "on", f"a test PostgreSQL server without TLS at {host}:{port}")
    url = parse(f"postgresql://{quote(pg_server.user)}@{host}:{port}/postgres?sslmode=require")
    exc = _failure(pg_sql.connect, url)
    assert "server does not support SSL" in str(exc) and "does not offer TLS" in exc.hint


def test_pg_client_certificate(tls_pg, no_home_certs, tmp_path):
    key = tmp_path / "client-key.pem"  # libpq wants the key readable by its owner only
    shutil.copy(tls_pg.certs.client_key, key)
    key.chmod(0o600)
    url = parse(_url("postgresql", tls_pg, user=tlsservers.CERT_USER, sslmode="verify-full",
                     sslrootcert=str(tls_pg.certs.ca), sslcert=str(tls_pg.certs.client_cert), sslkey=str(key)))
    assert _pg_ssl(url)
    key.chmod(0o644)
    exc = _failure(pg_sql.connect, url)
    assert "private key file" in str(exc) and "chmod 600" in exc.hint


def test_pg_socket_in_the_url(tls_pg):
    """``socket=DIR`` or libpq's ``host=DIR``: the socket of that folder and the URL's port."""
    who, name = f"synco:{quote(PASSWORD, safe='')}", quote(SOURCE_DB, safe="")
    for text in (f"postgresql://{who}@localhost:{tls_pg.port}/{name}?socket={tls_pg.socket}",
                 f"postgresql://{who}@:{tls_pg.port}/{name}?host={tls_pg.socket}"):
        url = parse(text)
        assert url.socket == tls_pg.socket
        assert _pg_ssl(url) is False


def test_pg_tls_and_password_from_flow_settings_and_symfony_env(tls_pg, no_home_certs, tmp_path):
    settings = f"""\
        Neos:
          Flow:
            persistence:
              backendOptions:
                driver: pdo_pgsql
                host: 127.0.0.1
                port: {tls_pg.port}
                dbname: {_yaml(SOURCE_DB)}
                user: synco
                password: {_yaml(PASSWORD)}
                sslmode: verify-full
                sslrootcert: {_yaml(str(tls_pg.certs.ca))}
        """
    flow = source(neos_tree(tmp_path / "flow", {"Configuration/Settings.yaml": settings})).database
    assert flow.password == PASSWORD and flow.option("sslmode") == "verify-full"
    assert _pg_ssl(flow)
    text = _url("pdo-pgsql", tls_pg, sslmode="verify-full", sslrootcert=str(tls_pg.certs.ca))
    env = "DATABASE_URL='" + text + "'\n"  # single quotes: literal
    symfony = source(symfony_tree(tmp_path / "symfony", {".env": env})).database
    assert symfony.password == PASSWORD and symfony.database == SOURCE_DB
    assert _pg_ssl(symfony)


def test_download_from_tls_postgresql_into_a_database_with_an_unusual_name(tls_pg, pg_db, no_home_certs):
    src = _url("postgresql", tls_pg, sslmode="verify-full", sslrootcert=str(tls_pg.certs.ca))
    dst = pg_db("Dst x-'É")
    pg_execute(dst, "CREATE TABLE mine (id int PRIMARY KEY)")  # kept as the __synco_prev database
    with Source(["--listen", "127.0.0.1:0"], db_url=src) as served:
        result = synco("download", served.token, "--yes", db_url=url_text(dst))
        assert result.code == 0, result.stderr + served.stderr
    assert pg_fingerprint(dst) == pg_fingerprint(tls_pg.admin.with_database(SOURCE_DB))
    assert pg_execute(dst, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
                      database=dst.database + "__synco_prev") == [("mine",)]


def test_tls_failure_through_synco_source_is_one_line(tls_mariadb):
    """What a user sees: synco-source's one error line with the hint, no traceback, no password."""
    run = subprocess.run([sys.executable, "-m", "synco_source.cli", "serve", "--listen", "127.0.0.1:0"],
                         env=env_with(SYNCO_DB_URL=_url("mysql", tls_mariadb, **{"ssl-mode": "VERIFY_IDENTITY"})),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr and PASSWORD not in run.stderr, run.stderr
    errors = [line for line in run.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "TLS failed" in errors[0], run.stderr
