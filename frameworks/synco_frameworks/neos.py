"""Neos / Flow: the ``flow`` launcher next to ``Configuration/``.

Database from ``Neos.Flow.persistence.backendOptions``, the public URL from
``Neos.Flow.http.baseUri``, the persistent resources' folder from the storage of the ``persistent``
collection (public when its target publishes into ``Web/``), all for ``FLOW_CONTEXT`` (default
Production on the server, Development locally) as ``flowconfig`` reads them.
"""

from __future__ import annotations

import re
from pathlib import Path

from synco_source import dburl
from synco_source.dburl import DatabaseUrl
from synco_source import anonymize
from synco_source.errors import UsageError

from . import doctrine, flowconfig, neos_resources
from .base import Context, Project

NAME = "neos"
OPTIONS = ("persistence", "backendOptions")
DRIVERS = {"pdo_mysql": "mysql", "mysqli": "mysql", "pdo_pgsql": "postgresql", "pgsql": "postgresql"}
SQLITE_DRIVERS = ("pdo_sqlite", "sqlite3")
FILESYSTEM_TARGETS = ("FileSystemSymlinkTarget", "FileSystemTarget")
RESOURCES = "resources"

# Smart exclusions: rows that are large and that a developer's copy can do without.
SKIP_TABLE_DATA = {
    "neos_neos_eventlog_domain_model_event": "the event log",
    "neos_media_domain_model_thumbnail": "thumbnails, made again on demand",
}

# Privacy presets (docs/privacy.md; --no-presets turns them off, synco.yaml's columns: win): Flow's
# accounts (login names; passwords become "password", so a developer can log in with any account)
# and Neos.Party's persons (names, electronic addresses).
PASSWORD_HASH = "$2y$10$ZeXxE2sigasEcLwFZ6t9fusfnR9FOlzfQFnnPqVkko8DLE/olXaLO"  # bcrypt of "password"
PRIVACY = (
    ("neos_flow_security_account", "accountidentifier", "email"),
    ("neos_flow_security_account", "credentialssource", {"value": "bcrypt=>" + PASSWORD_HASH}),
    ("neos_party_domain_model_personname", "title", {"value": ""}),
    ("neos_party_domain_model_personname", "firstname", "first_name"),
    ("neos_party_domain_model_personname", "middlename", {"value": ""}),
    ("neos_party_domain_model_personname", "lastname", "last_name"),
    ("neos_party_domain_model_personname", "othername", {"value": ""}),
    ("neos_party_domain_model_personname", "alias", {"value": ""}),
    ("neos_party_domain_model_personname", "fullname", "name"),
    ("neos_party_domain_model_electronicaddress", "identifier", "email"),
)

RESOURCES_SQL = neos_resources.RESOURCES_SQL
THUMBNAIL_ONLY_SHA1_SQL = neos_resources.THUMBNAIL_ONLY_SHA1_SQL


def resource_path(sha1: str) -> str:
    """Where Flow's WritableFileSystemStorage keeps a resource, relative to the project folder."""
    sha1 = sha1.lower()
    if len(sha1) != 40 or any(c not in "0123456789abcdef" for c in sha1):
        raise ValueError(f"not a SHA-1: {sha1!r}")
    return f"Data/Persistent/Resources/{sha1[0]}/{sha1[1]}/{sha1[2]}/{sha1[3]}/{sha1}"


def resource_paths(sha1s) -> dict[str, str]:
    """sha1 → relative path, for each of ``sha1s``."""
    return {sha1: resource_path(sha1) for sha1 in sha1s}


