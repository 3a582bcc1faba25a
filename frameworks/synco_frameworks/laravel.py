"""Laravel: ``artisan`` next to ``composer.json``.

The database is the default connection of Laravel's ``database`` configuration, read the way
Laravel reads it, without PHP:

* the configuration cache (``bootstrap/cache/config.php``, or ``$APP_CONFIG_CACHE``) when there is
  one: Laravel then reads neither ``.env`` nor ``config/``;
* otherwise ``config/database.php`` (Laravel 11 and later fall back on the framework's own copy in
  ``vendor/laravel/framework/config/``, for the file and for a connection it does not define;
  without either, Laravel 11's defaults), with ``env('KEY', default)``, ``database_path()`` and the
  other path helpers, and ``.`` evaluated; a value only PHP can compute is read as Laravel's own
  configuration reads that key (a note says so);
* ``env()`` sees the real environment first, then ``.env`` (``.env.$APP_ENV`` instead when
  ``APP_ENV`` is set in the real environment and that file exists), read as phpdotenv reads it
  (``dotenv.parse_php``); ``true``, ``false``, ``null``, ``empty`` and quotes are mapped as
  Laravel's ``Env::get`` maps them.

With ``SYNCO_LARAVEL_ARTISAN=1`` and a PHP interpreter, Laravel answers itself instead
(``php artisan tinker --execute …``, which needs laravel/tinker); when that fails, the files are
read and a note says why.

A ``url`` (``DB_URL``; ``DATABASE_URL`` in configurations before Laravel 11) is merged over the
connection as Laravel's ConfigurationUrlParser merges it. Drivers: mysql, mariadb, pgsql, sqlite;
sqlsrv is refused. File sets: ``storage/app`` without ``storage/app/public`` (``storage``) and
``storage/app/public`` (``storage-public``; public, fetched from ``APP_URL/storage/``, when
``public/storage`` links to it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from synco_source import dburl
from synco_source.dburl import DatabaseUrl
from synco_source.errors import UsageError

from . import doctrine, dotenv, phparray, yamlfile
from .base import Context, FileSelection, Project

NAME = "laravel"
DRIVERS = {"mysql": "mysql", "mariadb": "mysql", "pgsql": "postgresql", "sqlite": "sqlite"}
SCHEMES = {"mssql": "sqlsrv", "mysql2": "mysql", "postgres": "pgsql", "postgresql": "pgsql",
           "sqlite3": "sqlite"}  # ConfigurationUrlParser's aliases
PG_TLS = ("sslmode", "sslrootcert", "sslcert", "sslkey")  # the PostgresConnector passes these on
STORAGE, PUBLIC = "storage", "storage-public"
CONFIG = "config/database.php"
VENDOR_CONFIG = "vendor/laravel/framework/config/database.php"
CONFIG_CACHE = "bootstrap/cache/config.php"
ARTISAN_ENV = "SYNCO_LARAVEL_ARTISAN"
TIMEOUT = 120
MARKER = "synco-laravel-config:"
LOCAL_HOSTS = ("localhost", "")  # Laravel's default APP_URL is http://localhost
PATH_HELPERS = {"base_path": "", "database_path": "database", "storage_path": "storage",
                "public_path": "public", "app_path": "app", "resource_path": "resources",
                "config_path": "config", "lang_path": "lang"}

# Smart exclusions: rows a developer's copy can do without (the tables are still created).
SKIP_TABLE_DATA = {
    "sessions": "sessions", "cache": "the cache", "cache_locks": "cache locks", "jobs": "queued jobs",
    "job_batches": "job batches", "failed_jobs": "failed jobs", "telescope_*": "Telescope's entries",
    "pulse_*": "Pulse's metrics",
}

# Laravel 11's own config/database.php (vendor/laravel/framework/config/), as far as synco reads it.
DEFAULT_CONFIG = """<?php return [
    'default' => env('DB_CONNECTION', 'sqlite'),
    'connections' => [
        'sqlite' => ['driver' => 'sqlite', 'url' => env('DB_URL'),
            'database' => env('DB_DATABASE', database_path('database.sqlite')), 'prefix' => ''],
        'mysql' => ['driver' => 'mysql', 'url' => env('DB_URL'), 'host' => env('DB_HOST', '127.0.0.1'),
            'port' => env('DB_PORT', '3306'), 'database' => env('DB_DATABASE', 'laravel'),
            'username' => env('DB_USERNAME', 'root'), 'password' => env('DB_PASSWORD', ''),
            'unix_socket' => env('DB_SOCKET', ''), 'charset' => env('DB_CHARSET', 'utf8mb4'),
            'prefix' => '', 'options' => [1009 => env('MYSQL_ATTR_SSL_CA')]],
        'mariadb' => ['driver' => 'mariadb', 'url' => env('DB_URL'), 'host' => env('DB_HOST', '127.0.0.1'),
            'port' => env('DB_PORT', '3306'), 'database' => env('DB_DATABASE', 'laravel'),
            'username' => env('DB_USERNAME', 'root'), 'password' => env('DB_PASSWORD', ''),
            'unix_socket' => env('DB_SOCKET', ''), 'charset' => env('DB_CHARSET', 'utf8mb4'),
            'prefix' => '', 'options' => [1009 => env('MYSQL_ATTR_SSL_CA')]],
        'pgsql' => ['driver' => 'pgsql', 'url' => env('DB_URL'), 'host' => env('DB_HOST', '127.0.0.1'),
            'port' => env('DB_PORT', '5432'), 'database' => env('DB_DATABASE', 'laravel'),
            'username' => env('DB_USERNAME', 'root'), 'password' => env('DB_PASSWORD', ''),
            'charset' => env('DB_CHARSET', 'utf8'), 'prefix' => '', 'sslmode' => 'prefer'],
        'sqlsrv' => ['driver' => 'sqlsrv', 'url' => env('DB_URL'), 'host' => env('DB_HOST', 'localhost'),
            'port' => env('DB_PORT', '1433'), 'database' => env('DB_DATABASE', 'laravel')],
    ],
];
"""
DEFAULT_NAME = "Laravel's defaults"

# What Laravel prints from inside the application when synco asks it (php artisan tinker).
ARTISAN_CODE = (
    f"echo PHP_EOL.'{MARKER}'.json_encode(['default' => config('database.default'), "
    "'connections' => config('database.connections'), 'app_url' => config('app.url'), "
    "'public_url' => config('filesystems.disks.public.url'), "
    "'env' => app()->environment()]).PHP_EOL;")

_MISSING = object()


class Unknown:
    """A configuration value only PHP could compute."""

    def __init__(self, text: str, line: int) -> None:
        self.text, self.line = text, line

    def __str__(self) -> str:
        return self.text


@dataclass
class Env:
    """What ``env()`` sees: the real environment over the one .env file Laravel reads."""

    real: Mapping[str, str]
    values: dict[str, str] = field(default_factory=dict)
    file: str | None = None

    def raw(self, key: str) -> str | None:
        return self.real[key] if key in self.real else self.values.get(key)

    def where(self, key: str) -> str:
        return "the environment" if key in self.real else (self.file or "nowhere")

    def get(self, key: str, default: object = _MISSING) -> object:
        """Laravel's ``env(key)``: ``_MISSING`` (or ``default``) when the key is not set."""
        raw = self.raw(key)
        return default if raw is None else env_value(raw)


