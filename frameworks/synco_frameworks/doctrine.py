"""Doctrine database URLs (Symfony's DATABASE_URL, Flow's ``backendOptions.url``) to synco's.

Doctrine spells some schemes differently from ``synco_source.dburl``: ``mysql2``, ``pdo-mysql``,
``pdo-pgsql``, ``postgres``, ``mysqli``. SQLite (``sqlite``, ``pdo-sqlite``, ``sqlite3``) has Doctrine's
path rule: ``sqlite:///var/data.db`` is ``var/data.db`` (relative: to the project folder), four
slashes an absolute path, ``%kernel.project_dir%`` the project folder; ``:memory:`` is refused.
Query parameters such as ``serverVersion`` and ``charset`` are kept and ignored by the engines;
``unix_socket`` names a socket; the TLS options are ``synco_source.dburl``'s, and for MySQL also
Doctrine's ``driverOptions[…]`` (``options[…]``) with pdo_mysql's SSL attributes (``tls_options``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path

from synco_source import dburl
from synco_source.dburl import DatabaseUrl
from synco_source.errors import UsageError

SCHEMES = {"mysql2": "mysql", "pdo-mysql": "mysql", "mysqli": "mysql", "pdo-pgsql": "pgsql",
           "postgres": "postgresql", "pdo-sqlite": "sqlite", "sqlite3": "sqlite"}

# pdo_mysql's attributes (PHP with mysqlnd, as it is built everywhere): number → synco's option.
PDO_MYSQL_TLS = {1007: "ssl-key", 1008: "ssl-cert", 1009: "ssl-ca", 1010: "ssl-capath",
                 1011: "ssl-cipher", 1014: "verify"}
PDO_NAMES = {"ATTR_SSL_KEY": 1007, "ATTR_SSL_CERT": 1008, "ATTR_SSL_CA": 1009, "ATTR_SSL_CAPATH": 1010,
             "ATTR_SSL_CIPHER": 1011, "ATTR_SSL_VERIFY_SERVER_CERT": 1014}
# Doctrine's mysqli driver takes them as connection parameters (ssl_ca …)
MYSQLI_TLS = {"ssl_key": "ssl-key", "ssl_cert": "ssl-cert", "ssl_ca": "ssl-ca", "ssl_capath": "ssl-capath",
              "ssl_cipher": "ssl-cipher"}
DRIVER_OPTIONS = ("driverOptions", "options")
_BRACKETED = re.compile(r"^(driverOptions|options)\[(.+)\]$")
_PHP_INT = re.compile(r"^\s*[-+]?\d+")


def pdo_attribute(key: object) -> int | None:
    """A driverOptions key as PHP means it: ``1009``, ``PDO::MYSQL_ATTR_SSL_CA``,
    ``%PDO::MYSQL_ATTR_SSL_CA%``, ``\\PDO::MYSQL_ATTR_SSL_CA``, ``Pdo\\Mysql::ATTR_SSL_CA``."""
    text = str(key).strip().strip("%").lstrip("\\")
    if text.isdigit():
        return int(text)
    name = text.rsplit("::", 1)[-1].upper()
    return PDO_NAMES.get(name[len("MYSQL_"):] if name.startswith("MYSQL_") else name)


def _php_int(value: object) -> int:
    """PHP's (int) of a YAML or query value: true is 1, "1yes" is 1, "true" is 0."""
    if isinstance(value, (bool, int)):
        return int(value)
    match = _PHP_INT.match(str(value))
    return int(match.group()) if match else 0


def tls_options(driver_options: Mapping, params: Mapping = {}) -> dict[str, str]:  # noqa: B006
    """MySQL TLS options (``ssl-mode``, ``ssl-ca`` …) from pdo_mysql's ``driverOptions`` and the
    mysqli driver's ``ssl_*`` parameters, meaning what they mean to PHP's mysqlnd: any of the CA,
    CA path, certificate, key or cipher (or MYSQL_ATTR_SSL_VERIFY_SERVER_CERT) turns TLS on, and
    the server's certificate and name are checked (VERIFY_IDENTITY) unless
    MYSQL_ATTR_SSL_VERIFY_SERVER_CERT is false (REQUIRED). Empty values count as absent."""
    out: dict[str, str] = {}
    verify: int | None = None
    for key, value in driver_options.items():
        name = PDO_MYSQL_TLS.get(pdo_attribute(key) or 0)
        if name == "verify" and value is not None:
            verify = _php_int(value)
        elif name and value not in (None, "", False):
            out[name] = str(value)
    for key, name in MYSQLI_TLS.items():
        if params.get(key) not in (None, "", False):
            out[name] = str(params[key])
    if out or verify is not None:
        out["ssl-mode"] = "REQUIRED" if verify == 0 else "VERIFY_IDENTITY"
    return out


def with_options(url: DatabaseUrl, extra: Mapping[str, str], where: str, key: str) -> DatabaseUrl:
    """``url`` with more query parameters (those already in the URL win, as in Doctrine, where the
    URL's parameters override the others); checked like the URL's own."""
    if not extra:
        return url
    merged = {**extra, **dict(url.params)}
    try:
        params = dburl.options(url.engine, merged.items())
    except UsageError as exc:
        raise UsageError(f"{where}: {key}: {exc}", hint=exc.hint) from None
    return dataclasses.replace(url, params=params)


def sqlite(rest: str, where: str, key: str, root: Path | None) -> DatabaseUrl:
    """Doctrine's SQLite URL after ``sqlite://``: ``[localhost]/path``, one slash taken off."""
    if root is not None:
        rest = rest.replace("%kernel.project_dir%", str(root))
    host, slash, path = rest.partition("/")
    path = path.split("?", 1)[0]
    if host not in ("", "localhost") or not slash or not path or path == ":memory:":
        raise UsageError(f"{where}: {key}: names no SQLite database file",
                         hint="write sqlite:///%kernel.project_dir%/var/data.db")
    if not path.startswith("/"):
        path = os.path.join(root or os.getcwd(), path)
    return DatabaseUrl(engine="sqlite", host="", port=0, user="",
                       database=os.path.normpath("/" + path.lstrip("/")))


def parse(text: str, where: str, key: str, root: Path | None = None) -> DatabaseUrl:
    """``text`` as a synco URL; errors name ``where`` (a file) and ``key``; ``root``: the project
    folder (``%kernel.project_dir%`` and relative SQLite paths)."""
    scheme, sep, rest = text.strip().partition("://")
    if sep and SCHEMES.get(scheme.lower(), scheme.lower()) == "sqlite":
        return sqlite(rest, where, key, root)
    if sep and scheme.lower() in SCHEMES:
        text = f"{SCHEMES[scheme.lower()]}://{rest}"
    try:
        url = dburl.parse(text)
    except UsageError as exc:
        raise UsageError(f"{where}: {key}: {exc}", hint=exc.hint) from None
    if not url.database:
        raise UsageError(f"{where}: {key} {url.redacted} names no database",
                         hint="add the database name after the last '/' (before any '?')")
    if url.engine != "mysql":
        return url
    # Doctrine reads the query with PHP's parse_str: driverOptions[1009]=/path is driverOptions' 1009
    driver_options = {}
    for name, value in url.params:
        match = _BRACKETED.match(name)
        if match:
            driver_options[match.group(2)] = value
    return with_options(url, tls_options(driver_options), where, key)
