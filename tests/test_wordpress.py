"""WordPress detection (synco_frameworks.wordpress): wp-config.php read without PHP, every route a
value can take, the bad cases, multisite, the uploads set and its public URL, the steps after an
import. Trees are written into tmp_path."""

from __future__ import annotations

import pytest

from fw_trees import error, local, source, write
from synco_frameworks import wordpress
from synco_frameworks.detect import describe

CONFIG = """\
    <?php
    /** The name of the database for WordPress */
    define( 'DB_NAME', 'wp_shop' );
    define('DB_USER', "shop\\x41");   // double quotes, with an escape
    define (  'DB_PASSWORD' , 'it\\'s s3cret' ) ;
    define( 'DB_HOST', 'db.internal:3307' );
    define( 'DB_CHARSET', 'utf8mb4' );
    define( 'DB_COLLATE', '' );
    # define('DB_NAME', 'commented_out');
    /* define('DB_HOST', 'also_commented'); */
    $table_prefix = 'shop_';
    define( 'WP_DEBUG', false );
    if ( ! defined( 'ABSPATH' ) ) {
        define( 'ABSPATH', __DIR__ . '/' );
    }
    require_once ABSPATH . 'wp-settings.php';
    """


def wp_tree(root, config: str = CONFIG, uploads: bool = True):
    files = {"wp-config.php": config, "wp-settings.php": "<?php\n", "index.php": "<?php\n"}
    if uploads:
        files["wp-content/uploads/2024/05/photo.jpg"] = "jpeg"
    return write(root, files)


def config_with(**constants) -> str:
    lines = "".join(f"    define( '{key}', {value} );\n" for key, value in constants.items())
    base = {"DB_NAME": "'wp'", "DB_USER": "'u'", "DB_PASSWORD": "'p'", "DB_HOST": "'localhost'"}
    base_lines = "".join(f"    define( '{key}', {value} );\n" for key, value in base.items()
                         if key not in constants)
    return "    <?php\n" + base_lines + lines + "    $table_prefix = 'wp_';\n"


def test_wp_config_constants_read_without_php(tmp_path):
    project = source(wp_tree(tmp_path))
    db = project.database
    assert project.framework == "wordpress"
    assert (db.engine, db.database, db.user, db.password, db.host, db.port, db.socket) == (
        "mysql", "wp_shop", "shopA", "it's s3cret", "db.internal", 3307, "")
    assert dict(db.params) == {"charset": "utf8mb4"}
    assert "table prefix shop_" in project.notes
    assert project.skip_table_data == ["shop_actionscheduler_logs", "shop_woocommerce_sessions"]
    assert project.file_sets == {"uploads": tmp_path.resolve() / "wp-content" / "uploads"}
    assert project.is_public("uploads") and "uploads" in project.file_selectors
    assert "s3cret" not in "\n".join(describe(project) + project.notes)


def test_wp_config_one_level_up(tmp_path):
    write(tmp_path, {"wp-config.php": CONFIG})
    site = write(tmp_path / "site", {"wp-settings.php": "<?php\n"})
    assert wordpress.FRAMEWORK.matches(site) == "../wp-config.php"
    assert source(site).database.database == "wp_shop"
    # not when the folder above is another WordPress
    write(tmp_path, {"wp-settings.php": "<?php\n"})
    assert wordpress.FRAMEWORK.matches(site) is None
    # nor for a folder without WordPress in it
    assert wordpress.FRAMEWORK.matches(write(tmp_path / "other", {"x": ""})) is None


@pytest.mark.parametrize("host, expected", [
    ("'localhost'", ("localhost", 3306, "")),
    ("'127.0.0.1:3307'", ("127.0.0.1", 3307, "")),
    ("'localhost:/run/mysqld/mysqld.sock'", ("localhost", 3306, "/run/mysqld/mysqld.sock")),
    ("':/tmp/my.sock'", ("localhost", 3306, "/tmp/my.sock")),
    ("'db:3310:/tmp/x.sock'", ("db", 3310, "/tmp/x.sock")),
    ("'[::1]:3308'", ("::1", 3308, "")),
])
def test_db_host_as_mysqli_reads_it(tmp_path, host, expected):
    db = source(wp_tree(tmp_path, config_with(DB_HOST=host))).database
    assert (db.host, db.port, db.socket) == expected