def env_value(raw: str) -> object:
    """A variable's text as Laravel's ``Env::get`` returns it."""
    low = raw.lower()
    if low in ("true", "(true)"):
        return True
    if low in ("false", "(false)"):
        return False
    if low in ("empty", "(empty)"):
        return ""
    if low in ("null", "(null)"):
        return None
    quoted = re.fullmatch(r"(['\"])(.*)\1", raw, re.S)
    return quoted.group(2) if quoted else raw


def php_string(value: object) -> str:
    """PHP's string conversion of a scalar."""
    if value is True:
        return "1"
    if value is None or value is False:
        return ""
    return str(value)


def resolve_env(root: Path, real: Mapping[str, str]) -> Env:
    """The .env file Laravel reads: ``.env.$APP_ENV`` when APP_ENV is set in the real environment
    and that file exists (instead of ``.env``, not over it), else ``.env``."""
    env = Env(real=real)
    name = ".env"
    app_env = env_value(real["APP_ENV"]) if "APP_ENV" in real else None
    if app_env and (root / f".env.{php_string(app_env)}").is_file():
        name = f".env.{php_string(app_env)}"
    if (root / name).is_file():
        env.values = dotenv.parse_php(yamlfile.read_text(root / name, name), name, real_env=real)
        env.file = name
    return env


