"""Framework detection (synco_frameworks): Neos/Flow and Symfony configuration routes, synco.yaml,
describe(), and every bad input. Trees are written into tmp_path by tests/fw_trees.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fw_cases import ENV_LAYERS, SYMFONY_BAD, SYNCO_YAML_BAD
from fw_trees import SYNCO_YAML, backend, error, local, neos_tree, source, symfony_tree, url, write
from synco_frameworks import generic, neos
from synco_frameworks.detect import describe, detect, find_php, require_database, resolve

SH = "/bin/sh"  # runs the ./flow stand-in the way a real PHP runs the real ./flow


# --- Neos / Flow without PHP: the YAML files merged as Flow does ---------------------------------

def flow_layers(tmp_path):
    return neos_tree(tmp_path, {
        "Configuration/Settings.yaml": backend(dbname="global", user="app", host="db.global",
                                               password="'%env:DB_PASSWORD%'"),
        "Configuration/Settings.Zz.yaml": backend(host="db.split"),
        "Configuration/Settings.Aa.yaml": backend(host="db.split.first", user="split"),
        "Configuration/Development/Settings.yaml": backend(dbname="dev"),
        "Configuration/Production/Settings.yaml": backend(dbname="prod", port="'%env(int):DB_PORT%'"),
        "Configuration/Production/Live/Settings.yaml": backend(dbname="'live_%env:SUFFIX%_db'")
        + "    http:\n      baseUri: 'https://live.example/'\n",
    })


def test_flow_files_merge_global_context_and_sub_context_in_order(tmp_path):
    env = {"FLOW_CONTEXT": "Production/Live", "DB_PASSWORD": "s3cret", "DB_PORT": "3307", "SUFFIX": "x"}
    project = source(flow_layers(tmp_path), env)
    db = project.database
    # Settings.yaml, then Settings.*.yaml sorted (Zz after Aa), then Production, then Production/Live
    assert (db.host, db.user, db.port, db.database, db.password) == (
        "db.split", "split", 3307, "live_x_db", "s3cret")
    assert project.base_url == "https://live.example/" and project.context == "Production/Live"
    assert any("Configuration/Production/Live/Settings.yaml" in n and "without PHP" in n
               for n in project.notes)
    assert not any("Development" in n for n in project.notes)


def test_flow_default_context_is_production_on_the_server_and_development_locally(tmp_path):
    flow_layers(tmp_path)
    assert source(tmp_path).database.database == "prod"
    assert local(tmp_path).database.database == "dev"
    assert source(tmp_path, {"FLOW_CONTEXT": "Development"}).database.database == "dev"


def test_flow_env_references_unset_give_nothing(tmp_path):
    project = source(flow_layers(tmp_path), {"FLOW_CONTEXT": "Production/Live"})
    db = project.database
    assert (db.password, db.database, db.port) == ("", "live__db", 3306)


@pytest.mark.parametrize("value, expected", [
    ("%env:X%", "7"), ("%env:NOPE%", None), ("%env(int):X%", 7), ("%env(int):NOPE%", 0),
    ("%env(bool):X%", True), ("%env(bool):F%", False), ("%env(bool):NOPE%", False), ("%env(float):X%", 7.0),
    ("%env(string):NOPE%", ""), ("a-%env:X%-%env:NOPE%-b", "a-7--b"), ("%FLOW_PATH_WEB%x", "/r/Web/x"),
    ("%OTHER_CONSTANT%", "%OTHER_CONSTANT%"), ("50%", "50%"), ("%lower%", "%lower%"),
])
def test_flow_expressions(value, expected):
    from synco_frameworks.flowconfig import constants, resolve
    assert resolve({"k": [value]}, {"X": "7", "F": "false"}, constants(Path("/r"))) == {"k": [expected]}


def test_flow_socket_postgresql_and_charset(tmp_path):
    neos_tree(tmp_path, {"Configuration/Settings.yaml": backend(
        driver="pdo_pgsql", dbname="n", unixSocket="/run/postgresql", charset="utf8", password="on")})
    db = source(tmp_path).database
    assert (db.engine, db.socket, db.port, db.params, db.password) == (
        "postgresql", "/run/postgresql", 5432, (("charset", "utf8"),), "on")  # 'on' stays a string


# --- Neos / Flow with PHP: Flow answers itself ----------------------------------------------------

def test_flow_is_asked_when_php_is_there(tmp_path):
    neos_tree(tmp_path, stand_in=True)
    project = source(tmp_path, {"FLOW_CONTEXT": "Production/Live", "DB_PASSWORD": "pw"}, php=SH)
    db = project.database
    assert (db.engine, db.host, db.port, db.database, db.password) == (
        "postgresql", "flow-db", 5433, "from_flow_Production", "pw")
    assert project.base_url == "https://flow.example/"
    calls = (tmp_path / "flow.calls").read_text().splitlines()
    assert calls == ["FLOW_CONTEXT=Production/Live configuration:show --type Settings --path Neos.Flow"]
    assert any(n.startswith(f"settings asked Flow: {SH} ./flow configuration:show") for n in project.notes)
    assert project.is_public("resources")


@pytest.mark.parametrize("how", ["PHP", "PATH"])
def test_php_is_found_through_PHP_or_PATH(tmp_path, how):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "php").symlink_to(SH)
    env = {"PHP": SH} if how == "PHP" else {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    assert find_php(env) in (SH, str(bin_dir / "php"))
    assert find_php({"PATH": str(tmp_path)}) is None and find_php({}) is None
    project = local(neos_tree(tmp_path / "app", stand_in=True), env)
    assert project.database.database == "from_flow_Development" and project.post_import_runnable


def test_flow_failing_falls_back_to_the_files_and_says_so(tmp_path):
    neos_tree(tmp_path, {"Configuration/Settings.yaml": backend(dbname="from_files")}, stand_in=True)
    project = source(tmp_path, {"FLOW_FAIL": "1"}, php=SH)
    assert project.database.database == "from_files"
    assert any("configuration:show failed" in n and "Flow could not boot" in n for n in project.notes)


# --- Neos / Flow: resources, exclusions, post-import ----------------------------------------------

def test_flow_resources_are_a_public_file_set_by_default(tmp_path):
    project = source(neos_tree(tmp_path))
    assert project.file_sets == {"resources": tmp_path.resolve() / "Data/Persistent/Resources"}
    assert project.is_public("resources")
    assert neos.resource_paths(["ABCDEF" + "0" * 34]) == {
        "ABCDEF" + "0" * 34: "Data/Persistent/Resources/a/b/c/d/abcdef" + "0" * 34}
    with pytest.raises(ValueError):
        neos.resource_path("../etc")


def test_flow_resources_published_outside_web_or_stored_remotely(tmp_path):
    target = ("    resource:\n      targets:\n        localWebDirectoryPersistentResourcesTarget:\n"
              "          targetOptions:\n            path: '%FLOW_PATH_DATA%Private/'\n")
    neos_tree(tmp_path, {"Configuration/Settings.yaml": backend(dbname="n") + target})
    assert not source(tmp_path).is_public("resources")
    storage = ("    resource:\n      storages:\n        defaultPersistentResourcesStorage:\n"
               "          storage: 'Flownative\\Aws\\S3\\S3Storage'\n")
    (tmp_path / "Configuration/Settings.yaml").write_text(backend(dbname="n") + storage)
    project = source(tmp_path)
    assert project.file_sets == {} and any("S3Storage: not copied" in n for n in project.notes)


def test_flow_smart_exclusions_and_all(tmp_path):
    neos_tree(tmp_path)
    project = source(tmp_path)
    assert project.skip_table_data == list(neos.SKIP_TABLE_DATA)
    assert project.skips_table("neos_neos_eventlog_domain_model_event")
    assert not project.skips_table("neos_contentrepository_domain_model_nodedata")
    assert any(n.startswith("left out (--all copies them)") for n in project.notes)
    assert source(tmp_path, all_data=True).skip_table_data == []


def test_flow_post_import_commands_run_with_php_else_are_printed(tmp_path):
    neos_tree(tmp_path)
    printed = local(tmp_path, {"FLOW_CONTEXT": "Development/Me"})
    assert printed.post_import_lines() == ["env FLOW_CONTEXT=Development/Me ./flow resource:publish",
                                           "env FLOW_CONTEXT=Development/Me ./flow flow:cache:flush"]
    assert not printed.post_import_runnable
    ran = local(tmp_path, php="/usr/bin/php8")
    assert ran.post_import[0] == ["env", "FLOW_CONTEXT=Development", "/usr/bin/php8", "./flow",
                                  "resource:publish"]
    assert ran.post_import_runnable and source(tmp_path, php=SH).post_import == []


def test_flow_database_url_option(tmp_path):
    settings = backend(url="'%env:DATABASE_URL%'", dbname="ignored")
    neos_tree(tmp_path, {"Configuration/Settings.yaml": settings})
    db = source(tmp_path, {"DATABASE_URL": "pdo-mysql://u:p@h:3310/fromurl?serverVersion=8.0"}).database
    assert (db.engine, db.port, db.database, db.password) == ("mysql", 3310, "fromurl", "p")


OPTIONS = "Configuration/Settings.yaml: Neos.Flow.persistence.backendOptions."


@pytest.mark.parametrize("settings, env, expected", [
    (backend(url="'mysql://u@h/'"), {},
     OPTIONS + "url mysql://u@h:3306/ names no database"),
    (backend(driver="pdo_sqlite", dbname="x"), {},
     OPTIONS + "driver is pdo_sqlite: SQLite is not supported yet"),
    (backend(driver="oci8", dbname="x"), {}, "backendOptions.driver is oci8, which synco does not support"),
    (backend(user="u"), {}, "Flow's defaults: Neos.Flow.persistence.backendOptions.dbname is not set"),
    (backend(dbname="'%env:NAME%'"), {}, OPTIONS + "dbname is not set"),
    (backend(dbname="x", port="abc"), {}, OPTIONS + "port is 'abc'"),
    ("Neos:\n  Flow: [\n", {}, "Configuration/Settings.yaml, line 3: invalid YAML"),
    ("- a list\n", {}, "Configuration/Settings.yaml: the top level must be a mapping"),
    (backend(dbname="x"), {"FLOW_CONTEXT": "Staging"}, "FLOW_CONTEXT 'Staging' is not a Flow context"),
    (backend(dbname="x"), {"FLOW_CONTEXT": "Production//Live"},
     "FLOW_CONTEXT 'Production//Live' is not a Flow context"),
])
def test_flow_bad_settings(tmp_path, settings, env, expected):
    neos_tree(tmp_path, {"Configuration/Settings.yaml": settings})
    exc = error(source, tmp_path, env)
    assert expected in str(exc) and exc.hint and "\n" not in str(exc)


# --- Symfony: the .env layers -----------------------------------------------------------------------

@pytest.mark.parametrize("files, env, expected, origin", ENV_LAYERS)
def test_symfony_env_layers_and_precedence(tmp_path, files, env, expected, origin):
    project = source(symfony_tree(tmp_path, files), env)
    assert project.database.database == expected
    assert f"database from DATABASE_URL in {origin}" in project.notes


def test_symfony_local_side_defaults_to_dev(tmp_path):
    symfony_tree(tmp_path, {".env": url("env"), ".env.dev": url("dev"), ".env.prod": url("prod")})
    assert local(tmp_path).database.database == "dev" and local(tmp_path).context == "dev"
    assert source(tmp_path).context == "prod"


def test_symfony_env_local_php_from_composer_dump_env(tmp_path):
    dumped = ("<?php\n\n// This file was generated by running \"composer dump-env prod\"\n\nreturn array (\n"
              "  'APP_ENV' => 'prod',\n  'DATABASE_URL' => 'mysql://app:it\\'s\\\\x@db/dumped',\n"
              "  'DEFAULT_URI' => 'https://dumped.example/',\n);\n")
    symfony_tree(tmp_path, {".env": url("env"), ".env.local.php": dumped})
    project = source(tmp_path)
    assert (project.database.database, project.database.password) == ("dumped", "it's\\x")
    assert project.base_url == "https://dumped.example/"
    assert "environment: .env.local.php (the real environment wins)" in project.notes
    assert source(tmp_path, {"APP_ENV": "dev"}).database.database == "env"  # APP_ENV disagrees
    (tmp_path / ".env.local.php").write_text("<?php return ['DATABASE_URL' => getenv('X')];\n")
    assert ".env.local.php, line 1: cannot read 'getenv'" in str(error(source, tmp_path))


def test_symfony_dotenv_syntax(tmp_path):
    symfony_tree(tmp_path, {
        ".env": """\
            # a comment
            export DB_USER=app
            DB_HOST=127.0.0.1 # trailing comment
            DB_PASS='p#ss $NOT'"wo\\"rd"
            DB_NAME=${NAME:-shop}
            MULTI="line one
            line two"
            BS="a\\\\b" # becomes a\b
            URL="mysql://${DB_USER}:${DB_PASS_ENC}@$DB_HOST:3306/${DB_NAME}"
            DATABASE_URL=$URL?serverVersion=8.0&charset=utf8mb4
            DEFAULT_URI=https://${HOST}/
            """,
        ".env.local": "DB_PASS_ENC=x%40y\n",  # defined later: ${DB_PASS_ENC} was empty in .env
        ".env.prod": "DATABASE_URL=\"${DATABASE_URL}&unix_socket=/run/mysqld.sock\"\n",
    })
    project = source(tmp_path, {"HOST": "shop.example"})
    db = project.database
    assert (db.user, db.password, db.host, db.database, db.socket) == ("app", "", "127.0.0.1", "shop",
                                                                       "/run/mysqld.sock")
    assert db.params == (("charset", "utf8mb4"), ("serverVersion", "8.0"))
    assert project.base_url == "https://shop.example/"
    from synco_frameworks.symfony import resolve_env
    values = resolve_env(tmp_path, {}, "prod")
    assert values.get("DB_PASS") == 'p#ss $NOTwo"rd' and values.get("MULTI") == "line one\nline two"
    assert values.get("BS") == "a\\b"


@pytest.mark.parametrize("scheme, engine, port", [
    ("mysql", "mysql", 3306), ("mariadb", "mysql", 3306), ("mysql2", "mysql", 3306),
    ("postgresql", "postgresql", 5432), ("pgsql", "postgresql", 5432), ("pdo-pgsql", "postgresql", 5432),
])
def test_symfony_database_url_schemes(tmp_path, scheme, engine, port):
    symfony_tree(tmp_path, {".env": f"DATABASE_URL={scheme}://u:p@h/app?serverVersion=16&charset=utf8\n"})
    db = source(tmp_path).database
    assert (db.engine, db.port, db.database, db.host) == (engine, port, "app", "h")


def test_symfony_detected_through_composer_json_and_upload_sets(tmp_path):
    symfony_tree(tmp_path, {"composer.json": '{"require": {"symfony/framework-bundle": "^7.1"}}',
                            "public/uploads/a.jpg": "jpg", ".env": url("shop")}, bundles=False)
    project = source(tmp_path)
    assert project.framework == "symfony"
    assert project.file_sets == {"uploads": tmp_path.resolve() / "public/uploads"}
    assert project.is_public("uploads")
    on_laptop = local(tmp_path)  # the places to write into, whether there or not
    assert set(on_laptop.file_sets) == {"uploads", "var-uploads"} and not on_laptop.is_public("var-uploads")
    assert source(symfony_tree(tmp_path / "nodb")).database is None


@pytest.mark.parametrize("files, expected", SYMFONY_BAD)
def test_symfony_bad_configuration(tmp_path, files, expected):
    symfony_tree(tmp_path, files, bundles="composer.json" not in files)
    exc = error(source, tmp_path)
    assert str(exc).startswith(expected) and exc.hint


# --- synco.yaml ------------------------------------------------------------------------------------

def test_synco_yaml_overrides_a_framework(tmp_path):
    neos_tree(tmp_path)
    write(tmp_path, {"synco.yaml": SYNCO_YAML})
    project = source(tmp_path, {"DB_PASSWORD": "pw"})
    db = project.database
    assert (db.user, db.password, db.host, db.database) == ("dev", "pw", "127.0.0.1", "override")
    assert project.base_url == "https://override.example/"
    assert project.file_sets["media"] == tmp_path.resolve() / "var/media" and project.is_public("media")
    assert "resources" in project.file_sets and not project.is_public("resources")
    assert project.skips_table("audit_log") and project.skips_table("cache_items")
    assert project.skips_table("neos_media_domain_model_thumbnail")
    assert source(tmp_path, {"DB_PASSWORD": "pw"}, all_data=True).skip_table_data == ["cache_items"]
    assert "database from synco.yaml (database.url)" in project.notes
    assert project.public_url(tmp_path / "Web/_synco") == "https://override.example/_synco/"


def test_public_url_of_a_folder_in_the_web_root(tmp_path):
    symfony_tree(tmp_path, {".env": url("shop") + "DEFAULT_URI=https://shop.example/app\n"})
    project = source(tmp_path)
    assert project.public_url(tmp_path / "public/_synco") == "https://shop.example/app/_synco/"
    assert project.public_url(tmp_path / "public") == "https://shop.example/app/"
    assert project.public_url(tmp_path / "var/_synco") is None
    assert source(neos_tree(tmp_path / "neos")).public_url(tmp_path / "neos/Web/x") is None  # no baseUri
    write(tmp_path, {"synco.yaml": "web_root: var\n"})
    assert source(tmp_path).public_url(tmp_path / "var/_synco") == "https://shop.example/app/_synco/"


def test_synco_yaml_database_replaces_broken_framework_settings(tmp_path):
    neos_tree(tmp_path, {"Configuration/Settings.yaml": backend(driver="pdo_sqlite")})
    write(tmp_path, {".synco.yaml": "database: mysql://u@h/x\nfiles: {resources: null}\n"})
    project = source(tmp_path)
    assert project.database.database == "x" and project.file_sets == {}


def test_generic_project_from_synco_yaml_alone(tmp_path):
    write(tmp_path, {"synco.yaml": "database: {url: 'pgsql://u:p@h/app'}\nfiles: {uploads: data/up}\n"})
    project = local(tmp_path)
    assert project.framework == "generic" and project.database.engine == "postgresql"
    assert project.file_sets == {"uploads": tmp_path.resolve() / "data/up"} and not project.public_sets


def test_framework_key_settles_an_ambiguous_tree(tmp_path):
    symfony_tree(neos_tree(tmp_path), {".env": url("sf")})
    exc = error(source, tmp_path)
    assert "looks like more than one framework: neos (flow, Configuration/, Web/) and symfony" in str(exc)
    assert "framework: neos" in exc.hint
    write(tmp_path, {"synco.yaml": "framework: symfony\n"})
    assert source(tmp_path).database.database == "sf"
    write(tmp_path, {"synco.yaml": "framework: generic\ndatabase: mysql://u@h/g\n"})
    assert source(tmp_path).framework == "generic"


@pytest.mark.parametrize("text, env, expected", SYNCO_YAML_BAD)
def test_synco_yaml_bad_input(tmp_path, text, env, expected):
    write(tmp_path, {"synco.yaml": text})
    exc = error(source, tmp_path, env)
    assert str(exc).startswith(expected) and exc.hint


def test_two_synco_files_and_an_unreadable_one(tmp_path):
    write(tmp_path, {"synco.yaml": "", ".synco.yaml": ""})
    assert "both synco.yaml and .synco.yaml" in str(error(source, tmp_path))
    (tmp_path / ".synco.yaml").unlink()
    (tmp_path / "synco.yaml").write_bytes(b"\xff\xfe")
    assert str(error(source, tmp_path)) == "cannot read synco.yaml: not UTF-8 text"


# --- detection, describe, and what the command lines call -------------------------------------------

def test_nothing_detected(tmp_path):
    exc = error(source, tmp_path)
    assert str(exc).startswith(f"no known framework in {tmp_path.resolve()} (neos, symfony, laravel, "
                               "wordpress), and no synco.yaml")
    assert "synco.yaml" in exc.hint and "--db-url" in exc.hint


def test_describe_shows_what_was_found_without_the_password(tmp_path):
    neos_tree(tmp_path, {"Configuration/Settings.yaml": backend(dbname="shop", user="app", host="db.internal",
                                                                password="'%env:DB_PASSWORD%'")})
    project = local(tmp_path, {"DB_PASSWORD": "Sup3rS3cret"})
    lines = describe(project)
    assert lines[:4] == ["framework: neos (Development)", f"folder: {tmp_path.resolve()}",
                         "database: mysql database shop on db.internal:3306 as user app",
                         "base URL: not configured"]
    assert "file set resources: Data/Persistent/Resources (1 files, 10 bytes, public)" in lines
    assert "after import, run by hand: env FLOW_CONTEXT=Development ./flow resource:publish" in lines
    assert not any("Sup3rS3cret" in line for line in lines)
    assert "Sup3rS3cret" not in repr(project)


def test_resolve_lets_options_win_and_works_without_detection(tmp_path):
    neos_tree(tmp_path / "app")
    project = resolve(tmp_path / "app", side="source", db_url="mysql://u@h/cli",
                      file_specs=["resources=other"], env={})
    assert project.database.database == "cli" and not project.is_public("resources")
    assert project.file_sets["resources"] == (tmp_path / "app/other").resolve()
    plain = resolve(tmp_path, side="source", env={"SYNCO_DB_URL": "mysql://u@h/envdb"})
    assert plain.framework == "generic" and plain.database.database == "envdb"
    assert resolve(tmp_path / "app", side="source", need_db=False, env={}).database is None
    assert "no known framework" in str(error(resolve, tmp_path, side="source", env={}))
    exc = error(require_database, detect(symfony_tree(tmp_path / "sf"), side="source", env={}))
    assert str(exc).startswith("no database found for this symfony project")


def test_generic_project_keeps_working(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNCO_DB_URL", "mysql://u@h/gen")
    project = generic.project(tmp_path, None, ["up=public/up", "files"])
    assert project.database.database == "gen" and set(project.file_sets) == {"up", "files"}
    assert project.skip_table_data == [] and project.post_import == []
    assert project.file_sets["up"] == tmp_path / "public" / "up"


def test_the_documented_synco_yaml_works(tmp_path):
    doc = (Path(__file__).parent.parent / "docs/frameworks.md").read_text()
    write(tmp_path, {"synco.yaml": doc.split("```yaml\n", 1)[1].split("```", 1)[0]})
    project = local(neos_tree(tmp_path), {"DB_PASSWORD": "pw"})
    assert project.database.database == "shop" and not project.is_public("resources")
    assert set(project.file_sets) == {"uploads", "media", "resources"} and project.skips_table("audit_x")


def test_detection_needs_only_the_standard_library_and_pyyaml():
    code = ("import sys; before = set(sys.modules); from synco_frameworks import detect; "
            "new = {m.split('.')[0] for m in set(sys.modules) - before} - set(sys.stdlib_module_names); "
            "print(' '.join(sorted(m for m in new if 'cython' not in m)))")  # PyYAML's C loader
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    allowed = {"synco_frameworks", "synco_source", "yaml", "_yaml"}
    assert {"synco_frameworks", "yaml"} <= set(run.stdout.split()) <= allowed, run.stdout


@pytest.mark.parametrize("target, options, url, path", [
    ("S3Target", {"bucket": "b", "baseUri": "https://cdn.example.com/media/"},
     "https://cdn.example.com/", "media/{sha1}/{filename}"),
    ("S3Target", {"bucket": "media", "keyPrefix": "res/", "persistentResourceUris": {
        "pattern": "https://{bucketName}.s3.example.com/{keyPrefix}{sha1}/{filename}"}},
     "https://media.s3.example.com/", "res/{sha1}/{filename}"),
    ("GcsTarget", {"bucket": "b", "keyPrefix": "/res/"},
     "https://storage.googleapis.com/", "b/res/{sha1}/{filename}"),
    ("GcsTarget", {"bucket": "b", "keyPrefix": "res/", "baseUri": "https://cdn.example.com/"},
     "https://cdn.example.com/", "res/{sha1}/{filename}"),
    ("S3Target", {"bucket": "b"}, None, None),  # the object URL would name the region's host
    ("S3Target", {"baseUri": "https://x.example/", "persistentResourceUris": {"pattern": "{baseUri}{md5}"}},
     None, None),
    ("FileSystemSymlinkTarget", {"baseUri": "https://x.example/"}, None, None),
])
def test_neos_bucket_targets_give_the_url_flow_gives(target, options, url, path):
    """Flownative's S3Target and GcsTarget: persistentResourceUris.pattern, keyPrefix, baseUri,
    as their getPublicPersistentResourceUri builds the URL of a persistent resource."""
    from synco_frameworks.neos import remote_target
    from synco_frameworks.neos_resources import remote_path

    found = remote_target(target, options)
    assert found == ((url, path) if url else None)
    if found:
        assert remote_path(found[1], "a" * 40, "my photo.JPG") == path.format(
            sha1="a" * 40, filename="my%20photo.JPG")
