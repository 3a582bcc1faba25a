"""The whole round trip through the real programs: synco-source in a subprocess, synco's CLI in
another, a real MariaDB on both ends."""

from __future__ import annotations


from dbfixtures import load_sql, mysql_fingerprint, url_text
from e2e import MARKER, databases, make_files, make_local, tree
from sourceproc import Source, StaticServer, synco


def test_listener_round_trip_of_sakila_with_files(sakila_db, mysql_db, tmp_path):
    src_files = make_files(tmp_path / "uploads")
    dst = mysql_db("dst", create=False)
    with Source(["--db-url", shop_url(sakila_db), "--files", f"uploads={src_files}",
                 "--listen", "127.0.0.1:0"], cwd=tmp_path) as source:
        result = synco("download", source.token, "--db-url", shop_url(dst),
                       "--files-dir", f"uploads={tmp_path / 'local'}", "--yes")
        assert result.code == 0, result.stderr
    assert mysql_fingerprint(dst) == mysql_fingerprint(sakila_db)
    assert tree(tmp_path / "local") == tree(src_files)
    assert "removed everything published" in source.stderr


def test_chinook_through_publish_dir_and_nothing_left(chinook_db, mysql_db, tmp_path):
    publish = tmp_path / "public"
    publish.mkdir()
    dst = mysql_db("dst", create=False)
    with StaticServer(publish) as web:
        with Source(["--publish-dir", str(publish), "--base-url", web.url],
                    db_url=shop_url(chinook_db)) as source:
            result = synco("download", source.token, "--yes",
                           db_url=shop_url(dst))
            assert result.code == 0, result.stderr
            assert list(publish.iterdir()), "the session folder is in the publish dir"
        assert source.proc.returncode is not None
    assert mysql_fingerprint(dst) == mysql_fingerprint(chinook_db)
    assert list(publish.iterdir()) == [], "everything published is removed on SIGTERM"


def test_published_bytes_hold_no_plaintext_and_no_key(shop, tmp_path):
    publish = tmp_path / "public"
    publish.mkdir()
    files = make_files(tmp_path / "files")
    with Source(["--publish-dir", str(publish), "--base-url", "http://example.invalid/",
                 "--files", f"f={files}"], db_url=shop_url(shop)) as source:
        source.wait_ready()
        from synco_source.format import Token
        token = Token.decode(source.token)
        published = b"".join(p.read_bytes() for p in publish.rglob("*") if p.is_file())
        assert len(published) > 5_000_000
        for secret in (MARKER.encode(), "é🐬".encode(), token.key, token.key.hex().encode(),
                       source.token.encode(), b"customer 1", b"INSERT INTO"):
            assert secret not in published


def shop_url(url) -> str:
    return url_text(url)


def test_second_download_fetches_only_changed_files(shop, mysql_db, tmp_path):
    files = make_files(tmp_path / "files")
    local = tmp_path / "local"
    dst = mysql_db("dst", create=False)
    with Source(["--files", f"f={files}", "--listen", "127.0.0.1:0"], db_url=shop_url(shop)) as one:
        first = synco("download", one.token, "--yes", "--files-dir", f"f={local}",
                      db_url=shop_url(dst))
        assert first.code == 0, first.stderr
    (files / "doc.txt").write_text("changed\n")
    with Source(["--files", f"f={files}", "--listen", "127.0.0.1:0", "--no-db"]) as two:
        second = synco("download", two.token, "--files-dir", f"f={local}")
        assert second.code == 0, second.stderr
    assert "files: 1 written, 3 already up to date" in second.stderr
    downloaded = int(second.stderr.split("done, ")[1].split(" bytes")[0].replace(",", ""))
    assert downloaded < 10_000  # the meta, the manifest and one small file, sealed
    assert tree(local) == tree(files)


def test_output_sql_loads_with_the_mariadb_client(shop, mysql_db, tmp_path):
    dump = tmp_path / "dump.sql"
    with Source(["--listen", "127.0.0.1:0"], db_url=shop_url(shop)) as source:
        result = synco("download", source.token, "--output", str(dump))
        assert result.code == 0, result.stderr
    fresh = mysql_db("fresh")
    load_sql(fresh, dump)
    assert mysql_fingerprint(fresh) == mysql_fingerprint(shop)


def test_asks_before_replacing_then_restore_puts_it_back(shop, mysql_db, mysql_server, tmp_path):
    dst = mysql_db("dst")
    make_local(dst)
    before = mysql_fingerprint(dst)
    with Source(["--listen", "127.0.0.1:0"], db_url=shop_url(shop)) as source:
        refused = synco("download", source.token, db_url=shop_url(dst))
        assert refused.code == 11 and "--yes" in refused.stderr
        assert mysql_fingerprint(dst) == before
        answered = synco("download", source.token, db_url=shop_url(dst), stdin="y\n")
        assert answered.code == 11, "no terminal: it does not read an answer from a pipe"
        done = synco("download", source.token, "--yes", db_url=shop_url(dst))
        assert done.code == 0, done.stderr
    assert mysql_fingerprint(dst) == mysql_fingerprint(shop)
    assert f"{dst.database}__synco_prev" in databases(mysql_server)
    back = synco("restore", "--yes", db_url=shop_url(dst))
    assert back.code == 0, back.stderr
    assert mysql_fingerprint(dst) == before


def test_only_files_leaves_the_database_alone(shop, tmp_path):
    files = make_files(tmp_path / "files")
    with Source(["--files", f"f={files}", "--listen", "127.0.0.1:0"], db_url=shop_url(shop)) as source:
        result = synco("download", source.token, "--only", "files", "--files-dir",
                       f"f={tmp_path / 'local'}")
        assert result.code == 0, result.stderr
    assert tree(tmp_path / "local") == tree(files)
    assert "tables" not in result.stderr, "no database was imported"


def test_download_says_it_removed_a_killed_runs_shadow(shop, mysql_db, tmp_path):
    """A shadow database left by a run killed with -9 is removed by the next download, which
    says so on its terminal (the engine's recovery notes reach the user)."""
    from dbfixtures import mysql_execute

    dst = mysql_db("dst")
    mysql_execute(dst, f"CREATE DATABASE `{dst.database}__synco_new`", database="")
    mysql_execute(dst, "CREATE TABLE half (id INT)", database=dst.database + "__synco_new")
    with Source(["--listen", "127.0.0.1:0"], db_url=shop_url(shop), cwd=tmp_path) as source:
        result = synco("download", source.token, "--yes", db_url=shop_url(dst))
    assert result.code == 0, result.stderr
    assert "__synco_new" in result.stderr and "removed" in result.stderr
    assert mysql_fingerprint(dst) == mysql_fingerprint(shop)
