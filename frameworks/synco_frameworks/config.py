"""``synco.yaml`` (or ``.synco.yaml``) in the project folder: override or add anything.

```yaml
framework: neos            # force a framework (or "generic") instead of detecting one
database:
  url: mysql://app:${DB_PASSWORD}@127.0.0.1/shop   # ${VAR} and ${VAR:-default} from the environment
base_url: https://shop.example.com/       # the URL web_root is served at
web_root: public                          # (default: the framework's, Web/ or public/)
files:
  uploads: public/uploads                 # NAME: PATH
  media: {path: var/media, public: false}
  var-uploads: null                       # drop a detected set
skip_table_data: [cache_items]            # always: rows stay behind, the structure is copied
exclude: [audit_*]                        # extra smart exclusions: copied anyway with --all
after_import: [php bin/console app:anonymize]   # shell lines run locally after an import
local_hosts: [db]                         # database hosts that are this machine (synco/guard.py)
tables:                                   # privacy (server side; docs/privacy.md)
  sessions: skip                          # structure only
  audit_log: {where: "created_at > NOW() - INTERVAL 30 DAY"}
  orders: {limit: 10000, order: id desc}
columns:
  users.email: email                      # a fake (anonymize.KINDS), keep, {value: ...}, {null: true}
  "*.ip_address": ipv4
anonymize: strict                         # refuse to publish personal-looking columns without a rule
anonymize_secret: ${SYNCO_ANONYMIZE_SECRET}   # read on the server only
remotes:                                  # for 'synco pull NAME' (the client only)
  production: {url: ssh://deploy@shop.example.com/var/www/shop}
  k8s: {url: kubectl://shop-prod/deploy:shop, path: /app, container: php, context: prod}
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from synco_source import anonymize, dburl
from synco_source.errors import UsageError

from . import yamlfile
from .base import Context, Project
from .generic import RESERVED, SET_NAME_RE

NAMES = ("synco.yaml", ".synco.yaml")
KEYS = ("after_import", "anonymize", "anonymize_secret", "base_url", "columns", "database", "exclude",
        "files", "framework", "local_hosts", "remotes", "skip_table_data", "tables", "web_root")
REMOTE_KEYS = ("url", "path", "container", "context", "exec")
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class FileSpec:
    path: str | None  # None: keep the detected folder
    public: bool | None  # None: keep the detected flag (False for a new set)


@dataclass
class RemoteSpec:
    """A remote of ``synco pull``: a URL (ssh://, kubectl://, docker://) or an ``exec`` prefix;
    ``path`` adds or replaces the URL's folder."""

    name: str
    url: str | None = None
    path: str | None = None
    container: str | None = None
    context: str | None = None
    exec: str | None = None


@dataclass
class Config:
    name: str  # the file's name, for messages
    framework: str | None = None
    database_url: str | None = None
    base_url: str | None = None
    web_root: str | None = None
    files: dict[str, FileSpec | None] = field(default_factory=dict)  # None removes a set
    skip_table_data: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    local_hosts: list[str] = field(default_factory=list)  # the project's own database hosts
    remotes: dict[str, RemoteSpec] = field(default_factory=dict)
    after_import: list[str] = field(default_factory=list)  # shell lines, run in the project folder
    # privacy (docs/privacy.md); the secret as written, ${VAR} resolved on the server only
    tables: list[anonymize.TableRule] = field(default_factory=list)
    columns: list[anonymize.ColumnRule] = field(default_factory=list)
    strict: bool = False
    anonymize_secret: str | None = None


def find(root: Path) -> Path | None:
    found = [root / name for name in NAMES if (root / name).is_file()]
    if len(found) > 1:
        raise UsageError(f"both {NAMES[0]} and {NAMES[1]} are in {root}",
                         hint="keep one of them")
    return found[0] if found else None


def load(root: Path, env: Mapping[str, str]) -> Config | None:
    """The project's synco.yaml, checked and with ${VAR} resolved; None when there is none."""
    path = find(root)
    if path is None:
        return None
    name = path.name
    data = yamlfile.load(path, name)
    if data is None:
        return Config(name=name)
    if not isinstance(data, dict):
        raise UsageError(f"{name}: the top level must be a mapping of settings",
                         hint=f"known keys: {', '.join(KEYS)}")
    unknown = sorted(str(key) for key in data if key not in KEYS)
    if unknown:
        raise UsageError(f"{name}: unknown key {unknown[0]!r}", hint=f"known keys: {', '.join(KEYS)}")
    reader = _Reader(name, env)
    return Config(
        name=name,
        framework=reader.string(data, "framework"),
        database_url=reader.database(data.get("database")),
        base_url=reader.string(data, "base_url"),
        web_root=reader.string(data, "web_root"),
        files=reader.files(data.get("files")),
        skip_table_data=reader.names(data, "skip_table_data"),
        exclude=reader.names(data, "exclude"),
        local_hosts=reader.names(data, "local_hosts", "host names", "[db, mariadb]"),
        remotes=reader.remotes(data.get("remotes")),
        after_import=reader.names(data, "after_import", "commands (one shell line each)",
                                  "['php bin/console app:anonymize']"),
        tables=reader.rules(data, "tables", anonymize.table_rule),
        columns=reader.rules(data, "columns", anonymize.column_rule),
        strict=reader.strict(data.get("anonymize")),
        anonymize_secret=reader.raw(data, "anonymize_secret"),
    )


class _Reader:
    """Type checks with messages that name the file and the key."""

    def __init__(self, name: str, env: Mapping[str, str]) -> None:
        self.name, self.env = name, env

    def fail(self, key: str, problem: str, hint: str) -> UsageError:
        return UsageError(f"{self.name}: {key}: {problem}", hint=hint)

    def expand(self, text: str, key: str) -> str:
        def one(match: re.Match) -> str:
            value = self.env.get(match.group(1), "")
            if value == "" and match.group(2) is not None:
                return match.group(2)
            if match.group(1) not in self.env:
                raise self.fail(key, f"${{{match.group(1)}}} is not set in the environment",
                                f"set {match.group(1)}, or give a default: ${{{match.group(1)}:-value}}")
            return value
        return ENV_REF.sub(one, text)

    def string(self, data: dict, key: str, label: str | None = None) -> str | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise self.fail(label or key, "must be a string", "write it as a single value")
        return self.expand(str(value), label or key)

    def database(self, value: object) -> str | None:
        if value is None or isinstance(value, str):
            return self.string({"database": value}, "database")
        if not isinstance(value, dict) or set(value) - {"url"}:
            raise self.fail("database", "must be a mapping with the key 'url'",
                            "write database: {url: mysql://user:password@host/name}")
        return self.string(value, "url", "database.url")

    def names(self, data: dict, key: str, what: str = "table names",
              example: str = "[table_a, table_b]") -> list[str]:
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, f"must be a list of {what}", f"write {key}: {example}")
        return list(value)

    def rules(self, data: dict, key: str, make) -> list:
        """``tables:`` or ``columns:``, each entry checked by ``make`` (anonymize.table_rule, ...)."""
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, dict):
            example = "{sessions: skip}" if key == "tables" else "{users.email: email}"
            raise self.fail(key, "must be a mapping of rules", f"write {key}: {example}")
        found = []
        for name, rule in value.items():
            try:
                found.append(make(str(name), rule, self.name))
            except ValueError as exc:
                problem, hint = exc.args
                raise self.fail(f"{key}.{name}", problem, hint) from None
        return found

    def strict(self, value: object) -> bool:
        if value is None or value is False or value == "off":
            return False
        if value != "strict":
            raise self.fail("anonymize", "must be strict or off", "write anonymize: strict")
        return True

    def raw(self, data: dict, key: str) -> str | None:
        """A string whose ${VAR} are resolved later (on the side that uses it)."""
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(key, "must be a string", f"write {key}: ${{{anonymize.SECRET_ENV}}}")
        return value

    def remotes(self, value: object) -> dict[str, RemoteSpec]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail("remotes", "must be a mapping of remote names",
                            "write remotes: {production: {url: ssh://user@host/path}}")
        found = {}
        for name, spec in value.items():
            key = f"remotes.{name}"
            if not SET_NAME_RE.match(str(name)) or "://" in str(name):
                raise self.fail(key, "is not a valid remote name", "use letters, digits, '.', '_' or '-'")
            if isinstance(spec, str):
                spec = {"url": spec}
            if not isinstance(spec, dict) or set(spec) - set(REMOTE_KEYS):
                raise self.fail(key, "must be a URL or a mapping of " + ", ".join(REMOTE_KEYS),
                                f"write {name}: {{url: ssh://user@host/path}}")
            fields = {k: self.string(spec, k, f"{key}.{k}") for k in REMOTE_KEYS}
            if not fields["url"] and not fields["exec"]:
                raise self.fail(key, "has no url (or exec)", f"write {name}: {{url: ssh://user@host/path}}")
            if fields["exec"] and not fields["path"]:
                raise self.fail(key, "exec needs a path", f"write {name}: {{exec: ..., path: /var/www/app}}")
            found[str(name)] = RemoteSpec(name=str(name), **fields)
        return found

    def files(self, value: object) -> dict[str, FileSpec | None]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail("files", "must be a mapping of set names",
                            "write files: {uploads: public/uploads}")
        return {str(name): self.file_spec(str(name), spec) for name, spec in value.items()}

    def file_spec(self, name: str, spec: object) -> FileSpec | None:
        key = f"files.{name}"
        if not SET_NAME_RE.match(name) or name in RESERVED:
            raise self.fail(key, "is not a valid set name",
                            "use letters, digits, '.', '_' or '-' ('db' is taken)")
        if spec is None or spec is False:
            return None
        if isinstance(spec, str):
            return FileSpec(self.expand(spec, key), None)
        if not isinstance(spec, dict) or set(spec) - {"path", "public"}:
            raise self.fail(key, "must be a path or a mapping with 'path' and 'public'",
                            f"write {name}: {{path: some/folder, public: false}}")
        public = spec.get("public")
        if public is not None and not isinstance(public, bool):
            raise self.fail(f"{key}.public", "must be true or false", "write public: true or public: false")
        return FileSpec(self.string(spec, "path", f"{key}.path"), public)


