"""Symfony: ``bin/console`` plus ``config/bundles.php`` or symfony/framework-bundle in composer.json.

The environment is resolved as Symfony's ``Dotenv::bootEnv`` does: ``.env.local.php`` (from
``composer dump-env``) when it is there and its APP_ENV agrees with the real one; otherwise
``.env`` (or ``.env.dist`` when there is no ``.env``), ``.env.local`` (not in the test
environment), ``.env.$APP_ENV`` and ``.env.$APP_ENV.local``, each overriding the ones before. The
real environment wins over every file; APP_ENV itself may come from the files, else it is ``prod``
on the server and ``dev`` locally. The database is ``DATABASE_URL``, the public URL ``DEFAULT_URI``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from synco_source import anonymize
from synco_source.dburl import DatabaseUrl
from synco_source.errors import UsageError

from . import doctrine, dotenv, phparray, yamlfile
from .base import Context, Project

NAME = "symfony"
DEFAULT_ENV = {"source": "prod", "local": "dev"}
TEST_ENVS = ("test",)
ENVIRONMENT = "the environment"
# (set name, folder, public)
UPLOADS = (("uploads", "public/uploads", True), ("var-uploads", "var/uploads", False))


@dataclass
class Env:
    """The resolved variables, with the file (or the environment) each came from."""

    real: Mapping[str, str]
    values: dict[str, str] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def get(self, key: str) -> str | None:
        return self.real[key] if key in self.real else self.values.get(key)

    def where(self, key: str) -> str:
        return ENVIRONMENT if key in self.real else self.origin.get(key, "nowhere")

    def set(self, values: Mapping[str, str], origin: str) -> None:
        for key, value in values.items():
            self.values[key], self.origin[key] = value, origin


def _read(root: Path, name: str) -> str:
    return yamlfile.read_text(root / name, name)


def resolve_env(root: Path, real: Mapping[str, str], default_env: str) -> Env:
    """Symfony's bootEnv over ``root`` with ``real`` as the process environment."""
    env = Env(real=real)
    if (root / ".env.local.php").is_file():
        dumped = phparray.parse_return_array(_read(root, ".env.local.php"), ".env.local.php")
        if "APP_ENV" not in real or "APP_ENV" not in dumped or real["APP_ENV"] == dumped["APP_ENV"]:
            env.set(dumped, ".env.local.php")
            env.files.append(".env.local.php")
            _default_app_env(env, default_env)
            return env
    first = ".env" if (root / ".env").is_file() or not (root / ".env.dist").is_file() else ".env.dist"
    _load(env, root, first)
    _default_app_env(env, default_env)
    if env.get("APP_ENV") not in TEST_ENVS:
        _load(env, root, ".env.local")
    app_env = env.get("APP_ENV")
    if app_env != "local":
        _load(env, root, f".env.{app_env}")
        _load(env, root, f".env.{app_env}.local")
    return env


def _load(env: Env, root: Path, name: str) -> None:
    if not (root / name).is_file():
        return
    env.set(dotenv.parse(_read(root, name), name, real_env=env.real, loaded=env.values), name)
    env.files.append(name)


def _default_app_env(env: Env, default_env: str) -> None:
    if not env.get("APP_ENV"):
        env.set({"APP_ENV": default_env}, "synco's default")


def database(env: Env, root: Path | None = None) -> DatabaseUrl | None:
    """DATABASE_URL; ``root`` is ``%kernel.project_dir%`` (SQLite: sqlite:///%kernel.project_dir%/var/data.db)."""
    text = env.get("DATABASE_URL")
    return doctrine.parse(text, env.where("DATABASE_URL"), "DATABASE_URL", root) if text else None