# --- the configuration, as files or as Laravel computed it --------------------------------------

@dataclass
class Config:
    """The ``database`` configuration: ``tree`` holds plain values, or (read from PHP source)
    ``phparray`` nodes that ``value`` evaluates."""

    name: str  # where it came from, for messages
    tree: dict
    fallback: "Config | None" = None  # the framework's own file, for connections this one lacks
    app_url: object = _MISSING  # app.url and filesystems.disks.public.url, when known here
    public_url: object = _MISSING


class Evaluator:
    """Evaluates ``phparray`` nodes with Laravel's helpers; remembers where env() values came from."""

    def __init__(self, root: Path, env: Env) -> None:
        self.root, self.env = root, env

    def value(self, node: object, source: str) -> tuple[object, str]:
        """(value or Unknown, where it came from: an env() variable's file, or "")."""
        if isinstance(node, phparray.Call) and node.name == "env" and node.args:
            key, _ = self.value(node.args[0], source)
            if not isinstance(key, str):
                return Unknown(f"env({key})", node.line), ""
            found = self.env.get(key)
            if found is not _MISSING:
                return found, f"{key} in {self.env.where(key)}"
            if len(node.args) < 2:
                return None, f"{key} is not set, and {source} gives no default"
            default, _ = self.value(node.args[1], source)
            return default, f"{key} not set, so the default"
        if isinstance(node, phparray.Call) and node.name in PATH_HELPERS and len(node.args) <= 1:
            sub, _ = self.value(node.args[0], source) if node.args else ("", source)
            if isinstance(sub, Unknown):
                return sub, ""
            base = self.root / PATH_HELPERS[node.name]
            return str(base / php_string(sub)) if php_string(sub) else str(base), ""
        if isinstance(node, phparray.Concat):
            parts = [self.value(part, source)[0] for part in node.parts]
            unknown = next((p for p in parts if isinstance(p, Unknown)), None)
            return (unknown or "".join(php_string(p) for p in parts)), ""
        if isinstance(node, phparray.Call):
            return Unknown(f"{node.name}(…)", node.line), ""
        if isinstance(node, phparray.Opaque):
            return Unknown(node.text, node.line), ""
        if isinstance(node, dict):
            return {(key.text.replace(" ", "") if isinstance(key, phparray.Opaque) else key):
                    self.value(item, source)[0] for key, item in node.items()}, ""
        return node, ""  # a literal: where it stands is said by the message


def _read_config(root: Path, rel: str, notes: list[str]) -> dict | None:
    path = root / rel
    if not path.is_file():
        return None
    try:
        tree = phparray.parse_return_value(yamlfile.read_text(path, rel), rel)
    except UsageError as exc:
        notes.append(f"{exc}: read as Laravel's own {CONFIG} instead")
        return None
    if not isinstance(tree, dict):
        notes.append(f"{rel} does not return an array: read as Laravel's own {CONFIG} instead")
        return None
    return tree


def from_files(root: Path, notes: list[str]) -> Config:
    vendor = _read_config(root, VENDOR_CONFIG, notes)
    builtin = Config(DEFAULT_NAME, phparray.parse_return_value(DEFAULT_CONFIG, DEFAULT_NAME))
    framework = Config(VENDOR_CONFIG, vendor) if vendor is not None else builtin
    own = _read_config(root, CONFIG, notes)
    if own is None:
        return framework
    # Laravel 11 and later merge the framework's connections under the project's
    return Config(CONFIG, own, fallback=framework if vendor is not None else None)