class Neos:
    name = NAME

    def matches(self, root: Path) -> str | None:
        if (root / "flow").is_file() and (root / "Configuration").is_dir():
            return "flow, Configuration/" + (", Web/" if (root / "Web").is_dir() else "")
        return None

    def privacy_presets(self, project: Project) -> list:
        """Column rules for Flow's and Neos.Party's tables (where they exist)."""
        return [anonymize.column_rule(f"{table}.{column}", rule, "neos preset")
                for table, column, rule in PRIVACY]

    def project(self, ctx: Context) -> Project:
        context = flowconfig.context_name(ctx)
        settings, notes = flowconfig.settings(ctx, context)
        project = Project(framework=NAME, root=ctx.root, context=context, web_root=ctx.root / "Web")
        project.notes += [f"Neos/Flow, FLOW_CONTEXT {context}", f"settings {settings.source}", *notes]
        if ctx.want_database:
            project.database = database(settings, ctx.root)
        base_uri = settings.get("http", "baseUri")
        project.base_url = str(base_uri) if base_uri else None
        _resources(project, settings, ctx)
        if not ctx.all_data:
            project.skip_table_data = list(SKIP_TABLE_DATA)
            # the thumbnails' own resource rows go with them (their files are left out too)
            project.row_filters = [(neos_resources.RESOURCE_TABLE, neos_resources.NOT_THUMBNAIL_SQL,
                                    neos_resources.THUMBNAIL_TABLE)]
            project.notes.append("left out (--all copies them): rows of " + ", ".join(
                f"{table} ({why})" for table, why in SKIP_TABLE_DATA.items())
                + f", and the rows of {neos_resources.RESOURCE_TABLE} that only thumbnails use")
        if ctx.side == "local":
            _post_import(project, ctx, context)
        return project


def database(settings: flowconfig.Settings, root: Path | None = None) -> DatabaseUrl:
    options = settings.get(*OPTIONS)
    options = options if isinstance(options, dict) else {}

    def fail(key: str, problem: str, hint: str) -> UsageError:
        return UsageError(f"{settings.origin(*OPTIONS, key)}: Neos.Flow.persistence.backendOptions."
                          f"{key} {problem}", hint=hint)

    if options.get("url"):
        url = doctrine.parse(str(options["url"]), settings.origin(*OPTIONS, "url"),
                             "Neos.Flow.persistence.backendOptions.url", root)
        return _with_tls(url, options, settings)
    driver = str(options.get("driver") or "pdo_mysql")
    if driver in SQLITE_DRIVERS:
        raise fail("driver", f"is {driver}: SQLite is not supported yet",
                   "use a MySQL, MariaDB or PostgreSQL database, or set database.url in synco.yaml")
    if driver not in DRIVERS:
        raise fail("driver", f"is {driver}, which synco does not support",
                   f"synco reads {', '.join(DRIVERS)}; or set database.url in synco.yaml")
    if not options.get("dbname"):
        raise fail("dbname", "is not set", "set it for this FLOW_CONTEXT, or set database.url in synco.yaml")
    engine = DRIVERS[driver]
    try:
        port = int(options.get("port") or dburl.DEFAULT_PORTS[engine])
    except (TypeError, ValueError):
        raise fail("port", f"is {options.get('port')!r}, not a number",
                   "write the port as a number") from None
    socket = str(options.get("unixSocket") or "")
    charset = options.get("charset")
    host = str(options.get("host") or ("localhost" if socket else "127.0.0.1"))
    url = DatabaseUrl(engine=engine, host=host, port=port, user=_text(options.get("user")),
                      password=_text(options.get("password")), database=str(options["dbname"]),
                      socket=socket, params=(("charset", str(charset)),) if charset else ())
    return _with_tls(url, options, settings)


def _with_tls(url: DatabaseUrl, options: dict, settings: flowconfig.Settings) -> DatabaseUrl:
    """TLS from the backend options as Doctrine passes them on: for MySQL pdo_mysql's
    ``driverOptions`` (or ``options``) and mysqli's ``ssl_*``; for PostgreSQL the libpq
    parameters (``sslmode``, ``sslrootcert``, ``sslcert``, ``sslkey`` …)."""
    if url.engine == "mysql":
        driver_options: dict = {}
        for key in doctrine.DRIVER_OPTIONS:
            driver_options.update(_mapping(options.get(key)))
        extra = doctrine.tls_options(driver_options, options)
    else:
        extra = {key: _text(value) for key, value in options.items()
                 if key in dburl.PG_PARAMS and _text(value)}
    return doctrine.with_options(url, extra, settings.origin(*OPTIONS), "Neos.Flow.persistence.backendOptions")