def parse_database(config: Config) -> dburl.DatabaseUrl:
    try:
        url = dburl.parse(config.database_url or "")
    except UsageError as exc:
        raise UsageError(f"{config.name}: database.url: {exc}", hint=exc.hint) from None
    if not url.database:
        raise UsageError(f"{config.name}: database.url names no database",
                         hint="add the database name after the last '/'")
    return url


def apply(config: Config, project: Project, ctx: Context) -> None:
    """Lay the file's settings over what the framework found (in place)."""
    if config.database_url:
        project.database = parse_database(config)
        project.notes.append(f"database from {config.name} (database.url)")
    if config.base_url:
        project.base_url = config.base_url
    if config.web_root:
        project.web_root = ctx.path(config.web_root)
    _apply_files(config, project, ctx)
    if ctx.side == "local":
        project.after_import = list(config.after_import)
        project.after_import_origin = config.name
    project.skip_table_data += [t for t in config.skip_table_data if t not in project.skip_table_data]
    if config.skip_table_data:
        project.notes.append(f"{config.name} skips the rows of {', '.join(config.skip_table_data)}")
    skips = [r.pattern for r in config.tables if r.skip]
    project.skip_table_data += [t for t in skips if t not in project.skip_table_data]
    if skips:
        project.notes.append(f"{config.name} skips the rows of {', '.join(skips)} (tables:)")
    if config.exclude and not ctx.all_data:
        project.skip_table_data += [t for t in config.exclude if t not in project.skip_table_data]
        project.notes.append(f"left out (--all copies them): rows of {', '.join(config.exclude)}"
                             f" ({config.name} exclude)")