def from_cache(root: Path, real: Mapping[str, str]) -> Config | None:
    """Laravel's configuration cache (``php artisan config:cache``), when there is one."""
    named = real.get("APP_CONFIG_CACHE")
    rel = named if named else CONFIG_CACHE
    path = Path(rel) if rel.startswith("/") else root / rel
    if not path.is_file():
        return None
    name = str(rel)
    try:
        tree = phparray.parse_return_value(yamlfile.read_text(path, name), name)
    except UsageError as exc:
        raise UsageError(str(exc), hint="Laravel reads its configuration from this cache: run "
                         "'php artisan config:cache' again, or set database.url in synco.yaml") from None
    database = tree.get("database") if isinstance(tree, dict) else None
    if not isinstance(database, dict):
        raise UsageError(f"{name}: the cached configuration has no 'database' array",
                         hint="run 'php artisan config:cache' again, or set database.url in synco.yaml")
    app = tree.get("app") if isinstance(tree.get("app"), dict) else {}
    disks = tree.get("filesystems", {}).get("disks", {}) if isinstance(tree.get("filesystems"), dict) else {}
    public = disks.get("public") if isinstance(disks, dict) and isinstance(disks.get("public"), dict) else {}
    return Config(name, database, app_url=app.get("url", _MISSING), public_url=public.get("url", _MISSING))


class ArtisanFailed(Exception):
    """php artisan tinker did not answer with the configuration."""


