"""A round trip per framework with no settings on the command line: synco-source serve in the
application's folder on the "server", synco download in the developer's checkout."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from dbfixtures import mysql_connect, mysql_fingerprint
from e2e import make_files, tree
from fw_trees import backend, neos_tree, symfony_tree
from sourceproc import Source, StaticServer, synco

NEOS_SKIPPED = ("neos_neos_eventlog_domain_model_event", "neos_media_domain_model_thumbnail")


def neos_tables(url) -> None:
    conn = mysql_connect(url, url.database)
    with conn.cursor() as cur:
        for table in NEOS_SKIPPED:
            cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, payload TEXT)")
            cur.execute(f"INSERT INTO {table} SELECT seq, REPEAT('x', 100) FROM seq_1_to_500")
    conn.close()


def row_counts(url) -> dict[str, int]:
    conn = mysql_connect(url, url.database)
    with conn.cursor() as cur:
        counts = {}
        for table in NEOS_SKIPPED + ("customer",):
            cur.execute(f"SELECT COUNT(*) FROM {table}")
            counts[table] = cur.fetchone()[0]
    conn.close()
    return counts


def without_php() -> dict:
    return {"PATH": "/usr/bin:/bin", "PHP": ""}


def test_symfony_round_trip_from_env_files(shop, mysql_db, tmp_path):
    server = symfony_tree(tmp_path / "server", {
        ".env": "APP_ENV=dev\nDATABASE_URL=mysql://root@127.0.0.1:3306/nothing_here\n",
        ".env.prod": f"DATABASE_URL=\"mysql://root@127.0.0.1:3306/{shop.database}?serverVersion=10.11\"\n",
        ".env.local": "APP_ENV=prod\n"})
    make_files(server / "public" / "uploads")
    dst = mysql_db("dst", create=False)
    laptop = symfony_tree(tmp_path / "laptop", {
        ".env": "APP_ENV=dev\nDATABASE_URL=mysql://root@127.0.0.1:3306/app\n",
        ".env.local": f"DATABASE_URL=mysql://root@127.0.0.1:3306/{dst.database}\n"})
    with Source(["--listen", "127.0.0.1:0"], cwd=server) as source:
        result = synco("download", source.token, "--yes", cwd=laptop)
        assert result.code == 0, result.stderr + source.stderr
    assert mysql_fingerprint(dst) == mysql_fingerprint(shop)
    assert tree(laptop / "public" / "uploads") == tree(server / "public" / "uploads")
    assert "local symfony project" in result.stderr


def test_neos_round_trip_with_smart_exclusions(shop, mysql_db, tmp_path, monkeypatch):
    neos_tables(shop)
    server = neos_tree(tmp_path / "server", {
        "Configuration/Settings.yaml": backend(driver="pdo_mysql", host="localhost", dbname="wrong"),
        "Configuration/Production/Settings.yaml": backend(
            host="127.0.0.1", port=3306, dbname=shop.database, user="root", password="''")})
    resources = server / "Data" / "Persistent" / "Resources"
    (resources / "1" / "2" / "3" / "4").mkdir(parents=True)
    (resources / "1" / "2" / "3" / "4" / ("1234" + "0" * 36)).write_bytes(os.urandom(50_000))
    dst = mysql_db("dst", create=False)
    laptop = neos_tree(tmp_path / "laptop", {
        "Configuration/Development/Settings.yaml": backend(
            driver="pdo_mysql", host="127.0.0.1", dbname=dst.database, user="root", password="''")})
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.delenv("PHP", raising=False)
    with Source(["--listen", "127.0.0.1:0"], cwd=server) as source:
        result = synco("download", source.token, "--yes", cwd=laptop)
        assert result.code == 0, result.stderr + source.stderr
    counts = row_counts(dst)
    assert counts == {NEOS_SKIPPED[0]: 0, NEOS_SKIPPED[1]: 0, "customer": 20000}
    assert "rows left out" in source.stderr and NEOS_SKIPPED[0] in source.stderr
    assert tree(laptop / "Data" / "Persistent" / "Resources") == tree(resources)
    assert "now run: env FLOW_CONTEXT=Development ./flow resource:publish" in result.stderr

    with Source(["--listen", "127.0.0.1:0", "--all"], cwd=server) as source:
        again = synco("download", source.token, "--yes", cwd=laptop)
        assert again.code == 0, again.stderr
    assert row_counts(dst)[NEOS_SKIPPED[0]] == 500
    assert mysql_fingerprint(dst) == mysql_fingerprint(shop)


def test_detect_commands_show_no_password(tmp_path):
    server = symfony_tree(tmp_path / "server", {
        ".env": "DATABASE_URL=mysql://app:s3cret-pw@db.internal:3306/shop\n"})
    out = subprocess.run([sys.executable, "-m", "synco_source.cli", "detect"], cwd=server,
                         capture_output=True, text=True, env={**without_php()})
    assert out.returncode == 0, out.stderr
    assert "framework: symfony" in out.stdout and "database shop on db.internal:3306" in out.stdout
    assert "s3cret" not in out.stdout + out.stderr
    local = synco("detect", cwd=server)
    assert local.code == 0 and "framework: symfony" in local.stdout and "s3cret" not in local.stdout


def add_resource(server, conn, ident: str, filename: str, content: bytes, *, published: bool,
                 thumbnail: bool = False) -> str:
    sha1 = hashlib.sha1(content).hexdigest()
    stored = server / "Data" / "Persistent" / "Resources" / sha1[0] / sha1[1] / sha1[2] / sha1[3]
    stored.mkdir(parents=True, exist_ok=True)
    (stored / sha1).write_bytes(content)
    if published:
        public = server / "Web" / "_Resources" / "Persistent" / sha1
        public.mkdir(parents=True)
        (public / filename).symlink_to(stored / sha1)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO neos_flow_resourcemanagement_persistentresource VALUES (%s, %s, %s, "
                    "'persistent')", (ident, sha1, filename))
        if thumbnail:
            cur.execute("INSERT INTO neos_media_domain_model_thumbnail (id, payload, resource) "
                        "VALUES (%s, 'thumb', %s)", (1000 + len(ident), ident))
    return f"{sha1[0]}/{sha1[1]}/{sha1[2]}/{sha1[3]}/{sha1}"


def test_neos_resources_listed_public_from_the_web_and_thumbnails_left_out(shop, mysql_db, tmp_path):
    neos_tables(shop)
    conn = mysql_connect(shop, shop.database)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE neos_flow_resourcemanagement_persistentresource ("
                    "persistence_object_identifier VARCHAR(40) PRIMARY KEY, sha1 CHAR(40), "
                    "filename VARCHAR(255), collectionname VARCHAR(255))")
        cur.execute(f"ALTER TABLE {NEOS_SKIPPED[1]} ADD resource VARCHAR(40) NULL")
    server = neos_tree(tmp_path / "server", {})  # with a stored file no row lists: left out
    with StaticServer(server / "Web") as web:
        (server / "Configuration" / "Settings.yaml").write_text(
            backend(driver="pdo_mysql", host="127.0.0.1", dbname=shop.database, user="root",
                    password="''") + f"    http:\n      baseUri: '{web.url}'\n")
        photo = add_resource(server, conn, "r-photo", "photo one.jpg", os.urandom(200_000),
                             published=True)
        secret = add_resource(server, conn, "r-secret", "contract.pdf", os.urandom(100_000),
                              published=False)
        thumb = add_resource(server, conn, "r-thumb", "thumb.png", os.urandom(30_000),
                             published=True, thumbnail=True)
        conn.close()
        dst = mysql_db("dst", create=False)
        laptop = neos_tree(tmp_path / "laptop", {
            "Configuration/Development/Settings.yaml": backend(
                driver="pdo_mysql", host="127.0.0.1", dbname=dst.database, user="root",
                password="''")})
        (laptop / "Data" / "Persistent" / "Resources" / "a").rename(tmp_path / "laptop-unlisted")
        local = laptop / "Data" / "Persistent" / "Resources"
        remote = server / "Data" / "Persistent" / "Resources"
        with Source(["--listen", "127.0.0.1:0"], cwd=server) as source:
            result = synco("download", source.token, "--yes", cwd=laptop)
            assert result.code == 0, result.stderr + source.stderr
        assert sorted(tree(local)) == sorted([photo, secret])
        assert tree(local)[photo][0] == (remote / photo).read_bytes()
        assert [p for p in web.paths if "photo%20one.jpg" in p], "the public resource came from the web"
        assert "1 fetched from" in source.stderr and "1 used only by thumbnails left out" in source.stderr
        # the thumbnail's own resource row is left out with its file (no row without a file)
        assert resource_rows(dst) == ["r-photo", "r-secret"]
        with Source(["--listen", "127.0.0.1:0", "--all"], cwd=server) as source:
            again = synco("download", source.token, "--yes", cwd=laptop)
            assert again.code == 0, again.stderr
        assert sorted(tree(local)) == sorted([photo, secret, thumb])
        assert resource_rows(dst) == ["r-photo", "r-secret", "r-thumb"]


def resource_rows(url) -> list[str]:
    conn = mysql_connect(url, url.database)
    with conn.cursor() as cur:
        cur.execute("SELECT persistence_object_identifier FROM "
                    "neos_flow_resourcemanagement_persistentresource ORDER BY 1")
        rows = [r[0] for r in cur.fetchall()]
    conn.close()
    return rows


def test_neos_resources_published_to_an_s3_target_come_from_its_base_uri(shop, mysql_db, tmp_path):
    conn = mysql_connect(shop, shop.database)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE neos_flow_resourcemanagement_persistentresource ("
                    "persistence_object_identifier VARCHAR(40) PRIMARY KEY, sha1 CHAR(40), "
                    "filename VARCHAR(255), collectionname VARCHAR(255))")
    server = neos_tree(tmp_path / "server", {})
    bucket = tmp_path / "bucket"
    with StaticServer(bucket) as s3:
        (server / "Configuration" / "Settings.yaml").write_text(
            backend(driver="pdo_mysql", host="127.0.0.1", dbname=shop.database, user="root",
                    password="''")
            + "    resource:\n      collections:\n        persistent:\n          target: s3\n"
              "      targets:\n        s3:\n          target: 'Flownative\\Aws\\S3\\S3Target'\n"
              f"          targetOptions:\n            bucket: media\n            baseUri: '{s3.url}'\n")
        content = os.urandom(80_000)
        photo = add_resource(server, conn, "r-photo", "photo.jpg", content, published=False)
        sha1 = photo.rsplit("/", 1)[1]
        (bucket / sha1).mkdir(parents=True)
        (bucket / sha1 / "photo.jpg").write_bytes(content)
        conn.close()
        dst = mysql_db("dst", create=False)
        laptop = neos_tree(tmp_path / "laptop", {
            "Configuration/Development/Settings.yaml": backend(
                driver="pdo_mysql", host="127.0.0.1", dbname=dst.database, user="root",
                password="''")})
        with Source(["--listen", "127.0.0.1:0"], cwd=server) as source:
            result = synco("download", source.token, "--yes", cwd=laptop)
            assert result.code == 0, result.stderr + source.stderr
        local = laptop / "Data" / "Persistent" / "Resources"
        assert tree(local)[photo][0] == content
        assert f"/{sha1}/photo.jpg" in s3.paths


def test_neos_post_import_commands_run_with_php(shop, mysql_db, tmp_path, monkeypatch):
    """With a PHP interpreter, synco runs ./flow resource:publish and flow:cache:flush itself
    (here a shell stands in for PHP, and ./flow logs its calls; configuration:show fails, so the
    settings come from the YAML files)."""
    server = neos_tree(tmp_path / "server", {
        "Configuration/Settings.yaml": backend(driver="pdo_mysql", host="127.0.0.1",
                                               dbname=shop.database, user="root", password="''")})
    dst = mysql_db("dst", create=False)
    laptop = neos_tree(tmp_path / "laptop", {
        "Configuration/Development/Settings.yaml": backend(
            driver="pdo_mysql", host="127.0.0.1", dbname=dst.database, user="root", password="''")})
    (laptop / "flow").write_text('#!/bin/sh\necho "$FLOW_CONTEXT $*" >> flow.calls\n'
                                 '[ "$1" = configuration:show ] && exit 1\nexit 0\n')
    monkeypatch.setenv("PHP", "/bin/sh")
    with Source(["--listen", "127.0.0.1:0"], cwd=server) as source:
        result = synco("download", source.token, "--yes", cwd=laptop)
        assert result.code == 0, result.stderr + source.stderr
    calls = (laptop / "flow.calls").read_text().splitlines()
    assert calls[-2:] == ["Development resource:publish", "Development flow:cache:flush"], calls
    assert "running env FLOW_CONTEXT=Development /bin/sh ./flow resource:publish" in result.stderr


def test_serve_publishes_into_the_web_folder_by_default(shop, mysql_db, tmp_path):
    """In a framework whose web folder and URL are known, serve writes the session into the web
    folder (no port opened); --base-url alone names another URL for that folder; without a web
    folder --base-url is an error."""
    server = neos_tree(tmp_path / "server", {})
    with StaticServer(server / "Web") as web:
        (server / "Configuration" / "Settings.yaml").write_text(
            backend(driver="pdo_mysql", host="127.0.0.1", dbname=shop.database, user="root",
                    password="''") + f"    http:\n      baseUri: '{web.url}'\n")
        dst = mysql_db("dst", create=False)
        laptop = neos_tree(tmp_path / "laptop", {
            "Configuration/Development/Settings.yaml": backend(
                driver="pdo_mysql", host="127.0.0.1", dbname=dst.database, user="root",
                password="''")})
        with Source([], cwd=server) as source:
            assert token_url(source).startswith(web.url), source.stderr
            assert "publishing into the web folder" in source.stderr
            assert "listening" not in source.stderr
            source.wait_ready()
            sessions = [p for p in (server / "Web").iterdir() if len(p.name) == 32]
            assert len(sessions) == 1
            result = synco("download", source.token, "--yes", "--only", "db", cwd=laptop)
            assert result.code == 0, result.stderr + source.stderr
        assert not [p for p in (server / "Web").iterdir() if len(p.name) == 32], "removed at the end"
        assert mysql_fingerprint(dst) == mysql_fingerprint(shop)
        with Source(["--base-url", "https://cdn.example.com/"], cwd=server) as source:
            assert token_url(source).startswith("https://cdn.example.com/"), source.stderr
    run = subprocess.run([sys.executable, "-m", "synco_source.cli", "serve", "--no-db", "--files",
                          f"f={tmp_path}", "--base-url", "https://x.example/"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 2 and run.stdout == ""
    assert "synco-source: error: --base-url needs --publish-dir" in run.stderr


def token_url(source) -> str:
    from synco_source.format import Token

    return Token.decode(source.token).url


def test_a_localhost_url_of_the_web_folder_keeps_the_listener(shop, tmp_path):
    """Symfony's and Laravel's default URL is http://localhost: not one a laptop can reach."""
    server = symfony_tree(tmp_path / "server", {
        ".env": f"DATABASE_URL=mysql://root@127.0.0.1:3306/{shop.database}\nDEFAULT_URI=http://localhost\n"})
    with Source([], cwd=server) as source:
        assert "serving on a port instead" in source.stderr or "serving on port" in source.stderr
        assert not token_url(source).startswith("http://localhost/"), source.stderr