def test_getenv_and_env_fallbacks_use_the_real_environment_when_set(tmp_path):
    config = config_with(DB_NAME="getenv('WP_DB') ?: 'fallback_db'",
                         DB_PASSWORD="$_ENV['WP_PASS'] ?? 'default-pass'",
                         DB_USER="getenv( \"WP_USER\" ) ? getenv('WP_USER') : 'anon'",
                         DB_HOST="$_SERVER['WP_HOST'] ?? '127.0.0.1'")
    wp_tree(tmp_path, config)
    unset = source(tmp_path)
    assert (unset.database.database, unset.database.password, unset.database.user,
            unset.database.host) == ("fallback_db", "default-pass", "anon", "127.0.0.1")
    assert "DB_NAME: getenv('WP_DB') is not set" in unset.notes
    env = {"WP_DB": "real_db", "WP_PASS": "real-pass", "WP_USER": "real", "WP_HOST": "10.0.0.9"}
    real = source(tmp_path, env)
    assert (real.database.database, real.database.password, real.database.user,
            real.database.host) == ("real_db", "real-pass", "real", "10.0.0.9")
    assert "DB_NAME: getenv('WP_DB') from the environment" in real.notes
    assert not [n for n in real.notes + unset.notes if "pass" in n.lower() and "-pass" in n]


def test_const_concatenation_and_earlier_constants(tmp_path):
    config = ("    <?php\n    const DB_NAME = 'wp' . '_' . 'shop';\n"
              "    define('DB_USER', 'u'); define('DB_PASSWORD', ''); define('DB_HOST', 'localhost');\n"
              "    define('WP_HOME', 'https://shop.example');\n"
              "    define('WP_SITEURL', WP_HOME . '/wp');\n"
              "    define('WP_CONTENT_DIR', dirname(__FILE__) . '/content');\n"
              "    $table_prefix  = \"wp_\";\n")
    write(tmp_path, {"content/uploads/a.txt": "a"})
    project = source(wp_tree(tmp_path, config, uploads=False))
    assert project.database.database == "wp_shop" and project.base_url == "https://shop.example"
    assert project.file_sets["uploads"] == tmp_path.resolve() / "content" / "uploads"


@pytest.mark.parametrize("constants, start", [
    ({"DB_NAME": None}, "wp-config.php: DB_NAME is not defined"),
    ({"DB_PASSWORD": "trim(file_get_contents('/etc/wp-pass'))"},
     "wp-config.php, line 4: DB_PASSWORD is computed by code synco does not run "
     "(trim ( file_get_contents"),
    ({"DB_HOST": '"$host:3306"'}, "wp-config.php, line 5: DB_HOST is computed by code"),
    ({"DB_HOST": "'db:port'"}, "wp-config.php: DB_HOST 'db:port': 'port' is not a port number"),
    ({"DB_NAME": "''"}, "wp-config.php: DB_NAME is empty"),
])
def test_bad_wp_config_one_clear_line(tmp_path, constants, start):
    keys = {"DB_NAME": "'wp'", "DB_USER": "'u'", "DB_PASSWORD": "'p'", "DB_HOST": "'localhost'",
            **constants}
    text = "<?php\n" + "".join(f"define( '{k}', {v} );\n" for k, v in keys.items() if v is not None)
    write(tmp_path, {"wp-config.php": text + "$table_prefix = 'wp_';\n"})
    exc = error(source, tmp_path)
    assert str(exc).startswith(start), str(exc)
    assert "database.url in synco.yaml, or pass --db-url" in exc.hint or "port" in str(exc)


def test_a_constant_set_twice_or_in_an_included_file(tmp_path):
    write(tmp_path, {"wp-config.php": "<?php\nif (getenv('STAGE')) { define('DB_NAME', 'a'); }\n"
                                      "else { define('DB_NAME', 'b'); }\n$table_prefix = 'wp_';\n"})
    exc = error(source, tmp_path)
    assert str(exc).startswith("wp-config.php: DB_NAME is set 2 times (lines 2, 3)")
    write(tmp_path, {"wp-config.php": "<?php\nrequire __DIR__ . '/db-config.php';\n"
                                      "$table_prefix = 'wp_';\nrequire_once ABSPATH . 'wp-settings.php';\n"})
    exc = error(source, tmp_path)
    assert "DB_NAME is not defined (it may be in __DIR__ . '/db-config.php'" in str(exc)
    # --db-url (need_db False here) needs none of them
    assert source(tmp_path, need_db=False).database is None