def from_artisan(ctx: Context, php: str) -> Config:
    try:
        run = subprocess.run([php, "artisan", "tinker", f"--execute={ARTISAN_CODE}"], cwd=ctx.root,
                             env=dict(ctx.env), capture_output=True, text=True, timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ArtisanFailed(str(exc)) from None
    line = next((line for line in run.stdout.splitlines() if line.startswith(MARKER)), None)
    if run.returncode != 0 or line is None:
        last = (run.stderr.strip() or run.stdout.strip() or f"exit status {run.returncode}").splitlines()[-1]
        raise ArtisanFailed(f"exit status {run.returncode}: {last[:200]}")
    try:
        data = json.loads(line[len(MARKER):])
    except json.JSONDecodeError:
        raise ArtisanFailed("its output is not the configuration") from None
    if not isinstance(data, dict) or not isinstance(data.get("connections"), dict):
        raise ArtisanFailed("its output has no database connections")
    tree = {"default": data.get("default"), "connections": data["connections"]}
    return Config(f"{php} artisan tinker", tree, app_url=data.get("app_url"),
                  public_url=data.get("public_url"))


# --- the connection ---------------------------------------------------------------------------------

@dataclass
class Connection:
    name: str
    values: dict  # plain values, after the URL was merged
    origins: dict[str, str]  # key → where its value came from
    source: str  # the configuration it is in


def connection(config: Config, evaluator: Evaluator, notes: list[str]) -> Connection:
    """The default connection of ``config``, evaluated; computed values read as Laravel's own
    configuration reads them."""
    builtin = phparray.parse_return_value(DEFAULT_CONFIG, DEFAULT_NAME)
    default, origin = evaluator.value(config.tree.get("default"), config.name)
    if isinstance(default, Unknown):
        notes.append(f"{config.name}, line {default.line}: the default connection is computed; "
                     f"read as Laravel's own {CONFIG} reads it (DB_CONNECTION, else sqlite)")
        default, origin = evaluator.value(builtin["default"], DEFAULT_NAME)
    if not isinstance(default, str) or not default:
        raise UsageError(f"{config.name}: no default database connection ({origin})",
                         hint="set DB_CONNECTION in .env, or set database.url in synco.yaml")
    found, source = None, config
    while source is not None and found is None:
        connections = source.tree.get("connections")
        found = connections.get(default) if isinstance(connections, dict) else None
        if found is None:
            source = source.fallback
    if not isinstance(found, dict):
        raise UsageError(f"{config.name}: database connection {default!r} ({origin}) is not configured",
                         hint=f"set DB_CONNECTION to one of the connections in {config.name}, "
                              "or set database.url in synco.yaml")
    values, origins = {}, {"default": origin}
    for key, node in found.items():
        value, where = evaluator.value(node, source.name)
        driver = values.get("driver") if isinstance(values.get("driver"), str) else default
        standard = builtin["connections"].get(driver, builtin["connections"]["mysql"])
        if key == "options" and isinstance(value, Unknown) and "MYSQL_ATTR_SSL_CA" in value.text:
            value, where = evaluator.value(standard.get(key, {}), DEFAULT_NAME)  # the stock expression
        elif isinstance(value, Unknown):
            if key in standard:
                value, where = evaluator.value(standard[key], DEFAULT_NAME)
                notes.append(f"{source.name}, line {_line(node)}: connections.{default}.{key} is computed; "
                             f"read as Laravel's own {CONFIG} reads it ({where})")
        values[str(key)], origins[str(key)] = value, where
    url = values.get("url")
    if isinstance(url, str) and url:
        merged = _url_options(url, f"{source.name}: connections.{default}.url ({origins['url']})")
        values.update(merged)
        origins.update({key: f"the URL in {origins['url']}" for key in merged})
    return Connection(default, values, origins, source.name)


def _line(node: object) -> int:
    return getattr(node, "line", 0)


def _url_options(text: str, where: str) -> dict:
    """The URL's parts as Laravel's ConfigurationUrlParser merges them over a connection."""
    text = re.sub(r"^(sqlite3?):///", r"\1://null/", text.strip())
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise UsageError(f"{where}: the database URL is malformed",
                         hint="write it like mysql://user:password@host:3306/name") from None
    found = {"driver": parts.scheme.lower() or None, "host": parts.hostname, "port": port,
             "username": parts.username, "password": parts.password,
             "database": parts.path[1:] if parts.path not in ("", "/") else None}
    out: dict = {}
    for key, raw in found.items():
        value = _native(unquote(raw)) if isinstance(raw, str) else raw
        if value is not None:  # array_filter(…, not null): what the URL lacks stays as it was
            out[key] = SCHEMES.get(value, value) if key == "driver" else value
    out.update((key, _native(value)) for key, value in parse_qsl(unquote(parts.query)))
    return out


def _native(text: str) -> object:
    """ConfigurationUrlParser's parseStringsToNativeTypes, for a scalar: JSON literals become
    PHP values (``null`` drops the part; ``true`` is "1"; ``1.50`` is "1.5"), the rest stays."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if value is None or isinstance(value, (bool, str)):
        return value if isinstance(value, str) else (php_string(value) if value is not None else None)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value) if isinstance(value, int) else text


def database(conn: Connection, root: Path) -> DatabaseUrl:
    values, origins = conn.values, conn.origins
    where = f"{conn.source}: connections.{conn.name}"

    def fail(key: str, problem: str, hint: str) -> UsageError:
        origin = f" ({origins[key]})" if origins.get(key) else ""
        return UsageError(f"{where}.{key}{origin} {problem}", hint=hint)

    driver = values.get("driver")
    if driver == "sqlsrv":
        raise fail("driver", "is sqlsrv: SQL Server is not supported",
                   "use a MySQL, MariaDB, PostgreSQL or SQLite connection, or set database.url in synco.yaml")
    if not isinstance(driver, str) or driver not in DRIVERS:
        raise fail("driver", f"is {php_string(driver)!r}, which synco does not support",
                   f"synco reads the drivers {', '.join(DRIVERS)}; or set database.url in synco.yaml")
    engine = DRIVERS[driver]
    name = values.get("database")
    if isinstance(name, Unknown) or not php_string(name):
        raise fail("database", "gives no database name",
                   "set DB_DATABASE in .env, or set database.url in synco.yaml")
    name = php_string(name)
    if engine == "sqlite":
        if name == ":memory:" or "mode=memory" in name:
            raise fail("database", "is an in-memory SQLite database: there is nothing to copy",
                       "point DB_DATABASE at a database file")
        # SQLiteConnector: realpath() from the working directory (artisan's is the project
        # folder), else base_path()
        return DatabaseUrl(engine="sqlite", host="", port=0, user="", database=str((root / name).resolve()))
    port = values.get("port")
    if port in (None, "", _MISSING):
        port = dburl.DEFAULT_PORTS[engine]
    elif not re.fullmatch(r"\s*\d+\s*", php_string(port)):
        raise fail("port", f"is {php_string(port)!r}, not a number", "write the port as a number")
    host = php_string(values.get("host")) if not isinstance(values.get("host"), Unknown) else ""
    socket = ""
    if engine == "mysql" and isinstance(values.get("unix_socket"), str):
        socket = values["unix_socket"]
    if engine == "postgresql" and host.startswith("/"):  # libpq: a host that is a folder is a socket
        socket, host = host, ""
    params: dict[str, str] = {}
    if isinstance(values.get("charset"), str) and values["charset"]:
        params["charset"] = values["charset"]
    if engine == "postgresql":
        params.update({key: php_string(values[key]) for key in PG_TLS
                       if isinstance(values.get(key), (str, int)) and php_string(values[key])})
    else:
        options = values.get("options")
        options = {k: v for k, v in options.items() if not isinstance(v, Unknown)} \
            if isinstance(options, dict) else {}
        params.update(doctrine.tls_options(options))
    try:
        checked = dburl.options(engine, params.items())
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}", hint=exc.hint) from None
    password = values.get("password")
    return DatabaseUrl(engine=engine, host=host or "localhost", port=int(php_string(port)),
                       user=_plain(values.get("username")), password=_plain(password), database=name,
                       socket=socket, params=checked)


def _plain(value: object) -> str:
    return "" if isinstance(value, Unknown) or value is _MISSING else php_string(value)


# --- the framework ------------------------------------------------------------------------------------

class Laravel:
    name = NAME

    def matches(self, root: Path) -> str | None:
        if not ((root / "artisan").is_file() and (root / "composer.json").is_file()):
            return None
        return "artisan, composer.json" + (" (laravel/framework)" if _requires_laravel(root) else "")

    def project(self, ctx: Context) -> Project:
        env = resolve_env(ctx.root, ctx.env)
        app_env = php_string(env.get("APP_ENV", "production")) or "production"
        project = Project(framework=NAME, root=ctx.root, context=app_env, web_root=ctx.root / "public")
        project.notes.append(f"Laravel, APP_ENV {app_env}; environment: "
                             f"{env.file or 'no .env file'} (the real environment wins)")
        notes: list[str] = []
        config = self._config(ctx, env, notes)
        evaluator = Evaluator(ctx.root, env)
        conn = None
        try:  # read even without a database wanted: its table prefix names the exclusions
            conn = connection(config, evaluator, notes)
        except UsageError:
            if ctx.want_database:
                raise
        if ctx.want_database and conn is not None:
            project.database = database(conn, ctx.root)
            project.notes.append(f"database: connection {conn.name} of {conn.source} "
                                 f"({conn.origins['default']})")
        app_url = config.app_url if config.app_url is not _MISSING else env.get("APP_URL", None)
        project.base_url = php_string(app_url) or None
        project.notes += notes
        _file_sets(project, ctx, config)
        prefix = conn.values.get("prefix") if conn else ""
        prefix = prefix if isinstance(prefix, str) else ""
        if not ctx.all_data:
            project.skip_table_data = [prefix + table for table in SKIP_TABLE_DATA]
            project.notes.append("left out (--all copies them): rows of " + ", ".join(
                f"{prefix}{table} ({why})" for table, why in SKIP_TABLE_DATA.items()))
        if ctx.side == "local":
            _post_import(project, ctx)
        return project

    def _config(self, ctx: Context, env: Env, notes: list[str]) -> Config:
        asked = php_string(env_value(ctx.env.get(ARTISAN_ENV, ""))) not in ("", "0")
        if asked and not ctx.php:
            notes.append(f"{ARTISAN_ENV} is set, but there is no PHP interpreter ($PHP, php on $PATH): "
                         "read the files instead")
        if asked and ctx.php:
            try:
                config = from_artisan(ctx, ctx.php)
                notes.append(f"configuration asked Laravel: {config.name}")
                return config
            except ArtisanFailed as exc:
                notes.append(f"php artisan tinker failed ({exc}); read the files instead")
        cached = from_cache(ctx.root, ctx.env)
        if cached is not None:
            notes.append(f"configuration from Laravel's cache {cached.name} (.env and config/ are not "
                         "read while it is there, as in Laravel)")
            return cached
        config = from_files(ctx.root, notes)
        notes.append(f"configuration read from {config.name} without PHP")
        return config


def _requires_laravel(root: Path) -> bool:
    try:
        data = json.loads((root / "composer.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    requires = data.get("require") if isinstance(data, dict) else None
    return isinstance(requires, dict) and "laravel/framework" in requires


def _public_url(project: Project, config: Config) -> str | None:
    """Where the web server serves storage/app/public: the public disk's URL (APP_URL/storage)."""
    url = config.public_url if isinstance(config.public_url, str) and config.public_url else (
        project.base_url.rstrip("/") + "/storage" if project.base_url else None)
    if not url or not url.startswith(("http://", "https://")):
        return None
    host = urlsplit(url).hostname or ""
    if host in LOCAL_HOSTS:
        return None
    return url.rstrip("/") + "/"


def _file_sets(project: Project, ctx: Context, config: Config) -> None:
    storage = ctx.path("storage/app")
    public = storage / "public"
    link = ctx.root / "public" / "storage"
    linked = link.is_symlink() and os.path.realpath(link) == os.path.realpath(public)
    if ctx.side == "local" or storage.is_dir():
        project.file_sets[STORAGE] = storage
    if ctx.side == "local" or public.is_dir():
        project.file_sets[PUBLIC] = public
        if linked:
            project.public_sets.add(PUBLIC)
    if ctx.side != "source":
        return
    if STORAGE in project.file_sets:
        project.file_selectors[STORAGE] = lambda select, tables: FileSelection(
            include=_files(storage, skip="public"),
            notes=[f"file set {STORAGE}: storage/app without public/ (the set {PUBLIC})"])
    url = _public_url(project, config) if linked else None
    if PUBLIC in project.file_sets and url:
        project.file_selectors[PUBLIC] = lambda select, tables: _public_selection(public, url)
    if PUBLIC in project.file_sets:
        project.notes.append(
            f"file set {PUBLIC}: storage/app/public ("
            + (f"public, fetched from {url}" if url else
               "public, but APP_URL is not a public URL: sent in the session" if linked else
               "not public: public/storage does not link to it") + ")")


def _files(root: Path, skip: str | None = None) -> set[str]:
    """The regular files under ``root`` (links not followed), without the top folder ``skip``."""
    out: set[str] = set()
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            entries = list(os.scandir(root / rel if rel else root))
        except OSError:  # vanished, or unreadable: the index says so when it reads the set
            continue
        for entry in entries:
            path = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir(follow_symlinks=False):
                if path != skip:
                    stack.append(path)
            elif entry.is_file(follow_symlinks=False):
                out.add(path)
    return out


def _public_selection(folder: Path, url: str) -> FileSelection:
    """Every file of storage/app/public the web server serves (not dotfiles, which web servers
    refuse) is fetched from the site; the others travel in the session."""
    files = _files(folder)
    public = {rel: quote(rel) for rel in files if not any(p.startswith(".") for p in rel.split("/"))}
    return FileSelection(include=files, public=public, public_url=url,
                         notes=[f"{PUBLIC}: {len(public)} of {len(files)} files fetched from {url} "
                                "by the client"])


def _post_import(project: Project, ctx: Context) -> None:
    artisan = [ctx.php or "php", "artisan"]
    project.post_import = [artisan + ["optimize:clear"]]
    if not os.path.lexists(ctx.root / "public" / "storage"):
        project.post_import.append(artisan + ["storage:link"])
    project.post_import_runnable = ctx.php is not None


FRAMEWORK = Laravel()
