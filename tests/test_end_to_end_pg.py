"""The round trip through the real programs with PostgreSQL on both ends."""

from __future__ import annotations

from dbfixtures import url_text
from pgfixtures import pg_databases, pg_execute, pg_fingerprint, psql_load
from sourceproc import Source, StaticServer, synco
from synco_source.format import SessionCrypto, Token

MARKER = "PG-PLAINTEXT-MARKER-51c2"


def url_of(db) -> str:
    return url_text(db)


def test_pagila_round_trip_and_restore(pagila_pg, pg_db, pg_server):
    dst = pg_db("dst")
    pg_execute(dst, "CREATE TABLE mine (id int PRIMARY KEY)", "INSERT INTO mine VALUES (1)")
    before = pg_fingerprint(dst)
    with Source(["--listen", "127.0.0.1:0"], db_url=url_of(pagila_pg)) as source:
        result = synco("download", source.token, "--yes", db_url=url_of(dst))
        assert result.code == 0, result.stderr
    assert pg_fingerprint(dst) == pg_fingerprint(pagila_pg)
    assert f"{dst.database}__synco_prev" in pg_databases(pg_server)
    back = synco("restore", "--yes", db_url=url_of(dst))
    assert back.code == 0, back.stderr
    assert pg_fingerprint(dst) == before


def test_chinook_sql_output_loads_with_psql(chinook_pg, pg_db, tmp_path):
    dump = tmp_path / "chinook.sql"
    with Source(["--listen", "127.0.0.1:0"], db_url=url_of(chinook_pg)) as source:
        result = synco("download", source.token, "--output", str(dump))
        assert result.code == 0, result.stderr
    fresh = pg_db("fresh")
    psql_load(fresh, dump)
    assert pg_fingerprint(fresh) == pg_fingerprint(chinook_pg)


def test_no_plaintext_published_and_tampering_changes_nothing(pg_db, pg_server, tmp_path):
    src = pg_db("src")
    pg_execute(src, "CREATE TABLE secret (id int PRIMARY KEY, v text)",
               f"INSERT INTO secret SELECT g, '{MARKER} ' || g FROM generate_series(1, 30000) g")
    dst = pg_db("dst")
    pg_execute(dst, "CREATE TABLE mine (id int PRIMARY KEY)")
    before = pg_fingerprint(dst)
    publish = tmp_path / "public"
    publish.mkdir()
    with StaticServer(publish) as web:
        with Source(["--publish-dir", str(publish), "--base-url", web.url], db_url=url_of(src)) as source:
            source.wait_ready()
            published = [p for p in publish.rglob("*") if p.is_file()]
            assert not any(MARKER.encode() in p.read_bytes() for p in published)
            token = Token.decode(source.token)
            sc = SessionCrypto(token.key, token.session_id)
            folder = publish / token.session_id.hex()
            meta = sc.open_meta((folder / "meta").read_bytes())
            (entry,) = meta["sets"]
            manifest = sc.open_manifest(entry["manifest"], (folder / "o" / entry["manifest"]).read_bytes(), "db")
            chunk = folder / "o" / manifest["tables"][0]["chunks"][-1]["id"]
            chunk.write_bytes(chunk.read_bytes()[:-1] + bytes([chunk.read_bytes()[-1] ^ 1]))
            result = synco("download", source.token, "--yes", db_url=url_of(dst))
    assert result.code == 6, result.stderr
    assert "Traceback" not in result.stderr
    assert pg_fingerprint(dst) == before
    assert f"{dst.database}__synco_new" not in pg_databases(pg_server)


def test_a_session_that_is_going_away_does_not_make_the_target_in_use(chinook_pg, pg_db):
    """describe_target() connects to the target and closes; such a closing session lingers in
    pg_stat_activity for a moment and must not make begin() refuse the target as in use. A
    session that stays is refused."""
    import threading

    from dbfixtures import dump_chunks
    from pgfixtures import pg_connect
    from synco_source import engines
    from synco_source.errors import DatabaseError

    schema, _ = dump_chunks(chinook_pg)
    dst = pg_db("dst")
    pg_execute(dst, "CREATE TABLE mine (id int)")
    loader = engines.loader(dst)
    assert loader.describe_target() == 1
    other = pg_connect(dst)
    threading.Timer(0.5, other.close).start()
    loader.begin(schema)
    loader.abort()
    stays = pg_connect(dst)
    try:
        loader = engines.loader(dst)
        try:
            loader.begin(schema)
        except DatabaseError as exc:
            assert "in use by 1 other session" in str(exc)
        else:
            raise AssertionError("a connected session must make the target in use")
        finally:
            loader.abort()
    finally:
        stays.close()
