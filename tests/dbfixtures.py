"""Database fixtures for the engine tests: a real server, fresh databases, fingerprints.

The MariaDB/MySQL server is found through ``SYNCO_TEST_MYSQL_URL`` (e.g.
``mysql://root@localhost/?socket=/run/mysqld/mysqld.sock``), else the default socket, else
127.0.0.1:3306 as root without a password. Without a server the tests skip, except when the
environment variable ``CI`` is set: then they fail.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from urllib.parse import quote

import pymysql
import pytest

from synco_source.chunking import cut_rows
from synco_source.dburl import DatabaseUrl, parse

__all__ = ["mysql_server", "mysql_db", "sakila_db", "chinook_db", "testdata_dir", "mysql_connect",
           "load_sql", "mysql_fingerprint", "dump_chunks", "copy_database", "mysql_client",
           "sql_script", "mysql_execute", "url_text"]

DEFAULT_SOCKET = "/run/mysqld/mysqld.sock"
_DEFINER = re.compile(r" DEFINER=\S+@\S+")


def testdata_dir() -> Path:
    """``tests/testdata``: the public sample databases (with their licences) the tests load."""
    return Path(__file__).resolve().parent / "testdata"


def _server_url() -> DatabaseUrl:
    text = os.environ.get("SYNCO_TEST_MYSQL_URL")
    if text:
        return parse(text)
    if os.path.exists(DEFAULT_SOCKET):
        return parse(f"mysql://root@localhost/?socket={DEFAULT_SOCKET}")
    return parse("mysql://root@127.0.0.1:3306/")


def url_text(url: DatabaseUrl, database: str | None = None, *, user: str | None = None,
             password: str | None = None) -> str:
    """A fixture's server or database URL written out for the programs (``--db-url``,
    ``SYNCO_DB_URL``): the server of ``SYNCO_TEST_*_URL``, TCP or socket, optionally another
    database, user or password. Tests use it instead of hard-coding 127.0.0.1 and a port."""
    user = url.user if user is None else user
    password = url.password if password is None else password
    who = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    name = quote(url.database if database is None else database, safe="")
    params = dict(url.params)
    if url.socket:
        params["socket"] = url.socket
        where = "localhost"
    else:
        where = f"[{url.host}]:{url.port}" if ":" in url.host else f"{url.host}:{url.port}"
    query = ("?" + "&".join(f"{k}={quote(v, safe='/')}" for k, v in params.items())) if params else ""
    return f"{url.engine}://{who}@{where}/{name}{query}"


def mysql_connect(url: DatabaseUrl, database: str | None = None, **kwargs) -> pymysql.Connection:
    where = {"unix_socket": url.socket} if url.socket else {"host": url.host, "port": url.port}
    return pymysql.connect(user=url.user, password=url.password, database=database or None,
                           charset="utf8mb4", autocommit=True, connect_timeout=5, **where, **kwargs)


def mysql_execute(url: DatabaseUrl, *statements: str, database: str | None = None) -> tuple:
    """Run statements in ``url``'s database (or ``database``; "" for none); the last one's rows."""
    conn = mysql_connect(url, url.database if database is None else database)
    try:
        with conn.cursor() as cur:
            for stmt in statements:
                cur.execute(stmt)
            return tuple(cur.fetchall())
    finally:
        conn.close()


@pytest.fixture(scope="session")
def mysql_server() -> DatabaseUrl:
    """URL of the test server (no database)."""
    url = _server_url()
    try:
        mysql_connect(url).close()
    except pymysql.err.Error as exc:
        message = f"no MySQL/MariaDB server for the tests at {url.redacted}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return url


def _drop_all(server: DatabaseUrl, name: str) -> None:
    conn = mysql_connect(server)
    try:
        with conn.cursor() as cur:
            for suffix in ("", "__synco_new", "__synco_prev"):
                cur.execute(f"DROP DATABASE IF EXISTS `{name}{suffix}`")
    finally:
        conn.close()


def _make(server: DatabaseUrl, label: str, create: bool) -> DatabaseUrl:
    name = f"synco_t_{label}_{uuid.uuid4().hex[:10]}"
    if create:
        conn = mysql_connect(server)
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
        conn.close()
    return server.with_database(name)


@pytest.fixture
def mysql_db(mysql_server):
    """Factory: ``mysql_db(label="t", create=True)`` → URL of a fresh database, dropped afterwards
    together with its ``__synco_new`` and ``__synco_prev`` siblings."""
    made: list[str] = []

    def make(label: str = "t", create: bool = True) -> DatabaseUrl:
        url = _make(mysql_server, label, create)
        made.append(url.database)
        return url

    yield make
    for name in made:
        _drop_all(mysql_server, name)


def mysql_client(url: DatabaseUrl) -> list[str]:
    """Command line of the ``mariadb``/``mysql`` client for ``url``."""
    exe = shutil.which("mariadb") or shutil.which("mysql")
    if not exe:
        pytest.fail("the mariadb (or mysql) command-line client is needed to load test data")
    cmd = [exe, "--no-defaults", "--default-character-set=utf8mb4", f"--user={url.user}"]
    if url.password:
        cmd.append(f"--password={url.password}")
    cmd += [f"--socket={url.socket}"] if url.socket else [f"--host={url.host}", f"--port={url.port}",
                                                           "--protocol=tcp"]
    return cmd + [url.database]


_DB_LINES = re.compile(rb"^\s*(?:(?:DROP|CREATE)\s+(?:DATABASE|SCHEMA)\b[^;]*|USE\s+[^;]*);\s*$",
                       re.I | re.M)
_MYSQL57_COMMENT = re.compile(rb"/\*!50705 ([^*]*)\*/")


def load_sql(url: DatabaseUrl, source: Path | bytes, *, unqualify: str = "") -> None:
    """Run a SQL script in ``url``'s database with the command-line client. Statements that
    create, drop or select a database are removed so the script lands in ``url.database``, and
    MySQL-5.7 version comments are unwrapped (MariaDB would skip them, e.g. Sakila's geometry).
    ``unqualify``: a database name whose ``name.`` qualifiers are removed (Sakila's views)."""
    data = source.read_bytes() if isinstance(source, Path) else source
    if unqualify:
        data = re.sub(rb"\b" + re.escape(unqualify.encode()) + rb"\.", b"", data)
    data = _MYSQL57_COMMENT.sub(rb"\1", _DB_LINES.sub(b"", data))
    run = subprocess.run(mysql_client(url), input=data, capture_output=True, timeout=600)
    if run.returncode:
        raise AssertionError(f"loading SQL into {url.database} failed: {run.stderr.decode(errors='replace')}")


def _load_sample(server: DatabaseUrl, label: str, files: list[Path]):
    url = _make(server, label, True)
    try:
        for path in files:
            load_sql(url, path, unqualify=label)
    except BaseException:
        _drop_all(server, url.database)
        raise
    return url


@pytest.fixture(scope="session")
def sakila_db(mysql_server):
    """Sakila (with its geometry column), loaded once per session; tests must not modify it."""
    base = testdata_dir() / "sakila-mysql"
    url = _load_sample(mysql_server, "sakila", [base / "sakila-schema.sql", base / "sakila-data.sql"])
    yield url
    _drop_all(mysql_server, url.database)


@pytest.fixture(scope="session")
def chinook_db(mysql_server):
    url = _load_sample(mysql_server, "chinook", [testdata_dir() / "chinook" / "mysql" / "Chinook_MySql.sql"])
    yield url
    _drop_all(mysql_server, url.database)


def _column_expr(name: str, dtype: str) -> str:
    col = "`" + name.replace("`", "``") + "`"
    if dtype in ("float", "double"):
        value = f"CAST({col} + 0e0 AS BINARY)"
    elif dtype == "bit":
        value = f"CAST({col} + 0 AS BINARY)"
    else:
        value = f"CAST({col} AS BINARY)"
    return f"IF({col} IS NULL, 'N', CONCAT('V', HEX({value})))"


def _query(conn, sql: str, args=None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def _table_fingerprint(conn, db: str, table: str) -> dict:
    cols = _query(conn, "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE "
                        "TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION", (db, table))
    exprs = ", ".join(_column_expr(n, t.lower()) for n, t in cols)
    qt = "`" + table.replace("`", "``") + "`"
    digest = hashlib.sha256()
    rows = sorted(r[0] for r in _query(conn, f"SELECT CONCAT_WS(',', {exprs}) FROM {qt}"))
    for row in rows:
        digest.update(row.encode() + b"\n")
    return {"create": _query(conn, f"SHOW CREATE TABLE {qt}")[0][1], "rows": len(rows),
            "sha256": digest.hexdigest()}


def mysql_fingerprint(url: DatabaseUrl) -> dict:
    """Everything that makes a database what it is, comparable across database names.

    Per table: SHOW CREATE TABLE as is (AUTO_INCREMENT counter included), the row count and a
    SHA-256 over the sorted rows with every column (generated and invisible ones too) in hex.
    Views, triggers and routines: their SHOW CREATE text with the DEFINER clause removed (the
    only normalisation; it names the user who loaded them), plus the sql_mode of triggers and
    routines. Also the database's default character set and collation.
    """
    conn = mysql_connect(url, url.database)
    try:
        db = url.database
        kinds = dict(_query(conn, "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                                  "WHERE TABLE_SCHEMA = %s", (db,)))
        out = {"database": _query(conn, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
                                        "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (db,)),
               "tables": {t: _table_fingerprint(conn, db, t) for t, k in sorted(kinds.items())
                          if k == "BASE TABLE"},
               "views": {t: _DEFINER.sub("", _query(conn, f"SHOW CREATE VIEW `{t}`")[0][1])
                         for t, k in sorted(kinds.items()) if k == "VIEW"}}
        out["triggers"] = {}
        for (name,) in _query(conn, "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS "
                                    "WHERE TRIGGER_SCHEMA = %s", (db,)):
            shown = _query(conn, f"SHOW CREATE TRIGGER `{name}`")[0]
            out["triggers"][name] = (shown[1], _DEFINER.sub("", shown[2]))
        orders = _query(conn, "SELECT TRIGGER_NAME, ACTION_ORDER FROM information_schema.TRIGGERS "
                              "WHERE TRIGGER_SCHEMA = %s", (db,))
        out["trigger_order"] = sorted(orders)
        out["routines"] = {}
        for name, rtype in _query(conn, "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES "
                                        "WHERE ROUTINE_SCHEMA = %s", (db,)):
            shown = _query(conn, f"SHOW CREATE {rtype} `{name}`")[0]
            out["routines"][f"{rtype} {name}"] = (shown[1], _DEFINER.sub("", shown[2]))
        return out
    finally:
        conn.close()


def dump_chunks(url: DatabaseUrl, **cut) -> tuple[dict, dict[str, list[bytes]]]:
    """Dump ``url`` (any engine): the schema and, per table, the list of chunk plaintexts."""
    from synco_source import engines

    with engines.dumper(url) as dumper:
        schema = dumper.schema()
        chunks = {t: [dumper.encode_chunk(t, rows) for rows in cut_rows(dumper.rows(t), **cut)]
                  for t in dumper.tables()}
    return schema, chunks


def copy_database(src: DatabaseUrl, dst: DatabaseUrl) -> dict[str, list[bytes]]:
    """Dump ``src`` and load it into ``dst`` through the engine's Loader (shadow and swap)."""
    from synco_source import engines

    schema, chunks = dump_chunks(src)
    loader = engines.loader(dst)
    try:
        loader.begin(schema)
        for table, table_chunks in chunks.items():
            for chunk in table_chunks:
                loader.load(table, chunk)
    except BaseException:
        loader.abort()
        raise
    loader.commit()
    return chunks


def sql_script(url: DatabaseUrl) -> bytes:
    """Dump ``url`` (any engine) through the engine's SqlWriter: the plain SQL script."""
    import io

    from synco_source import engines

    schema, chunks = dump_chunks(url)
    out = io.BytesIO()
    writer = engines.sql_writer(url.engine, out)
    writer.begin(schema)
    for table, table_chunks in chunks.items():
        for chunk in table_chunks:
            writer.load(table, chunk)
    writer.commit()
    return out.getvalue()
