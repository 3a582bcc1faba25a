"""Find out what a project folder holds: framework, database, file sets, and what to leave out.

``detect`` is the whole answer for a folder; ``resolve`` is what the command lines call (their
explicit options win over what was detected); ``describe`` is what ``detect`` commands print.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from synco_source import dburl
from synco_source.errors import UsageError

from . import config, generic
from .base import SIDES, Context, Framework, Project
from .registry import FRAMEWORKS, by_name, names


def find_php(env: Mapping[str, str], php: str | None = None) -> str | None:
    """The PHP interpreter: ``php`` if given, else $PHP, else ``php`` on $PATH; None when none."""
    if php:
        return php
    if env.get("PHP"):
        return shutil.which(env["PHP"], path=env.get("PATH") or os.defpath) or env["PHP"]
    return shutil.which("php", path=env["PATH"]) if env.get("PATH") else None


def choose(root: Path, cfg: config.Config | None) -> Framework | None:
    """The framework of ``root``: the one synco.yaml names, else the one that matches."""
    if cfg is not None and cfg.framework:
        if cfg.framework == "generic":
            return None
        framework = by_name(cfg.framework)
        if framework is None:
            raise UsageError(f"{cfg.name}: framework: {cfg.framework!r} is not known",
                             hint=f"known frameworks: {', '.join(names())}")
        return framework
    found = [(fw, evidence) for fw in FRAMEWORKS if (evidence := fw.matches(root))]
    if len(found) > 1:
        both = " and ".join(f"{fw.name} ({evidence})" for fw, evidence in found)
        raise UsageError(f"{root} looks like more than one framework: {both}",
                         hint=f"say which in synco.yaml, e.g. framework: {found[0][0].name}")
    return found[0][0] if found else None


def detect(root: Path, *, side: str, env: Mapping[str, str] | None = None, php: str | None = None,
           all_data: bool = False, need_db: bool = True) -> Project:
    """Everything synco needs about the project in ``root``, for the ``source`` or ``local`` side.

    ``env`` stands for the process environment (default ``os.environ``); ``php`` for the PHP
    interpreter (default: $PHP or ``php`` on $PATH); ``all_data`` turns smart exclusions off;
    ``need_db=False`` skips reading the database settings (``--no-db``, ``--output``).
    """
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, not {side!r}")
    root = Path(root).resolve()
    env = dict(os.environ if env is None else env)
    cfg = config.load(root, env)
    ctx = Context(root=root, side=side, env=env, php=find_php(env, php), all_data=all_data,
                  want_database=need_db and not (cfg is not None and cfg.database_url))
    framework = choose(root, cfg)
    if framework is not None:
        project = framework.project(ctx)
    elif cfg is not None:
        project = Project(framework="generic", root=root, notes=[f"no framework; settings from {cfg.name}"])
    else:
        raise UsageError(f"no known framework in {root} ({', '.join(fw.name for fw in FRAMEWORKS)}), "
                         f"and no synco.yaml",
                         hint="run this in the application's folder, write a synco.yaml, or pass --db-url")
    if cfg is not None:
        config.apply(cfg, project, ctx)
    if not need_db:
        project.database = None
    return project


def detectable(root: Path) -> bool:
    """Whether ``detect`` has anything to go on in ``root``."""
    root = Path(root).resolve()
    return config.find(root) is not None or any(fw.matches(root) for fw in FRAMEWORKS)


def resolve(root: Path, *, side: str, db_url: str | None = None, file_specs: Sequence[str] = (),
            need_db: bool = True, all_data: bool = False, env: Mapping[str, str] | None = None,
            php: str | None = None) -> Project:
    """The project a command works on: explicit options (``--db-url`` or $SYNCO_DB_URL,
    ``--files NAME=PATH``) over what ``detect`` finds; options alone where nothing is detectable."""
    env = dict(os.environ if env is None else env)
    root = Path(root).resolve()
    explicit = db_url or env.get("SYNCO_DB_URL")
    if not detectable(root) and (explicit or file_specs or not need_db):
        project = generic.project(root, explicit, list(file_specs), need_db=need_db)
        project.notes.append("no framework; settings from the command line")
        return project
    project = detect(root, side=side, env=env, php=php, all_data=all_data,
                     need_db=need_db and not explicit)
    if explicit and need_db:
        project.database = dburl.from_option(explicit)
        project.notes.append("database from --db-url (or SYNCO_DB_URL)")
    for name, path in generic.parse_file_sets(list(file_specs), root).items():
        project.file_sets[name] = path
        project.public_sets.discard(name)
    return project


def privacy(project: Project, *, presets: bool = True, env: Mapping[str, str] | None = None):
    """The privacy rules for the dump of ``project`` (server side): synco.yaml's ``tables:``,
    ``columns:``, ``anonymize:`` and the secret, over the framework's presets (``presets=False``:
    none; ``--no-presets``). An ``anonymize.Rules``; docs/privacy.md."""
    env = dict(os.environ if env is None else env)
    cfg = config.load(project.root, env) if config.find(project.root) else None
    framework = by_name(project.framework)
    found = getattr(framework, "privacy_presets", None) if presets else None
    return config.privacy(cfg, env, found(project) if found else [])


def require_database(project: Project) -> None:
    """Raise the UsageError a command needing a database shows when none was found."""
    if project.database is None:
        raise UsageError(f"no database found for this {project.framework} project in {project.root}",
                         hint="set database.url in synco.yaml or pass --db-url")


def folder_size(path: Path) -> tuple[int, int]:
    """(files, bytes) of the regular files under ``path``, links not followed."""
    files = size = 0
    stack = [path]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                files, size = files + 1, size + entry.stat(follow_symlinks=False).st_size
    return files, size


def human_size(size: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return ""


def _as_connected(db):
    """The URL as the engine will connect (MySQL's localhost may be the local socket)."""
    from synco_source import engines
    from synco_source.errors import SyncoError

    try:
        return engines.resolve(db)
    except SyncoError:  # an engine this build does not have: say what the settings say
        return db


def describe(project: Project) -> list[str]:
    """Lines for ``detect`` commands: what was found, never a password."""
    context = f" ({project.context})" if project.context else ""
    lines = [f"framework: {project.framework}{context}", f"folder: {project.root}"]
    db = project.database
    if db is None:
        lines.append("database: none")
    else:
        db = _as_connected(db)
        if db.engine == "sqlite":
            lines.append(f"database: sqlite file {db.database}")
        else:
            where = f"socket {db.socket}" if db.socket else f"{db.host}:{db.port}"
            lines.append(f"database: {db.engine} database {db.database} on {where}"
                         + (f" as user {db.user}" if db.user else ""))
    lines.append(f"base URL: {project.base_url or 'not configured'}")
    for name, path in project.file_sets.items():
        shown = path.relative_to(project.root) if path.is_relative_to(project.root) else path
        public = ", public" if project.is_public(name) else ""
        if path.is_dir():
            files, size = folder_size(path)
            lines.append(f"file set {name}: {shown} ({files} files, {human_size(size)}{public})")
        else:
            lines.append(f"file set {name}: {shown} (not there yet{public})")
    if project.skip_table_data:
        lines.append(f"rows left out: {', '.join(project.skip_table_data)}")
    for step in project.steps():
        verb = "after import, runs" if step.runnable else "after import, run by hand"
        lines.append(f"{verb}: {step.line}" + (f" ({step.origin})" if step.shell else ""))
    lines += [f"note: {note}" for note in project.notes]
    return lines