class Symfony:
    name = NAME

    def matches(self, root: Path) -> str | None:
        if not (root / "bin" / "console").is_file():
            return None
        if (root / "config" / "bundles.php").is_file():
            return "bin/console, config/bundles.php"
        if "symfony/framework-bundle" in _composer_requires(root):
            return "bin/console, symfony/framework-bundle in composer.json"
        return None

    def privacy_presets(self, project: Project) -> list:
        """Column rules for the table of the user entity that security.yaml names (none when
        it names none, or the entity cannot be found)."""
        table = user_table(project.root)
        if table is None:
            return []
        return [anonymize.column_rule(f"{table}.{column}", rule, "symfony preset")
                for column, rule in USER_COLUMNS]

    def project(self, ctx: Context) -> Project:
        env = resolve_env(ctx.root, ctx.env, DEFAULT_ENV[ctx.side])
        app_env = env.get("APP_ENV") or ""
        project = Project(framework=NAME, root=ctx.root, context=app_env, web_root=ctx.root / "public")
        read = ", ".join(env.files) or "no .env files"
        project.notes += [f"Symfony, APP_ENV {app_env} (from {env.where('APP_ENV')})",
                          f"environment: {read} (the real environment wins)"]
        if ctx.side == "source" and app_env != "prod":
            project.notes.append(f"APP_ENV is {app_env}, not prod: "
                                 "set APP_ENV=prod if the server runs in prod")
        if ctx.want_database:
            project.database = database(env, ctx.root)
            project.notes.append(f"database from DATABASE_URL in {env.where('DATABASE_URL')}"
                                 if project.database else "no DATABASE_URL in the environment or .env files")
        project.base_url = env.get("DEFAULT_URI") or None
        for name, folder, public in UPLOADS:
            if ctx.side == "local" or (ctx.root / folder).is_dir():
                project.file_sets[name] = ctx.path(folder)
                if public:
                    project.public_sets.add(name)
        if ctx.side == "local":
            console = [ctx.php, "bin/console"] if ctx.php else ["bin/console"]
            project.post_import = [console + ["cache:clear"]]
            project.post_import_runnable = ctx.php is not None
        return project


# Privacy presets for the user entity's table (docs/privacy.md): its login and personal columns;
# passwords become "password" (bcrypt, which Symfony's auto and native hashers verify).
PASSWORD_HASH = "$2y$10$ZeXxE2sigasEcLwFZ6t9fusfnR9FOlzfQFnnPqVkko8DLE/olXaLO"  # bcrypt of "password"
USER_COLUMNS = (("email", "email"), ("password", {"value": PASSWORD_HASH}), ("username", "text"),
                ("first_name", "first_name"), ("firstname", "first_name"), ("last_name", "last_name"),
                ("lastname", "last_name"), ("name", "name"), ("full_name", "name"), ("phone", "phone"),
                ("phone_number", "phone"), ("last_login_ip", "ipv4"))
SECURITY_FILE = "config/packages/security.yaml"
_TABLE_ATTR = re.compile(r"""(?:#\[ORM\\Table\s*\(|@ORM\\Table\s*\()[^)]*?name\s*[:=]\s*["']([^"']+)["']""")


def user_table(root: Path) -> str | None:
    """The table of the Doctrine entity security.yaml's first entity provider names: the entity's
    ``#[ORM\\Table(name: ...)]`` (or ``@ORM\\Table(name="...")``), else Doctrine's underscore
    naming of its class (``App\\Entity\\AdminUser`` -> ``admin_user``)."""
    if not (root / SECURITY_FILE).is_file():
        return None
    data = yamlfile.load(root / SECURITY_FILE, SECURITY_FILE)
    security = data.get("security") if isinstance(data, dict) else None
    providers = security.get("providers") if isinstance(security, dict) else None
    for provider in (providers.values() if isinstance(providers, dict) else []):
        entity = provider.get("entity") if isinstance(provider, dict) else None
        cls = entity.get("class") if isinstance(entity, dict) else None
        if isinstance(cls, str) and cls:
            short = cls.rsplit("\\", 1)[-1]
            if cls.startswith("App\\"):
                source = root / "src" / (cls[len("App\\"):].replace("\\", "/") + ".php")
                if source.is_file():
                    found = _TABLE_ATTR.search(source.read_text(encoding="utf-8", errors="replace"))
                    if found:
                        return found.group(1).strip("`\"")
            return re.sub(r"(?<=[a-z0-9])([A-Z])|(?<=[A-Za-z])([0-9])", r"_\1\2", short).lower()
    return None


def _composer_requires(root: Path) -> dict:
    if not (root / "composer.json").is_file():
        return {}
    text = _read(root, "composer.json")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"composer.json, line {exc.lineno}: invalid JSON: {exc.msg}",
                         hint="fix composer.json (composer validate shows the problem)") from None
    requires = data.get("require") if isinstance(data, dict) else None
    return requires if isinstance(requires, dict) else {}


FRAMEWORK = Symfony()