def _apply_files(config: Config, project: Project, ctx: Context) -> None:
    for name, spec in config.files.items():
        if spec is None:
            project.file_sets.pop(name, None)
            project.public_sets.discard(name)
            continue
        if spec.path is None and name not in project.file_sets:
            raise UsageError(f"{config.name}: files.{name}: no path, and no such set was detected",
                             hint=f"write {name}: {{path: some/folder}}")
        if spec.path is not None:
            project.file_sets[name] = (ctx.root / spec.path).resolve()
        if spec.public is not None:
            (project.public_sets.add if spec.public else project.public_sets.discard)(name)


def privacy(config: Config | None, env: Mapping[str, str], presets: list | None = None) -> anonymize.Rules:
    """The privacy rules of the server side: synco.yaml's (which win) over the presets."""
    rules = anonymize.Rules(presets=list(presets or []))
    if config is not None:
        rules.tables, rules.columns, rules.strict = list(config.tables), list(config.columns), config.strict
        rules.origin = config.name
        if config.anonymize_secret:
            rules.secret = _Reader(config.name, env).expand(config.anonymize_secret, "anonymize_secret")
            rules.secret_origin = f"{config.name} (anonymize_secret)"
    if not rules.secret and env.get(anonymize.SECRET_ENV):
        rules.secret, rules.secret_origin = env[anonymize.SECRET_ENV], f"${anonymize.SECRET_ENV}"
    return rules
