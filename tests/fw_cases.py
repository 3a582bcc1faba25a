"""Tables of cases for tests/test_frameworks.py: .env layers, bad Symfony and synco.yaml input."""

from fw_trees import url

# (files, real environment, expected database name, the file DATABASE_URL came from)
ENV_LAYERS = [
    ({".env": url("env")}, {}, "env", ".env"),
    ({".env.dist": url("dist")}, {}, "dist", ".env.dist"),
    ({".env": url("env"), ".env.dist": url("dist")}, {}, "env", ".env"),
    ({".env": url("env"), ".env.local": url("local")}, {}, "local", ".env.local"),
    ({".env": url("env"), ".env.local": url("local"), ".env.prod": url("prod")}, {}, "prod", ".env.prod"),
    ({".env": url("env"), ".env.prod": url("prod"), ".env.prod.local": url("prodlocal")}, {}, "prodlocal",
     ".env.prod.local"),
    ({".env": url("env"), ".env.dev": url("dev")}, {}, "env", ".env"),  # the server defaults to prod
    ({".env": "APP_ENV=dev\n" + url("env"), ".env.dev": url("dev")}, {}, "dev", ".env.dev"),
    ({".env": url("env"), ".env.local": "APP_ENV=staging\n", ".env.staging": url("staging")}, {}, "staging",
     ".env.staging"),
    ({".env": url("env"), ".env.local": url("local"), ".env.test": url("test")}, {"APP_ENV": "test"}, "test",
     ".env.test"),
    ({".env": url("env"), ".env.local": url("local")}, {"APP_ENV": "test"}, "env", ".env"),  # no .env.local
    ({".env": url("env"), ".env.prod.local": url("prodlocal")},
     {"DATABASE_URL": "mysql://app@127.0.0.1/real"}, "real", "the environment"),
]

# (files, start of the error message)
SYMFONY_BAD = [
    ({".env": "DATABASE_URL=mysql://u:p@h:3306/\n"},
     ".env: DATABASE_URL mysql://u@h:3306/ names no database"),
    ({".env": url("x"), ".env.local": "DATABASE_URL=mysql://u:p@h/?serverVersion=8\n"},
     ".env.local: DATABASE_URL mysql://u@h:3306/ names no database"),
    ({".env": 'DATABASE_URL="sqlite:///:memory:"\n'}, ".env: DATABASE_URL: names no SQLite database file"),
    ({".env": "DATABASE_URL=oracle://u:p@h/x\n"}, ".env: DATABASE_URL: unsupported database URL (oracle)"),
    ({".env": "A=1\nB = 2\n"}, ".env, line 2: whitespace after the variable name B"),
    ({".env": "A=two words\n"}, ".env, line 1: a value containing spaces must be surrounded by quotes"),
    ({".env": "A=1\nB=\"open\n\n"}, ".env, line 2: missing quote to end the value"),
    ({".env": "A=${B\n"}, ".env, line 1: unclosed braces on variable expansion"),
    ({"composer.json": '{"require": }'}, "composer.json, line 1: invalid JSON"),
]

# (synco.yaml text, environment, start of the error message)
SYNCO_YAML_BAD = [
    ("database: [\n", {}, "synco.yaml, line 2: invalid YAML"),
    ("- 1\n", {}, "synco.yaml: the top level must be a mapping"),
    ("databse: mysql://u@h/x\n", {}, "synco.yaml: unknown key 'databse'"),
    ("framework: drupal\n", {}, "synco.yaml: framework: 'drupal' is not known"),
    ("database: {url: 'mysql://u:${DB_PASSWORD}@h/x'}\n", {},
     "synco.yaml: database.url: ${DB_PASSWORD} is not set"),
    ("database: {url: 'mysql://u@h/'}\n", {}, "synco.yaml: database.url names no database"),
    ("database: {url: 'sqlite://host/x.db'}\n", {}, "synco.yaml: database.url: a SQLite URL names a file on this machine"),
    ("database: {host: h}\n", {}, "synco.yaml: database: must be a mapping with the key 'url'"),
    ("files: {db: x}\n", {}, "synco.yaml: files.db: is not a valid set name"),
    ("files: {up: {path: x, public: maybe}}\n", {}, "synco.yaml: files.up.public: must be true or false"),
    ("files: {up: {public: true}}\n", {}, "synco.yaml: files.up: no path, and no such set was detected"),
    ("exclude: audit\n", {}, "synco.yaml: exclude: must be a list of table names"),
]