def _mapping(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str:
    return "" if value is None or value is False else str(value)


def _resources(project: Project, settings: flowconfig.Settings, ctx: Context) -> None:
    collection = _mapping(settings.get("resource", "collections", "persistent"))
    storage = settings.get("resource", "storages", str(collection.get("storage")))
    if not isinstance(storage, dict) or not str(storage.get("storage", "")).endswith("FileSystemStorage"):
        kind = storage.get("storage") if isinstance(storage, dict) else "an unknown storage"
        project.notes.append(f"persistent resources are kept in {kind}: not copied")
        return
    folder = ctx.path(str(_mapping(storage.get("storageOptions")).get("path") or ""))
    if ctx.side == "source" and not folder.is_dir():
        project.notes.append(f"no persistent resources: {ctx.rel(folder)} is not there")
        return
    project.file_sets[RESOURCES] = folder
    target = _mapping(settings.get("resource", "targets", str(collection.get("target"))))
    target_class = str(target.get("target", "")).rsplit("\\", 1)[-1]
    options = _mapping(target.get("targetOptions"))
    target_path = ctx.path(str(options.get("path") or "/"))
    uri = str(options.get("baseUri") or "_Resources/Persistent/")
    # a bucket target (S3, Google Cloud Storage) publishes by itself: nothing to look at on disk
    remote = remote_target(target_class, options)
    if remote or (target_class in FILESYSTEM_TARGETS and target_path.is_relative_to(ctx.root / "Web")):
        project.public_sets.add(RESOURCES)
    public = RESOURCES in project.public_sets
    if ctx.side == "source":
        if remote:
            public_url, layout = remote
        else:
            public_url, layout = (project.base_url.rstrip("/") + "/" + uri.strip("/") + "/"
                                  if public and project.base_url else None), None
        project.file_selectors[RESOURCES] = neos_resources.selector(
            target_path if public and not remote else None, public_url,
            keep_thumbnails=ctx.all_data, remote_layout=layout)
    where = (f"public, published to {remote[0]}" if remote else
             f"public, published to {ctx.rel(target_path)}" if public else "not public")
    project.notes.append(f"file set {RESOURCES}: {ctx.rel(folder)} ({where})")


def remote_target(target_class: str, options: dict) -> tuple[str, str] | None:
    """(the URL the files are under, the template of each file's path below it) of a bucket
    target, as its ``getPublicPersistentResourceUri`` makes the URL: Flownative's S3Target and
    GcsTarget with ``persistentResourceUris.pattern`` (``{baseUri}``, ``{bucketName}``,
    ``{keyPrefix}``, ``{sha1}``, ``{filename}``, ``{fileExtension}``), else ``baseUri`` followed by
    ``<sha1>/<filename>`` (GcsTarget: with the key prefix; without a ``baseUri``, its public
    storage URL). None: not a bucket target, or one whose URLs cannot be told (an S3Target
    without baseUri or pattern names the region's own host, a pattern with ``{md5}``…)."""
    if target_class not in ("S3Target", "GcsTarget"):
        return None
    base = str(options.get("baseUri") or "")
    bucket = str(options.get("bucket") or "")
    prefix = str(options.get("keyPrefix") or "")
    prefix = prefix.lstrip("/") if target_class == "GcsTarget" else prefix
    pattern = str(_mapping(options.get("persistentResourceUris")).get("pattern") or "")
    if not pattern:
        if target_class == "GcsTarget":
            pattern = ("{baseUri}{keyPrefix}{sha1}/{filename}" if base else
                       "https://storage.googleapis.com/{bucketName}/{keyPrefix}{sha1}/{filename}")
        elif base:
            pattern = "{baseUri}{sha1}/{filename}"
        else:
            return None
    text = pattern.replace("{baseUri}", base).replace("{bucketName}", bucket).replace("{keyPrefix}", prefix)
    match = re.match(r"(https?://[^/{}]+/)(.*)", text)
    if match is None or re.search(r"\{(?!sha1\}|filename\}|fileExtension\})[^}]*\}", match.group(2)):
        return None
    if options.get("subdivideHashPathSegment"):
        text = text.replace("{sha1}", "{subdivided}")
        match = re.match(r"(https?://[^/{}]+/)(.*)", text)
    return match.group(1), match.group(2)


def _post_import(project: Project, ctx: Context, context: str) -> None:
    flow = [ctx.php, "./flow"] if ctx.php else ["./flow"]
    prefix = ["env", f"FLOW_CONTEXT={context}"]
    project.post_import = [prefix + flow + ["resource:publish"], prefix + flow + ["flow:cache:flush"]]
    project.post_import_runnable = ctx.php is not None


FRAMEWORK = Neos()
