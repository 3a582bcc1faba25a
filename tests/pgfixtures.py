"""PostgreSQL fixtures for the engine tests: a real server, fresh databases, fingerprints.

The server is found through ``SYNCO_TEST_PG_URL`` (e.g. ``postgresql://postgres@127.0.0.1/``),
else the default socket directory /var/run/postgresql, else 127.0.0.1:5432, as user postgres.
Without a server the tests skip, except when the environment variable ``CI`` is set: then they
fail. ``pg_dump`` and ``psql`` are used here, by the tests only, as the oracle and the loader of
sample data; the engine itself never runs them.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

from dbfixtures import copy_database, dump_chunks, testdata_dir
from synco_source.dburl import DatabaseUrl, parse

__all__ = ["pg_server", "pg_db", "pagila_pg", "chinook_pg", "pg_connect", "pg_execute", "psql_load",
           "pg_schema_dump", "pg_fingerprint", "pg_dump_chunks", "pg_copy_database", "pg_databases"]

DEFAULT_SOCKET_DIR = "/var/run/postgresql"
SESSION = "-c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=3 -c bytea_output=hex -c TimeZone=UTC"


def _server_url() -> DatabaseUrl:
    text = os.environ.get("SYNCO_TEST_PG_URL")
    if text:
        return parse(text)
    if os.path.exists(DEFAULT_SOCKET_DIR):
        return parse(f"postgresql://postgres@localhost/?socket={DEFAULT_SOCKET_DIR}")
    return parse("postgresql://postgres@127.0.0.1:5432/")


def _host(url: DatabaseUrl) -> str:
    return url.socket or url.host


def pg_connect(url: DatabaseUrl, database: str | None = None) -> psycopg.Connection:
    return psycopg.connect(host=_host(url), port=url.port, user=url.user, password=url.password or None,
                           dbname=database or url.database or "postgres", autocommit=True,
                           connect_timeout=5, options=SESSION)


def pg_execute(url: DatabaseUrl, *statements: str, database: str | None = None) -> list[tuple]:
    """Run statements in ``url``'s database; the rows of the last one."""
    with pg_connect(url, database) as conn:
        rows: list[tuple] = []
        for stmt in statements:
            cur = conn.execute(stmt)
            rows = cur.fetchall() if cur.description else []
        return rows


def pg_databases(url: DatabaseUrl) -> set[str]:
    return {r[0] for r in pg_execute(url, "SELECT datname FROM pg_database", database="postgres")}


@pytest.fixture(scope="session")
def pg_server() -> DatabaseUrl:
    """URL of the test server (no database)."""
    url = _server_url()
    try:
        pg_connect(url, "postgres").close()
    except psycopg.Error as exc:
        message = f"no PostgreSQL server for the tests at {url.redacted}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return url


def _drop_all(server: DatabaseUrl, name: str) -> None:
    with pg_connect(server, "postgres") as conn:
        for suffix in ("", "__synco_new", "__synco_prev"):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}{suffix}" WITH (FORCE)')


def _make(server: DatabaseUrl, label: str, create: bool) -> DatabaseUrl:
    name = f"synco_t_{label}_{uuid.uuid4().hex[:10]}"
    if create:
        pg_execute(server, f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\'', database="postgres")
    return server.with_database(name)


@pytest.fixture
def pg_db(pg_server):
    """Factory: ``pg_db(label="t", create=True)`` → URL of a fresh database, dropped afterwards
    together with its ``__synco_new`` and ``__synco_prev`` siblings."""
    made: list[str] = []

    def make(label: str = "t", create: bool = True) -> DatabaseUrl:
        url = _make(pg_server, label, create)
        made.append(url.database)
        return url

    yield make
    for name in made:
        _drop_all(pg_server, name)


def _client(tool: str, url: DatabaseUrl) -> list[str]:
    exe = shutil.which(tool)
    if not exe:
        pytest.fail(f"the {tool} command-line client is needed by the PostgreSQL tests")
    return [exe, "-h", _host(url), "-p", str(url.port), "-U", url.user]


_DB_LINES = re.compile(rb"^(?:DROP DATABASE|CREATE DATABASE|\\c )[^\n]*\n", re.M)


