"""A WordPress round trip with no settings on the command line: synco-source serve in the site's
folder (wp-config.php read without PHP), synco download in the developer's copy; the uploads come
from the site's own web server, the smart exclusions stay behind, and the site's URL is rewritten
to the local one in serialized values too."""

from __future__ import annotations

import os

from dbfixtures import mysql_connect
from e2e import tree
from fw_trees import write
from sourceproc import Source, StaticServer, synco
from test_wordpress_searchreplace import WIDGET, ser, swap


def wp_config(db: str, extra: str = "") -> str:
    return ("<?php\n"
            f"define( 'DB_NAME', '{db}' );\ndefine( 'DB_USER', 'root' );\n"
            "define( 'DB_PASSWORD', getenv('WP_TEST_UNSET_PW') ?: '' );\n"
            "define( 'DB_HOST', '127.0.0.1:3306' );\ndefine( 'DB_CHARSET', 'utf8mb4' );\n"
            f"$table_prefix = 'wp_';\n{extra}"
            "if ( ! defined( 'ABSPATH' ) ) { define( 'ABSPATH', __DIR__ . '/' ); }\n"
            "require_once ABSPATH . 'wp-settings.php';\n")


def wordpress_site(url, site_url: str) -> None:
    conn = mysql_connect(url, url.database)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE wp_options (option_id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, "
                    "option_name VARCHAR(191) NOT NULL UNIQUE, option_value LONGTEXT NOT NULL) "
                    "DEFAULT CHARSET=utf8mb4")
        cur.executemany("INSERT INTO wp_options (option_name, option_value) VALUES (%s, %s)", [
            ("siteurl", site_url), ("home", site_url),
            ("widget_text", ser(swap(WIDGET, "https://shop.example.com", site_url))),
            ("_transient_feed", ser({"url": site_url + "/feed"})),
            ("_site_transient_update_core", "a:0:{}"), ("my_transient_setting", "kept")])
        cur.execute("CREATE TABLE wp_postmeta (meta_id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                    "meta_value LONGTEXT) DEFAULT CHARSET=utf8mb4")
        cur.execute("INSERT INTO wp_postmeta (meta_value) VALUES (%s)",
                    (ser({"file": f"{site_url}/wp-content/uploads/2024/05/ü.jpg", "sizes": [1, 2]}),))
        for table in ("wp_actionscheduler_logs", "wp_woocommerce_sessions"):
            cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, payload TEXT)")
            cur.execute(f"INSERT INTO {table} SELECT seq, 'x' FROM seq_1_to_50")
    conn.close()


def query(url, sql):
    conn = mysql_connect(url, url.database)
    with conn.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetchall()
    conn.close()
    return rows


def test_wordpress_round_trip_uploads_from_the_site_and_url_rewritten(shop, mysql_db, tmp_path):
    server = write(tmp_path / "server", {"wp-config.php": wp_config(shop.database),
                                         "wp-settings.php": "<?php\n", ".htaccess": "# rules\n"})
    uploads = server / "wp-content" / "uploads"
    write(uploads, {"2024/05/ü.jpg": "", ".htaccess": "deny from all\n", "sites/2/a b.txt": "b"})
    (uploads / "2024" / "05" / "ü.jpg").write_bytes(os.urandom(70_000))
    dst = mysql_db("dst", create=False)
    here = write(tmp_path / "laptop", {
        "wp-config.php": wp_config(dst.database, "define( 'WP_HOME', 'http://laptop.test' );\n"),
        "wp-settings.php": "<?php\n"})
    with StaticServer(server) as web:
        site = web.url.rstrip("/")
        wordpress_site(shop, site)
        with Source(["--listen", "127.0.0.1:0"], cwd=server) as source:
            result = synco("download", source.token, "--yes", cwd=here)
            assert result.code == 0, result.stderr + source.stderr
        fetched = sorted(web.paths)
    assert tree(here / "wp-content" / "uploads") == tree(uploads)
    assert fetched == ["/wp-content/uploads/2024/05/%C3%BC.jpg", "/wp-content/uploads/sites/2/a%20b.txt"]
    assert "uploads: 2 files fetched from" in source.stderr
    assert query(dst, "SELECT COUNT(*) FROM wp_actionscheduler_logs")[0][0] == 0
    assert query(dst, "SELECT COUNT(*) FROM wp_woocommerce_sessions")[0][0] == 0
    options = dict(query(dst, "SELECT option_name, option_value FROM wp_options"))
    assert options["home"] == "http://laptop.test" and options["siteurl"] == "http://laptop.test"
    assert options["widget_text"] == ser(swap(WIDGET, "https://shop.example.com", "http://laptop.test"))
    # transients are left out (smart exclusion: cached values); a name that only contains the word stays
    assert "_transient_feed" not in options and "_site_transient_update_core" not in options
    assert options["my_transient_setting"] == "kept"
    assert "the transients in wp_options" in source.stderr
    assert query(dst, "SELECT meta_value FROM wp_postmeta")[0][0] == ser(
        {"file": "http://laptop.test/wp-content/uploads/2024/05/ü.jpg", "sizes": [1, 2]})
    assert f"site URL {site} → http://laptop.test" in result.stderr
    # the rewrite is part of the import: verify and a re-pull of the same data see no local edit
    check = synco("verify", cwd=here)
    assert check.code == 0 and "as the last import left them" in check.stderr, check.stderr
    with StaticServer(server) as web:
        wordpress_site_url(shop, site)  # the same server state as the first time
        with Source(["--listen", "127.0.0.1:0"], cwd=server) as source:
            same = synco("download", source.token, "--yes", cwd=here)
            assert same.code == 0, same.stderr
    assert "nothing to import" in same.stderr and "already http://laptop.test" in same.stderr

    # --all keeps the rows; --no-after leaves the server's URL; without WP_HOME the local
    # database's home before the import is the local URL
    write(here, {"wp-config.php": wp_config(dst.database)})
    conn = mysql_connect(dst, dst.database)
    with conn.cursor() as cur:
        cur.execute("UPDATE wp_options SET option_value = 'http://before.test' WHERE option_name = 'home'")
    conn.close()
    with StaticServer(server) as web:
        wordpress_site_url(shop, web.url.rstrip("/"))
        with Source(["--listen", "127.0.0.1:0", "--all"], cwd=server) as source:
            again = synco("download", source.token, "--yes", cwd=here)
            assert again.code == 0, again.stderr
    assert query(dst, "SELECT COUNT(*) FROM wp_actionscheduler_logs")[0][0] == 50
    assert query(dst, "SELECT COUNT(*) FROM wp_options WHERE option_name LIKE '%transient%'")[0][0] == 3
    assert dict(query(dst, "SELECT option_name, option_value FROM wp_options"))["home"] == "http://before.test"
    with StaticServer(server) as web:
        wordpress_site_url(shop, web.url.rstrip("/"))
        with Source(["--listen", "127.0.0.1:0"], cwd=server) as source:
            skipped = synco("download", source.token, "--yes", "--no-after", cwd=here)
            assert skipped.code == 0, skipped.stderr
        assert dict(query(dst, "SELECT option_name, option_value FROM wp_options"))["home"] == \
            web.url.rstrip("/")


def wordpress_site_url(url, site_url: str) -> None:
    conn = mysql_connect(url, url.database)
    with conn.cursor() as cur:
        cur.execute("UPDATE wp_options SET option_value = %s WHERE option_name IN ('home', 'siteurl')",
                    (site_url,))
    conn.close()
