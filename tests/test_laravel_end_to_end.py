"""Laravel round trips with no settings on the command line: synco-source serve in the
application's folder on the "server" (.env read without PHP), synco download in the developer's
checkout, against the real MariaDB and PostgreSQL; storage/app travels in the session,
storage/app/public comes from the site's web server, the smart exclusions stay behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dbfixtures import mysql_connect, mysql_fingerprint
from e2e import tree
from fw_trees import write
from laravel_trees import CONFIG_10, CONFIG_11, env, laravel_tree
from pgfixtures import pg_execute, pg_fingerprint
from sourceproc import Source, StaticServer, synco

LEFT_OUT = ("sessions", "cache", "failed_jobs", "telescope_entries")


def laravel_tables(url) -> None:
    conn = mysql_connect(url, url.database)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(100))")
        cur.execute("INSERT INTO users SELECT seq, CONCAT('u', seq, '@example.com') FROM seq_1_to_300")
        for table in LEFT_OUT:
            cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, payload TEXT)")
            cur.execute(f"INSERT INTO {table} SELECT seq, REPEAT('x', 50) FROM seq_1_to_40")
    conn.close()


def mysql_counts(url) -> dict[str, int]:
    conn = mysql_connect(url, url.database)
    with conn.cursor() as cur:
        counts = {}
        for table in ("users",) + LEFT_OUT:
            cur.execute(f"SELECT COUNT(*) FROM {table}")
            counts[table] = cur.fetchone()[0]
    conn.close()
    return counts


def storage(server):
    """storage/app with a private file and a dot file, and the public disk linked from public/."""
    write(server / "storage" / "app", {"invoices/2024/1.pdf": "%PDF private", ".gitignore": "*\n!public/\n",
                                       "public/.gitignore": "*\n"})
    (server / "storage/app/public/avatars").mkdir(parents=True)
    (server / "storage/app/public/avatars/a b.jpg").write_bytes(os.urandom(120_000))
    (server / "public" / "storage").symlink_to(server / "storage" / "app" / "public")


def test_mariadb_round_trip_with_storage_and_exclusions(mysql_db, tmp_path, monkeypatch):
    src = mysql_db("lsrc")
    laravel_tables(src)
    dst = mysql_db("ldst", create=False)
    server = tmp_path / "server"
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no PHP: the steps after the import are printed
    monkeypatch.delenv("PHP", raising=False)
    with StaticServer(server / "public") as web:
        laravel_tree(server, {
            ".env": env(APP_URL=web.url.rstrip("/"), DB_CONNECTION="mysql", DB_DATABASE="not_this_one"),
            ".env.production": env(APP_URL=web.url.rstrip("/"), DB_CONNECTION="mariadb", DB_HOST="127.0.0.1",
                                   DB_DATABASE=src.database, DB_USERNAME="root", DB_PASSWORD="null"),
        }, config=CONFIG_11)
        storage(server)
        laptop = laravel_tree(tmp_path / "laptop", {".env": env(
            APP_ENV="local", DB_CONNECTION="mysql", DB_DATABASE=dst.database, DB_USERNAME="root")})
        monkeypatch.setenv("APP_ENV", "production")  # the server's real environment chooses .env.production
        with Source(["--listen", "127.0.0.1:0"], cwd=server) as source:
            monkeypatch.delenv("APP_ENV")
            result = synco("download", source.token, "--yes", cwd=laptop)
            assert result.code == 0, result.stderr + source.stderr
        assert mysql_counts(dst) == {"users": 300, "sessions": 0, "cache": 0, "failed_jobs": 0,
                                     "telescope_entries": 0}
        assert "rows left out" in source.stderr and "telescope_entries" in source.stderr
        app = laptop / "storage" / "app"
        assert tree(app / "invoices") == tree(server / "storage/app/invoices")
        assert (app / ".gitignore").read_text() == "*\n!public/\n"
        assert tree(app / "public") == tree(server / "storage/app/public")
        # the avatar came from the site's web server; the dot file through the session
        assert web.paths == ["/storage/avatars/a%20b.jpg"], web.paths
        assert "storage-public: 1 of 2 files fetched from" in source.stderr
        assert "now run: php artisan optimize:clear" in result.stderr
        assert "now run: php artisan storage:link" in result.stderr

        monkeypatch.setenv("APP_ENV", "production")
        with Source(["--listen", "127.0.0.1:0", "--all"], cwd=server) as source:
            monkeypatch.delenv("APP_ENV")
            again = synco("download", source.token, "--yes", cwd=laptop)
            assert again.code == 0, again.stderr + source.stderr
    assert mysql_counts(dst)["sessions"] == 40
    assert mysql_fingerprint(dst) == mysql_fingerprint(src)


def test_postgresql_round_trip_from_database_url(pg_db, tmp_path):
    src = pg_db("lsrc")
    pg_execute(src, "CREATE TABLE users (id int PRIMARY KEY, email text)",
               "INSERT INTO users SELECT g, 'u' || g || '@example.com' FROM generate_series(1, 500) g",
               "CREATE TABLE app_jobs (id int PRIMARY KEY, payload text)",
               "INSERT INTO app_jobs SELECT g, 'job' FROM generate_series(1, 30) g")
    dst = pg_db("ldst", create=False)
    user = src.user
    server = laravel_tree(tmp_path / "server", {
        ".env": env(DB_CONNECTION="pgsql", DATABASE_URL=f"postgresql://{user}@127.0.0.1:{src.port}/{src.database}",
                    DB_PREFIX="app_"),
        "storage/app/exports/x.csv": "a,b\n"}, config=CONFIG_10.replace(
            "'prefix' => '',\n                'prefix_indexes' => true,\n                'search_path'",
            "'prefix' => env('DB_PREFIX', ''),\n                'prefix_indexes' => true,\n"
            "                'search_path'"))
    laptop = laravel_tree(tmp_path / "laptop", {".env": env(
        DB_CONNECTION="pgsql", DB_HOST="127.0.0.1", DB_PORT=str(dst.port), DB_DATABASE=dst.database,
        DB_USERNAME=user)}, config=CONFIG_10)
    with Source(["--listen", "127.0.0.1:0"], cwd=server) as source:
        result = synco("download", source.token, "--yes", cwd=laptop)
        assert result.code == 0, result.stderr + source.stderr
    assert pg_execute(dst, "SELECT count(*) FROM users") == [(500,)]
    assert pg_execute(dst, "SELECT count(*) FROM app_jobs") == [(0,)]  # the prefixed jobs table
    assert (laptop / "storage/app/exports/x.csv").read_text() == "a,b\n"
    with Source(["--listen", "127.0.0.1:0", "--all"], cwd=server) as source:
        again = synco("download", source.token, "--yes", cwd=laptop)
        assert again.code == 0, again.stderr
    assert pg_fingerprint(dst) == pg_fingerprint(src)


def test_detect_commands_list_exclusions_and_steps_without_the_password(tmp_path):
    server = laravel_tree(tmp_path / "server", {".env": env(
        DB_CONNECTION="mysql", DB_HOST="db.internal", DB_DATABASE="shop", DB_USERNAME="app",
        DB_PASSWORD='"s3cret pw"')})
    no_php = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "synco_source.cli", "detect"], cwd=server,
                         capture_output=True, text=True, env=no_php)
    assert out.returncode == 0, out.stderr
    assert "framework: laravel (production)" in out.stdout
    assert "database: mysql database shop on db.internal:3306 as user app" in out.stdout
    assert ("rows left out: sessions, cache, cache_locks, jobs, job_batches, failed_jobs, telescope_*, "
            "pulse_*") in out.stdout
    assert "s3cret" not in out.stdout + out.stderr
    local = synco("detect", cwd=server)
    assert local.code == 0 and "php artisan optimize:clear" in local.stdout and "s3cret" not in local.stdout
    (server / ".env").write_text(env(DB_CONNECTION="sqlsrv"))
    bad = subprocess.run([sys.executable, "-m", "synco_source.cli", "detect"], cwd=server,
                         capture_output=True, text=True, env=no_php)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "connections.sqlsrv.driver is sqlsrv: SQL Server is not supported" in bad.stderr
    assert len([line for line in bad.stderr.splitlines() if "error" in line]) == 1, bad.stderr


def test_sqlite_default_round_trip(tmp_path):
    """Laravel 11's default: database/database.sqlite on both ends, found with no .env at all on
    the server; the session rows stay behind. Runs once the SQLite engine is there."""
    import sqlite3

    pytest.importorskip("synco_source.engines.sqlite")
    server = laravel_tree(tmp_path / "server", {"database/.gitignore": "*.sqlite*\n"}, config=CONFIG_11)
    laptop = laravel_tree(tmp_path / "laptop", {".env": env(APP_ENV="local"),
                                                "database/.gitignore": "*.sqlite*\n"}, config=None)
    conn = sqlite3.connect(server / "database" / "database.sqlite")
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL)")
    conn.execute("CREATE TABLE sessions (id TEXT PRIMARY KEY, payload TEXT)")
    conn.executemany("INSERT INTO users (email) VALUES (?)", [(f"u{i}@example.com",) for i in range(250)])
    conn.execute("INSERT INTO sessions VALUES ('s1', 'x')")
    conn.commit()
    conn.close()
    with Source(["--listen", "127.0.0.1:0"], cwd=server) as source:
        result = synco("download", source.token, "--yes", cwd=laptop)
        assert result.code == 0, result.stderr + source.stderr
    copy = sqlite3.connect(laptop / "database" / "database.sqlite")
    assert copy.execute("SELECT count(*), max(email) FROM users").fetchone() == (250, "u9@example.com")
    assert copy.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
    copy.close()