def psql_load(url: DatabaseUrl, source: Path | bytes) -> None:
    """Run a SQL script with psql in ``url``'s database, stopping at the first error; lines that
    drop, create or connect to a database (Chinook's) are removed."""
    data = source.read_bytes() if isinstance(source, Path) else source
    data = _DB_LINES.sub(b"", data)
    run = subprocess.run(_client("psql", url) + ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url.database],
                         input=data, capture_output=True, timeout=600,
                         env={**os.environ, "PGPASSWORD": url.password})
    if run.returncode:
        raise AssertionError(f"loading SQL into {url.database} failed: {run.stderr.decode(errors='replace')}")


def _load_sample(server: DatabaseUrl, label: str, files: list[Path]) -> DatabaseUrl:
    url = _make(server, label, True)
    try:
        for path in files:
            psql_load(url, path)
    except BaseException:
        _drop_all(server, url.database)
        raise
    return url


@pytest.fixture(scope="session")
def pagila_pg(pg_server):
    """Pagila, loaded once per session; tests must not modify it."""
    base = testdata_dir() / "pagila-postgres"
    url = _load_sample(pg_server, "pagila", [base / "pagila-schema.sql", base / "pagila-data.sql"])
    yield url
    _drop_all(pg_server, url.database)


@pytest.fixture(scope="session")
def chinook_pg(pg_server):
    url = _load_sample(pg_server, "chinook", [testdata_dir() / "chinook" / "postgres" / "Chinook_PostgreSql.sql"])
    yield url
    _drop_all(pg_server, url.database)


# pg_dump prints the public schema when its owner or ACL differ from a fresh database's (Pagila
# makes postgres its owner); owners and grants are not copied, so that entry is dropped.
_PUBLIC_SCHEMA = re.compile(r"--\n-- Name: public; Type: SCHEMA;[^\n]*\n--\n\n-- \*not\* creating schema, "
                            r"since initdb creates it\n\n\n")


def pg_schema_dump(url: DatabaseUrl) -> str:
    """``pg_dump --schema-only --no-owner --no-acl``, normalised: the ``\\restrict`` key lines
    (random per run) and the public schema's ownership-only entry are removed."""
    run = subprocess.run(_client("pg_dump", url) + ["--schema-only", "--no-owner", "--no-acl", url.database],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "PGPASSWORD": url.password})
    if run.returncode:
        raise AssertionError(f"pg_dump of {url.database} failed: {run.stderr}")
    lines = [ln for ln in run.stdout.splitlines(keepends=True) if not ln.startswith(("\\restrict", "\\unrestrict"))]
    return _PUBLIC_SCHEMA.sub("", "".join(lines))


def _relations(conn) -> list[tuple[str, str]]:
    return conn.execute("""
        SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'm', 'S') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
        ORDER BY 1""").fetchall()


def pg_fingerprint(url: DatabaseUrl) -> dict:
    """The normalised schema dump, and per table (partitions and populated materialized views too)
    the row count and a SHA-256 of the sorted row texts (every column, generated ones too); per
    sequence its value; per materialized view whether it is populated."""
    out: dict = {"schema": pg_schema_dump(url), "rows": {}, "sequences": {}, "populated": {}}
    with pg_connect(url) as conn:
        for name, kind in _relations(conn):
            if kind == "S":
                out["sequences"][name] = conn.execute(f"SELECT last_value, is_called FROM {name}").fetchone()
                continue
            if kind == "m":
                populated = conn.execute("SELECT relispopulated FROM pg_class WHERE oid = %s::regclass",
                                         (name,)).fetchone()[0]
                out["populated"][name] = populated
                if not populated:
                    continue
            rows = sorted(r[0].encode("utf-8", "surrogatepass")
                          for r in conn.execute(f"SELECT t::text FROM ONLY {name} t").fetchall())
            digest = hashlib.sha256(b"\n".join(rows)).hexdigest()
            out["rows"][name] = (len(rows), digest)
    return out


# the engine-generic helpers, under the names the PostgreSQL tests use
pg_dump_chunks = dump_chunks
pg_copy_database = copy_database
