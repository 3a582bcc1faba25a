"""Small Laravel project trees for the tests, written into tmp_path (shaped like Laravel's own
skeletons, nothing copied from real projects), and a PHP-free stand-in for ``php artisan``."""

from __future__ import annotations

from pathlib import Path

from fw_trees import write

# config/database.php as Laravel 10 and older write it: DATABASE_URL, mysql and 'forge' defaults
CONFIG_10 = """\
    <?php

    use Illuminate\\Support\\Str;

    return [

        /*
        | Default Database Connection Name
        */
        'default' => env('DB_CONNECTION', 'mysql'),

        'connections' => [

            'sqlite' => [
                'driver' => 'sqlite',
                'url' => env('DATABASE_URL'),
                'database' => env('DB_DATABASE', database_path('database.sqlite')),
                'prefix' => '',
                'foreign_key_constraints' => env('DB_FOREIGN_KEYS', true),
            ],

            'mysql' => [
                'driver' => 'mysql',
                'url' => env('DATABASE_URL'),
                'host' => env('DB_HOST', '127.0.0.1'),
                'port' => env('DB_PORT', '3306'),
                'database' => env('DB_DATABASE', 'forge'),
                'username' => env('DB_USERNAME', 'forge'),
                'password' => env('DB_PASSWORD', ''),
                'unix_socket' => env('DB_SOCKET', ''),
                'charset' => 'utf8mb4',
                'collation' => 'utf8mb4_unicode_ci',
                'prefix' => '',
                'prefix_indexes' => true,
                'strict' => true,
                'engine' => null,
                'options' => extension_loaded('pdo_mysql') ? array_filter([
                    PDO::MYSQL_ATTR_SSL_CA => env('MYSQL_ATTR_SSL_CA'),
                ]) : [],
            ],

            'pgsql' => [
                'driver' => 'pgsql',
                'url' => env('DATABASE_URL'),
                'host' => env('DB_HOST', '127.0.0.1'),
                'port' => env('DB_PORT', '5432'),
                'database' => env('DB_DATABASE', 'forge'),
                'username' => env('DB_USERNAME', 'forge'),
                'password' => env('DB_PASSWORD', ''),
                'charset' => 'utf8',
                'prefix' => '',
                'prefix_indexes' => true,
                'search_path' => 'public',
                'sslmode' => 'prefer',
            ],

            'sqlsrv' => [
                'driver' => 'sqlsrv',
                'url' => env('DATABASE_URL'),
                'host' => env('DB_HOST', 'localhost'),
                'port' => env('DB_PORT', '1433'),
                'database' => env('DB_DATABASE', 'forge'),
                'username' => env('DB_USERNAME', 'forge'),
                'password' => env('DB_PASSWORD', ''),
            ],
        ],

        'migrations' => 'migrations',

        'redis' => [
            'client' => env('REDIS_CLIENT', 'phpredis'),
            'options' => [
                'prefix' => env('REDIS_PREFIX', Str::slug(env('APP_NAME', 'laravel'), '_').'_database_'),
            ],
        ],
    ];
    """

# Laravel 11's: DB_URL, sqlite by default, a mariadb connection
CONFIG_11 = """\
    <?php

    use Illuminate\\Support\\Str;

    return [
        'default' => env('DB_CONNECTION', 'sqlite'),
        'connections' => [
            'sqlite' => [
                'driver' => 'sqlite',
                'url' => env('DB_URL'),
                'database' => env('DB_DATABASE', database_path('database.sqlite')),
                'prefix' => '',
                'foreign_key_constraints' => env('DB_FOREIGN_KEYS', true),
            ],
            'mariadb' => [
                'driver' => 'mariadb',
                'url' => env('DB_URL'),
                'host' => env('DB_HOST', '127.0.0.1'),
                'port' => env('DB_PORT', '3306'),
                'database' => env('DB_DATABASE', 'laravel'),
                'username' => env('DB_USERNAME', 'root'),
                'password' => env('DB_PASSWORD', ''),
                'unix_socket' => env('DB_SOCKET', ''),
                'charset' => env('DB_CHARSET', 'utf8mb4'),
                'prefix' => '',
            ],
            'pgsql' => [
                'driver' => 'pgsql',
                'url' => env('DB_URL'),
                'host' => env('DB_HOST', '127.0.0.1'),
                'port' => env('DB_PORT', '5432'),
                'database' => env('DB_DATABASE', 'laravel'),
                'username' => env('DB_USERNAME', 'root'),
                'password' => env('DB_PASSWORD', ''),
                'charset' => env('DB_CHARSET', 'utf8'),
                'prefix' => '',
                'search_path' => 'public',
                'sslmode' => 'prefer',
            ],
        ],
    ];
    """

# What 'php artisan config:cache' writes (var_export), cut down to what matters here
CONFIG_CACHE = """\
    <?php return array (
      'app' =>
      array (
        'name' => 'Shop',
        'env' => 'production',
        'url' => 'https://cached.example',
        'providers' =>
        array (
          0 => 'Illuminate\\\\Auth\\\\AuthServiceProvider',
        ),
      ),
      'database' =>
      array (
        'default' => 'pgsql',
        'connections' =>
        array (
          'pgsql' =>
          array (
            'driver' => 'pgsql',
            'url' => NULL,
            'host' => 'cached-db',
            'port' => '5433',
            'database' => 'from_cache',
            'username' => 'cache_user',
            'password' => 'it\\'s',
            'charset' => 'utf8',
            'prefix' => 'c_',
            'sslmode' => 'require',
          ),
        ),
      ),
      'filesystems' =>
      array (
        'disks' =>
        array (
          'public' =>
          array (
            'driver' => 'local',
            'root' => '/srv/shop/storage/app/public',
            'url' => 'https://cdn.example/storage',
          ),
        ),
      ),
    );
    """

# Stand-in for artisan, run as "$PHP artisan tinker --execute=…" (here $PHP is /bin/sh).
ARTISAN_STAND_IN = """#!/bin/sh
echo "APP_ENV=$APP_ENV $1" >> artisan.calls
[ "$1" = tinker ] || { echo "bad call: $*" >&2; exit 1; }
[ -n "$ARTISAN_FAIL" ] && { echo "Class \\"Laravel\\\\Tinker\\\\TinkerServiceProvider\\" not found" >&2; exit 1; }
echo "   DEPRECATED  something the application prints first"
echo 'synco-laravel-config:{"default":"mysql","connections":{"mysql":{"driver":"mysql","url":null,"host":"artisan-db","port":"3307","database":"from_artisan","username":"tinker","password":"'"$DB_PASSWORD"'","unix_socket":"","prefix":"a_","options":{"1009":"/etc/ssl/ca.pem"}}},"app_url":"https://artisan.example","public_url":"https://artisan.example/storage","env":"production"}'
"""


def laravel_tree(root: Path, files: dict[str, str] | None = None, *, config: str | None = CONFIG_10,
                 composer: str = '{"require": {"php": "^8.2", "laravel/framework": "^11.0"}}',
                 stand_in: bool = False) -> Path:
    """artisan, composer.json, config/database.php (unless ``config`` is None), then ``files``."""
    base = {"artisan": ARTISAN_STAND_IN if stand_in else "#!/usr/bin/env php\n<?php\n",
            "composer.json": composer, "public/index.php": "<?php\n"}
    if config is not None:
        base["config/database.php"] = config
    write(root, {**base, **(files or {})})
    (root / "artisan").chmod(0o755)
    return root


def env(**values: str) -> str:
    """A .env text: KEY=value lines."""
    return "".join(f"{key}={value}\n" for key, value in values.items())