def test_bad_table_prefix(tmp_path):
    wp_tree(tmp_path, config_with().replace("'wp_'", "'wp-x'"))
    assert str(error(source, tmp_path)).startswith("wp-config.php: $table_prefix 'wp-x' is not")
    wp_tree(tmp_path, config_with().replace("$table_prefix = 'wp_';", ""))
    assert str(error(source, tmp_path)).startswith("wp-config.php: $table_prefix is not defined")


def test_multisite_tables_and_exclusions(tmp_path):
    wp_tree(tmp_path, config_with(MULTISITE="true", SUBDOMAIN_INSTALL="false"))
    project = source(tmp_path)
    assert project.context == "multisite, subfolders"
    assert "wp_[0-9]*_actionscheduler_logs" in project.skip_table_data
    assert project.skips_table("wp_3_woocommerce_sessions") and project.skips_table("wp_actionscheduler_logs")
    assert not project.skips_table("wp_3_posts") and not project.skips_table("wp_options")
    assert source(tmp_path, all_data=True).skip_table_data == []
    single = source(wp_tree(tmp_path, config_with()))
    assert not single.skips_table("wp_3_woocommerce_sessions") and single.context == ""


def test_computed_optional_constant_is_a_note(tmp_path):
    wp_tree(tmp_path, config_with(WP_HOME="'https://' . $_SERVER['HTTP_HOST']"))
    project = source(tmp_path)
    assert project.base_url is None
    assert any("WP_HOME is computed by code" in n and "$_SERVER['HTTP_HOST'] is not set here" in n
               and "(not used)" in n for n in project.notes), project.notes


def test_uploads_selector_marks_served_files_public(tmp_path):
    root = wp_tree(tmp_path, config_with())
    write(root, {"wp-content/uploads/.htaccess": "deny", "wp-content/uploads/shell.php": "<?php",
                 "wp-content/uploads/sites/2/2024/a b.png": "png"})
    selector = source(root).file_selectors["uploads"]
    queries = []

    def query(sql):
        queries.append(sql)
        return [("siteurl", "https://shop.example/")]
    chosen = selector(query, {"wp_options", "wp_posts"})
    assert chosen.public_url == "https://shop.example/wp-content/uploads/"
    assert chosen.public == {"2024/05/photo.jpg": "2024/05/photo.jpg",
                             "sites/2/2024/a b.png": "sites/2/2024/a%20b.png"}
    assert chosen.include is None and "wp_options" in queries[0]
    upload_path = selector(lambda sql: [("siteurl", "https://a.example"),
                                        ("upload_url_path", "https://cdn.example/up")], {"wp_options"})
    assert upload_path.public_url == "https://cdn.example/up/"
    nothing = selector(query, {"wp_posts"})
    assert nothing.public == {} and "every file travels encrypted" in nothing.notes[0]


def test_local_steps_url_rewrite_then_wp_cache_flush(tmp_path):
    root = wp_tree(tmp_path, config_with(WP_HOME="'http://shop.test'"))
    project = local(root)
    steps = project.steps()
    assert [s.action for s in steps] == [wordpress.URL_STEP]
    assert steps[0].params == {"prefix": "wp_", "local_url": "http://shop.test", "multisite": ""}
    assert "no WP-CLI" in " ".join(project.notes)
    bin_dir = write(tmp_path / "bin", {"wp": "#!/bin/sh\n"})
    (bin_dir / "wp").chmod(0o755)
    with_wp = local(root, {"PATH": str(bin_dir)})
    assert [s.line for s in with_wp.steps()][1] == f"{bin_dir}/wp cache flush"
    lines = describe(with_wp)
    assert "after import, runs: rewrite the site's URL to http://shop.test in every table, " \
           "serialized and JSON values included" in lines
    assert source(root).steps() == []
