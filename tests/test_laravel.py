"""Laravel detection (synco_frameworks.laravel): every configuration route, .env as phpdotenv
reads it, config/database.php defaults, the configuration cache, php artisan on request, file
sets, exclusions, post-import steps, and bad input. Trees come from tests/laravel_trees.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fw_trees import error, local, source, write
from laravel_trees import CONFIG_10, CONFIG_11, CONFIG_CACHE, env, laravel_tree
from synco_frameworks import laravel, phparray
from synco_frameworks.base import FileSelection
from synco_frameworks.detect import describe
from synco_frameworks.dotenv import parse_php

SH = "/bin/sh"  # runs the artisan stand-in the way PHP runs the real artisan


def db_tuple(project):
    db = project.database
    return (db.engine, db.host, db.port, db.user, db.password, db.database, db.socket)


MYSQL_ENV = env(DB_CONNECTION="mysql", DB_HOST="db.internal", DB_PORT="3307", DB_DATABASE="shop",
                DB_USERNAME="app", DB_PASSWORD="pw")

# (files, config/database.php, real environment, expected db_tuple, a note that must be there)
ROUTES = [
    pytest.param({".env": MYSQL_ENV}, CONFIG_10, {},
                 ("mysql", "db.internal", 3307, "app", "pw", "shop", ""),
                 "database: connection mysql of config/database.php (DB_CONNECTION in .env)", id="dotenv"),
    pytest.param({".env": MYSQL_ENV, ".env.staging": env(DB_CONNECTION="pgsql", DB_DATABASE="stage")},
                 CONFIG_10, {"APP_ENV": "staging"},
                 # .env.staging instead of .env, not over it: DB_HOST and the others are defaults
                 ("postgresql", "127.0.0.1", 5432, "forge", "", "stage", ""),
                 "environment: .env.staging (the real environment wins)", id="dotenv-app-env"),
    pytest.param({".env": MYSQL_ENV}, CONFIG_10, {"APP_ENV": "staging"},  # no .env.staging: .env
                 ("mysql", "db.internal", 3307, "app", "pw", "shop", ""), "environment: .env (", id="no-env-file"),
    pytest.param({".env": "APP_ENV=staging\n" + MYSQL_ENV, ".env.staging": env(DB_DATABASE="stage")},
                 CONFIG_10, {},  # APP_ENV from .env itself does not choose the file
                 ("mysql", "db.internal", 3307, "app", "pw", "shop", ""), "APP_ENV staging", id="app-env-in-file"),
    pytest.param({".env": MYSQL_ENV}, CONFIG_10, {"DB_DATABASE": "real", "DB_PASSWORD": "null"},
                 ("mysql", "db.internal", 3307, "app", "", "real", ""), "", id="real-env-wins"),
    pytest.param({".env": env(DB_CONNECTION="mysql", DATABASE_URL="mysql2://u:p%40ss@url-host:3310/"
                                                                  "url_db?unix_socket=/run/my.sock")},
                 CONFIG_10, {}, ("mysql", "url-host", 3310, "u", "p@ss", "url_db", "/run/my.sock"), "",
                 id="DATABASE_URL"),
    # ConfigurationUrlParser reads each part as JSON first: null leaves the connection's value, 1.50 is 1.5
    pytest.param({".env": env(DB_CONNECTION="mysql", DB_PASSWORD="kept", DATABASE_URL="mysql://null:null@h/1.50")},
                 CONFIG_10, {}, ("mysql", "h", 3306, "forge", "kept", "1.5", ""), "", id="url-native-types"),
    pytest.param({".env": env(DB_CONNECTION="mysql", DB_URL="mysql://u@ignored/x")}, CONFIG_10, {},
                 ("mysql", "127.0.0.1", 3306, "forge", "", "forge", ""), "", id="DB_URL-not-read-by-10"),
    pytest.param({".env": env(DB_CONNECTION="mariadb", DB_URL="postgresql://u:p@pg-host/pg_db?sslmode=require",
                              DB_DATABASE="overridden")},
                 # the URL's parts over the connection's: its port (DB_PORT's default) stays, as in Laravel
                 CONFIG_11, {}, ("postgresql", "pg-host", 3306, "u", "p", "pg_db", ""), "", id="DB_URL-11"),
    pytest.param({".env": env(DB_CONNECTION="mysql", DB_SOCKET="/var/run/mysqld/mysqld.sock",
                              DB_HOST="localhost", DB_DATABASE="sock")},
                 CONFIG_10, {}, ("mysql", "localhost", 3306, "forge", "", "sock", "/var/run/mysqld/mysqld.sock"),
                 "", id="DB_SOCKET"),
    pytest.param({".env": env(DB_CONNECTION="pgsql", DB_HOST="/run/postgresql", DB_DATABASE="p")},
                 CONFIG_10, {}, ("postgresql", "localhost", 5432, "forge", "", "p", "/run/postgresql"), "",
                 id="pgsql-socket-folder"),
    pytest.param({".env": "# only a comment\n"}, CONFIG_10, {},
                 ("mysql", "127.0.0.1", 3306, "forge", "", "forge", ""),
                 "database: connection mysql of config/database.php (DB_CONNECTION not set, so the default)",
                 id="defaults-10"),
    pytest.param({".env": env(DB_CONNECTION="mysql")},
                 CONFIG_10.replace("'forge'),\n                'username'", "'custom_default'),\n"
                                   "                'username'"), {},
                 ("mysql", "127.0.0.1", 3306, "forge", "", "custom_default", ""), "", id="project-default"),
    pytest.param({".env": env(DB_CONNECTION="mariadb", DB_DATABASE="m", DB_USERNAME="u")}, CONFIG_11, {},
                 ("mysql", "127.0.0.1", 3306, "u", "", "m", ""), "", id="mariadb"),
    pytest.param({".env": env(DB_CONNECTION="mysql", DB_DATABASE="m")}, None, {},
                 ("mysql", "127.0.0.1", 3306, "root", "", "m", ""),
                 "configuration read from Laravel's defaults without PHP", id="no-config-file"),
    pytest.param({".env": env(DB_CONNECTION="mysql"), "vendor/laravel/framework/config/database.php":
                  CONFIG_11.replace("'laravel'", "'vendor_default'").replace("'mariadb' => [", "'mysql' => [")},
                 None, {}, ("mysql", "127.0.0.1", 3306, "root", "", "vendor_default", ""),
                 "connection mysql of vendor/laravel/framework/config/database.php", id="vendor-config"),
    pytest.param({".env": env(DB_CONNECTION="pgsql"), "vendor/laravel/framework/config/database.php":
                  CONFIG_11.replace("'laravel'", "'vendor_pg'")},
                 CONFIG_10.replace("'pgsql' => [", "'pgsql_old' => ["), {},
                 ("postgresql", "127.0.0.1", 5432, "root", "", "vendor_pg", ""),
                 "connection pgsql of vendor/laravel/framework/config/database.php (DB_CONNECTION in .env)",
                 id="connection-merged-from-vendor"),
    pytest.param({".env": 'DB_CONNECTION=mysql\nDB_HOST=h\nDB_PASSWORD="\'quoted\'"\nDB_USERNAME=(empty)\n'
                          "DB_DATABASE=${DB_HOST}_db\n"},
                 CONFIG_10, {}, ("mysql", "h", 3306, "", "quoted", "h_db", ""), "", id="env-mapping"),
    pytest.param({".env": env(DB_CONNECTION="mysql", DB_HOST="computed", DB_DATABASE="c")},
                 CONFIG_10.replace("'host' => env('DB_HOST', '127.0.0.1')",
                                   "'host' => $secrets['host'] ?? gethostname()"), {},
                 ("mysql", "computed", 3306, "forge", "", "c", ""),
                 "connections.mysql.host is computed; read as Laravel's own config/database.php reads it "
                 "(DB_HOST in .env)", id="computed-value"),
    pytest.param({".env": MYSQL_ENV}, "<?php\n$config = require 'other.php';\nreturn $config;\n", {},
                 ("mysql", "db.internal", 3307, "app", "pw", "shop", ""),
                 "config/database.php, line 2: cannot read '$' without PHP", id="unreadable-config"),
    pytest.param({".env": MYSQL_ENV, "bootstrap/cache/config.php": CONFIG_CACHE}, CONFIG_10, {},
                 ("postgresql", "cached-db", 5433, "cache_user", "it's", "from_cache", ""),
                 "configuration from Laravel's cache bootstrap/cache/config.php", id="config-cache"),
]


@pytest.mark.parametrize("files, config, real, expected, note", ROUTES)
def test_configuration_routes(tmp_path, files, config, real, expected, note):
    project = source(laravel_tree(tmp_path, files, config=config), real)
    assert project.framework == "laravel"
    assert db_tuple(project) == expected
    assert any(note in line for line in project.notes), project.notes


def test_url_query_and_tls_options(tmp_path):
    laravel_tree(tmp_path, {".env": env(DB_CONNECTION="pgsql", DB_URL='"pgsql://u@h/d?sslmode=verify-full'
                                                                       '&sslrootcert=/ca.pem"')},
                 config=CONFIG_11)
    assert source(tmp_path).database.params == (("charset", "utf8"), ("sslmode", "verify-full"),
                                                ("sslrootcert", "/ca.pem"))
    (tmp_path / ".env").write_text(env(DB_CONNECTION="mysql", DB_DATABASE="x", MYSQL_ATTR_SSL_CA="/ca.pem"))
    laravel_tree(tmp_path, config=CONFIG_10)  # the stock options expression: MYSQL_ATTR_SSL_CA counts
    assert source(tmp_path).database.params == (("charset", "utf8mb4"), ("ssl-ca", "/ca.pem"),
                                                ("ssl-mode", "VERIFY_IDENTITY"))


def test_config_cache_gives_urls_and_prefix(tmp_path):
    laravel_tree(tmp_path, {".env": MYSQL_ENV, "bootstrap/cache/config.php": CONFIG_CACHE,
                            "storage/app/public/a.jpg": "jpg"})
    (tmp_path / "public" / "storage").symlink_to(tmp_path / "storage/app/public")
    project = source(tmp_path)
    assert project.base_url == "https://cached.example"
    assert project.database.params == (("charset", "utf8"), ("sslmode", "require"))
    assert project.skips_table("c_sessions") and not project.skips_table("sessions")
    assert any("fetched from https://cdn.example/storage/" in n for n in project.notes)
    moved = tmp_path / "elsewhere.php"
    (tmp_path / "bootstrap/cache/config.php").rename(moved)
    assert source(tmp_path).database.database == "shop"  # no cache: the files
    assert source(tmp_path, {"APP_CONFIG_CACHE": str(moved)}).database.database == "from_cache"


# --- SQLite: the file Laravel opens ---------------------------------------------------------------

def test_laravel_11_default_is_the_sqlite_file_in_database(tmp_path):
    project = source(laravel_tree(tmp_path, {".env": "APP_NAME=Shop\n"}, config=CONFIG_11))
    db = project.database
    assert (db.engine, db.host, db.port, db.user) == ("sqlite", "", 0, "")
    assert db.database == str(tmp_path.resolve() / "database" / "database.sqlite")
    no_config = source(laravel_tree(tmp_path / "bare", config=None)).database
    assert no_config.database == str((tmp_path / "bare").resolve() / "database" / "database.sqlite")


@pytest.mark.parametrize("value, expected", [
    ("database/app.sqlite", "database/app.sqlite"),  # relative: from the project folder
    ("/var/lib/app/db.sqlite", "/var/lib/app/db.sqlite"),
])
def test_sqlite_paths(tmp_path, value, expected):
    laravel_tree(tmp_path, {".env": env(DB_CONNECTION="sqlite", DB_DATABASE=value)}, config=CONFIG_11)
    assert source(tmp_path).database.database == str(tmp_path.resolve() / expected)


def test_sqlite_url_as_laravel_parses_it(tmp_path):
    # ConfigurationUrlParser: sqlite:///x is x relative to the project, sqlite:////x is /x
    laravel_tree(tmp_path, {".env": env(DB_URL="sqlite:///database/u.sqlite")}, config=CONFIG_11)
    assert source(tmp_path).database.database == str(tmp_path.resolve() / "database/u.sqlite")
    (tmp_path / ".env").write_text(env(DB_CONNECTION="mariadb", DB_URL="sqlite:////srv/u.sqlite"))
    assert source(tmp_path).database.database == "/srv/u.sqlite"


# --- bad input: one line, with a hint --------------------------------------------------------------

BAD = [
    ({".env": env(DB_CONNECTION="sqlsrv")}, CONFIG_10,
     "config/database.php: connections.sqlsrv.driver is sqlsrv: SQL Server is not supported"),
    ({".env": env(DB_CONNECTION="mysql", DATABASE_URL="mssql://u:p@h/x")}, CONFIG_10,
     "config/database.php: connections.mysql.driver (the URL in DATABASE_URL in .env) is sqlsrv: SQL Server "
     "is not supported"),
    ({".env": env(DB_CONNECTION="pgsql", DATABASE_URL="oracle://u:p@h/x")}, CONFIG_10,
     "config/database.php: connections.pgsql.driver (the URL in DATABASE_URL in .env) is 'oracle', which synco "
     "does not support"),
    ({".env": env(DB_CONNECTION="oracle")}, CONFIG_10,
     "config/database.php: database connection 'oracle' (DB_CONNECTION in .env) is not configured"),
    ({".env": env(DB_CONNECTION="mysql")}, CONFIG_10.replace("env('DB_DATABASE', 'forge')", "env('DB_DATABASE')"),
     "config/database.php: connections.mysql.database (DB_DATABASE is not set, and config/database.php "
     "gives no default) gives no database name"),
    ({".env": env(DB_CONNECTION="mysql", DB_PORT="33o6")}, CONFIG_10,
     "config/database.php: connections.mysql.port (DB_PORT in .env) is '33o6', not a number"),
    ({".env": env(DB_CONNECTION="mysql", DATABASE_URL="mysql://u@h:99999/x")}, CONFIG_10,
     "config/database.php: connections.mysql.url (DATABASE_URL in .env): the database URL is malformed"),
    ({".env": env(DB_CONNECTION="sqlite", DB_DATABASE=":memory:")}, CONFIG_11,
     "config/database.php: connections.sqlite.database (DB_DATABASE in .env) is an in-memory SQLite database"),
    ({".env": "APP_NAME=Shop\nDB_CONNECTION=mysql\nDB_PASSWORD=two words\n"}, CONFIG_10,
     ".env, line 3: encountered unexpected whitespace at [two words]"),
    ({".env": 'DB_PASSWORD="a"b\n'}, CONFIG_10, ".env, line 1: encountered unexpected whitespace at [\"a\"b]"),
    ({".env": 'DB_PASSWORD="\\q"\n'}, CONFIG_10, '.env, line 1: encountered an unexpected escape sequence'),
    ({".env": "DB_PASSWORD='open\n"}, CONFIG_10, ".env, line 1: encountered a missing closing quote at ['open]"),
    ({".env": "DB HOST=x\n"}, CONFIG_10, ".env, line 1: encountered an invalid name at [DB HOST]"),
    ({".env": MYSQL_ENV, "bootstrap/cache/config.php": "<?php return array ('app' => array ());\n"}, CONFIG_10,
     "bootstrap/cache/config.php: the cached configuration has no 'database' array"),
]


@pytest.mark.parametrize("files, config, expected", BAD)
def test_bad_configuration(tmp_path, files, config, expected):
    laravel_tree(tmp_path, files, config=config)
    exc = error(source, tmp_path)
    assert str(exc) == expected or str(exc).startswith(expected), str(exc)
    assert exc.hint and "\n" not in str(exc)


def test_a_database_from_elsewhere_needs_no_readable_connection(tmp_path):
    laravel_tree(tmp_path, {".env": env(DB_CONNECTION="sqlsrv"), "synco.yaml": "database: mysql://u@h/x\n"})
    project = source(tmp_path)
    assert project.database.database == "x" and project.skips_table("sessions")


# --- .env as phpdotenv reads it, and PHP configuration files -----------------------------------------

def test_phpdotenv_syntax():
    text = (
        "# comment\n"
        "export APP_NAME=\"My Shop\"\n"
        "DB_HOST = 127.0.0.1\n"
        "DB_PASSWORD='p#ss ${NOT} \\n'\n"
        "DB_USERNAME=user#no space needed before the comment\n"
        "MULTI=\"one\n"
        "two \\\"q\\\" \\$HOME ${DB_HOST} ${UNKNOWN} $DB_HOST\\ttab\"\n"
        "FROM_REAL=${REAL}:${DB_HOST}\n"
        "EMPTY=\n"
        "'QUOTED.NAME'=x\n"
        "BACKSLASH=a\\b\n"
        "GONE=1\n"
        "GONE\n"
        "SET_IN_REAL=file\n"
    )
    values = parse_php(text, ".env", real_env={"REAL": "r", "SET_IN_REAL": "real"})
    assert values == {
        "APP_NAME": "My Shop", "DB_HOST": "127.0.0.1", "DB_PASSWORD": "p#ss ${NOT} \\n",
        "DB_USERNAME": "user", "MULTI": 'one\ntwo "q" $HOME 127.0.0.1 ${UNKNOWN} $DB_HOST\ttab',
        "FROM_REAL": "r:127.0.0.1", "EMPTY": "", "QUOTED.NAME": "x", "BACKSLASH": "a\\b"}
    # an unclosed double quote hides the rest of the file, as in phpdotenv
    assert parse_php('A=1\nB="open\nC=3\n', ".env") == {"A": "1"}


def test_symfony_dotenv_is_unchanged_by_laravel_rules():
    from synco_frameworks.dotenv import parse
    assert parse("A=x#y\nB=$A\n", ".env") == {"A": "x#y", "B": "x#y"}  # Symfony: no comment, $A expands
    assert parse_php("A=x#y\nB=$A\n", ".env") == {"A": "x", "B": "$A"}


@pytest.mark.parametrize("raw, expected", [
    ("true", True), ("(false)", False), ("NULL", None), ("empty", ""), ("'x'", "x"), ('"y"', "y"),
    ("'z\"", "'z\""), ("plain", "plain"),
])
def test_env_values_as_laravel_maps_them(raw, expected):
    assert laravel.env_value(raw) == expected


def test_php_return_value_reader():
    value = phparray.parse_return_value(
        "<?php\nuse A\\B;\nreturn [\n  'a' => env('X', 'd') . '/x', // c\n  'b' => array(1, 2 => 'two', 'three'),\n"
        "  'c' => $x ? 1 : 2,\n  PDO::Y => null,\n  'n' => -1.5, 'f' => fn () => 1,\n];\n", "t.php")
    assert value["a"] == phparray.Concat((phparray.Call("env", ("X", "d"), 4), "/x"), 4)
    assert value["b"] == {0: 1, 2: "two", 3: "three"}
    assert value["c"] == phparray.Opaque("$ x ? 1 : 2", 6)
    assert value[phparray.Opaque("PDO :: Y", 0)] is None and value["n"] == -1.5
    assert isinstance(value["f"], phparray.Opaque)
    with pytest.raises(Exception, match="t.php, line 1: cannot read 'echo'"):
        phparray.parse_return_value("<?php echo 1;", "t.php")


# --- detection, files, exclusions, post-import ---------------------------------------------------------

def test_detection(tmp_path):
    assert laravel.FRAMEWORK.matches(laravel_tree(tmp_path / "a")) == "artisan, composer.json (laravel/framework)"
    assert laravel.FRAMEWORK.matches(laravel_tree(tmp_path / "b", composer='{"require": {}}')) == \
        "artisan, composer.json"
    assert laravel.FRAMEWORK.matches(laravel_tree(tmp_path / "c", composer="{broken")) == "artisan, composer.json"
    write(tmp_path / "d", {"artisan": ""})
    assert laravel.FRAMEWORK.matches(tmp_path / "d") is None
    write(tmp_path / "e", {"composer.json": "{}"})
    assert laravel.FRAMEWORK.matches(tmp_path / "e") is None


def storage_tree(root: Path, app_url: str = "https://shop.example", link: bool = True) -> Path:
    laravel_tree(root, {".env": env(APP_URL=app_url) + MYSQL_ENV,
                        "storage/app/invoices/1.pdf": "pdf", "storage/app/.gitignore": "*\n",
                        "storage/app/public/avatars/a.jpg": "jpg", "storage/app/public/.gitignore": "*\n"})
    if link:
        (root / "public" / "storage").symlink_to(root / "storage/app/public")
    return root


def test_file_sets_and_the_public_disk(tmp_path):
    project = source(storage_tree(tmp_path))
    root = tmp_path.resolve()
    assert project.file_sets == {"storage": root / "storage/app", "storage-public": root / "storage/app/public"}
    assert project.public_sets == {"storage-public"}
    private = project.file_selectors["storage"](None, set())
    assert private.include == {"invoices/1.pdf", ".gitignore"}
    public = project.file_selectors["storage-public"](None, set())
    assert isinstance(public, FileSelection) and public.include == {"avatars/a.jpg", ".gitignore"}
    assert public.public == {"avatars/a.jpg": "avatars/a.jpg"}  # dot files travel in the session
    assert public.public_url == "https://shop.example/storage/"


@pytest.mark.parametrize("app_url, link, note", [
    ("http://localhost", True, "public, but APP_URL is not a public URL: sent in the session"),
    ("https://shop.example", False, "not public: public/storage does not link to it"),
])
def test_public_disk_not_fetched_from_the_site(tmp_path, app_url, link, note):
    project = source(storage_tree(tmp_path, app_url, link))
    assert "storage-public" not in project.file_selectors
    assert any(note in n for n in project.notes), project.notes
    assert project.is_public("storage-public") == link


def test_local_side_sets_exist_without_folders_and_source_side_skips_missing_ones(tmp_path):
    laravel_tree(tmp_path, {".env": MYSQL_ENV})
    assert set(local(tmp_path).file_sets) == {"storage", "storage-public"}
    assert source(tmp_path).file_sets == {}


def test_smart_exclusions_with_the_table_prefix_and_all(tmp_path):
    laravel_tree(tmp_path, {".env": MYSQL_ENV + "DB_PREFIX=shop_\n"},
                 config=CONFIG_10.replace("'prefix' => '',\n                'prefix_indexes' => true,\n"
                                          "                'strict'", "'prefix' => env('DB_PREFIX', ''),\n"
                                          "                'prefix_indexes' => true,\n                'strict'"))
    project = source(tmp_path)
    for table in ("shop_sessions", "shop_cache", "shop_cache_locks", "shop_jobs", "shop_job_batches",
                  "shop_failed_jobs", "shop_telescope_entries", "shop_pulse_values"):
        assert project.skips_table(table), table
    assert not project.skips_table("sessions") and not project.skips_table("shop_users")
    assert not project.skips_table("shop_cache_items")
    assert source(tmp_path, all_data=True).skip_table_data == []
    plain = source(laravel_tree(tmp_path / "plain", {".env": MYSQL_ENV}))
    assert plain.skips_table("telescope_entries_tags") and plain.skips_table("failed_jobs")


def test_describe_lists_sets_exclusions_and_steps_without_the_password(tmp_path):
    storage_tree(tmp_path)
    lines = describe(local(tmp_path, {"PATH": "/nowhere"}))
    assert lines[0] == "framework: laravel (production)"
    assert "database: mysql database shop on db.internal:3307 as user app" in lines
    assert "file set storage-public: storage/app/public (2 files, 5 bytes, public)" in lines
    assert ("rows left out: sessions, cache, cache_locks, jobs, job_batches, failed_jobs, telescope_*, "
            "pulse_*") in lines
    assert "after import, run by hand: php artisan optimize:clear" in lines
    assert not any("storage:link" in line for line in lines)  # public/storage is there
    assert not any("pw" in line.split() for line in lines)


def test_post_import_steps(tmp_path):
    laravel_tree(tmp_path, {".env": MYSQL_ENV})
    printed = local(tmp_path)
    assert printed.post_import == [["php", "artisan", "optimize:clear"], ["php", "artisan", "storage:link"]]
    assert not printed.post_import_runnable
    ran = local(tmp_path, php="/usr/bin/php8.3")
    assert ran.post_import[0] == ["/usr/bin/php8.3", "artisan", "optimize:clear"] and ran.post_import_runnable
    assert source(tmp_path, php=SH).post_import == []


# --- php artisan, when asked ------------------------------------------------------------------------

def test_artisan_is_asked_only_on_request(tmp_path):
    laravel_tree(tmp_path, {".env": MYSQL_ENV}, stand_in=True)
    asked = source(tmp_path, {"SYNCO_LARAVEL_ARTISAN": "1", "DB_PASSWORD": "from-env", "APP_ENV": "prod"}, php=SH)
    assert db_tuple(asked) == ("mysql", "artisan-db", 3307, "tinker", "from-env", "from_artisan", "")
    assert asked.database.params == (("ssl-ca", "/etc/ssl/ca.pem"), ("ssl-mode", "VERIFY_IDENTITY"))
    assert asked.base_url == "https://artisan.example" and asked.skips_table("a_sessions")
    assert f"configuration asked Laravel: {SH} artisan tinker" in asked.notes
    assert (tmp_path / "artisan.calls").read_text() == "APP_ENV=prod tinker\n"
    (tmp_path / "artisan.calls").unlink()
    assert source(tmp_path, php=SH).database.database == "shop"  # not asked: the files
    no_php = source(tmp_path, {"SYNCO_LARAVEL_ARTISAN": "1"})
    assert no_php.database.database == "shop" and any("there is no PHP interpreter" in n for n in no_php.notes)
    assert not (tmp_path / "artisan.calls").exists()


def test_artisan_failing_falls_back_to_the_files(tmp_path):
    laravel_tree(tmp_path, {".env": MYSQL_ENV}, stand_in=True)
    project = source(tmp_path, {"SYNCO_LARAVEL_ARTISAN": "1", "ARTISAN_FAIL": "1"}, php=SH)
    assert project.database.database == "shop"
    assert any(n.startswith("php artisan tinker failed (exit status 1: Class \"Laravel\\Tinker")
               for n in project.notes), project.notes


def test_real_php_file_is_not_run(tmp_path):
    """Without the request, reading a Laravel tree never executes anything in it."""
    laravel_tree(tmp_path, {".env": MYSQL_ENV})
    (tmp_path / "artisan").write_text("#!/bin/sh\ntouch ran\n")
    source(tmp_path, php=SH)
    local(tmp_path, php=SH)
    assert not os.path.exists(tmp_path / "ran")


def test_no_db_still_leaves_public_out_of_the_storage_set(tmp_path):
    """synco-source serve --no-db: selectors that need no query still choose (storage without
    public/); one that queries the database keeps its whole set, as before."""
    from synco_frameworks.base import FileSelection
    from synco_source.produce import Plan, _select_without_database

    def needs_db(select, tables):
        select("SELECT 1")
        return FileSelection(include={"x"})

    plan = Plan(file_sets={"storage": tmp_path, "resources": tmp_path},
                file_selectors={"storage": lambda select, tables: FileSelection(include={"a.txt"}),
                                "resources": needs_db})
    chosen: dict = {}
    _select_without_database(plan, chosen)
    assert set(chosen) == {"storage"} and chosen["storage"].include == {"a.txt"}
