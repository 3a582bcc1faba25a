"""Rewrite a site's URL in a local MySQL/MariaDB database, as ``wp search-replace`` does.

``Rules(old, new)`` and ``Rules.apply(value)`` are the pure part: a value is rewritten as plain
text, as JSON (``https:\\/\\/host``), as a URL-encoded URL, and as PHP-serialized data, whose
strings are rewritten one by one (recursively: a serialized value inside a serialized string
too) and written back with their lengths counted again in bytes (UTF-8, as PHP counts them). The
old URL is replaced only where it ends: ``https://example.com`` is not a prefix of
``https://example.com.evil`` or ``https://example.com-shop.net``. Both ``http://`` and ``https://``
forms of the old URL become the new one. A serialized value whose lengths are already wrong
(PHP could not read it either) is left as it is and counted.

``rewrite_database(url, rules)`` runs over every base table: text columns (CHAR, VARCHAR, the TEXT
types, JSON) of the rows that mention the old host, in batches of the table's primary key (or a
unique NOT NULL key; tables with neither are skipped and named), one transaction per table (on
InnoDB; a MyISAM table keeps each row as written).

``wordpress_step`` is WordPress's step after an import (synco_frameworks.wordpress.URL_STEP): the
imported ``home`` option is the server's URL; the local one is ``--local-url``, else the local
``WP_HOME``/``WP_SITEURL``, else the ``home`` option the local database had before the import.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import pymysql

from synco_source import engines
from synco_source.dburl import DatabaseUrl
from synco_source.errors import DatabaseError, SyncoError

TEXT_TYPES = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "json")
BATCH = 1000
TEMP = "`synco_rewrite`"  # the temporary table of a batch's new values
VALUE = "`synco_new_value`"
MAX_DEPTH = 64  # serialized data nested deeper than this is left alone
# after the old URL, a character that would make it another host, port or path segment
END = rb"(?![A-Za-z0-9_\-]|\.[A-Za-z0-9]|:[0-9])"
LOOKS_SERIALIZED = re.compile(rb"\A(?:[aO]:\d+:[{\"]|[sC]:\d+:\"|[bid]:[^;]*;\Z|N;\Z)")
LENGTHS = {after: re.compile(rb"(\d+)" + re.escape(after)) for after in (b':"', b":{")}
SCALAR = re.compile(rb"(?:N|[bi]:-?\d+|d:(?:-?INF|NAN|-?[0-9.]+(?:[eE][-+]?\d+)?)|[rR]:\d+);")


class Broken(Exception):
    """Serialized data PHP could not read."""


def _url(text: str) -> str:
    return text.strip().rstrip("/")


@dataclass
class Rules:
    """Replace the URL ``old`` by ``new`` (trailing slashes are not part of either)."""

    old: str
    new: str
    pairs: dict[bytes, bytes] = field(default_factory=dict, repr=False)
    broken: int = 0  # serialized values left as they were (their lengths were already wrong)

    def __post_init__(self) -> None:
        self.old, self.new = _url(self.old), _url(self.new)
        olds = [self.old]
        scheme, sep, rest = self.old.partition("://")
        if sep and scheme in ("http", "https"):
            olds.append(("https" if scheme == "http" else "http") + "://" + rest)
        for old in olds:
            for form in (lambda u: u, lambda u: u.replace("/", "\\/"), lambda u: quote(u, safe="")):
                self.pairs[form(old).encode()] = form(self.new).encode()
        alternatives = b"|".join(re.escape(o) for o in sorted(self.pairs, key=len, reverse=True))
        self.pattern = re.compile(b"(?:" + alternatives + b")" + END)
        self.host = (urlsplit(self.old).hostname or self.old).encode()

    def apply(self, value: str) -> str:
        """``value`` with the URL rewritten (the same object when nothing changed)."""
        data = value.encode("utf-8", "surrogatepass")
        if self.host not in data:
            return value
        new = self.apply_bytes(data)
        return value if new == data else new.decode("utf-8", "surrogatepass")

    def apply_bytes(self, data: bytes, depth: int = 0) -> bytes:
        if self.host not in data:
            return data
        if depth < MAX_DEPTH and LOOKS_SERIALIZED.match(data):
            out: list[bytes] = []
            try:
                end = self._walk(data, 0, out, depth)
                if end == len(data):
                    return b"".join(out)
            except (Broken, IndexError, ValueError):
                pass
            if data[:2] in (b"a:", b"O:", b"s:", b"C:"):
                self.broken += 1
                return data
        return self.pattern.sub(self._sub, data)

    def _sub(self, match: re.Match) -> bytes:
        return self.pairs[match.group()]

    def _walk(self, data: bytes, i: int, out: list[bytes], depth: int) -> int:
        """Read one serialized value at ``i``, write it rewritten into ``out``; the end."""
        kind = data[i:i + 1]
        if kind in (b"s", b"E"):
            size, start = self._length(data, i + 2, b':"')
            end = start + size
            if data[end:end + 2] != b'";':
                raise Broken
            text = data[start:end]
            if kind == b"s":
                text = self.apply_bytes(text, depth + 1)
            out.append(kind + b":%d:\"" % len(text) + text + b'";')
            return end + 2
        if kind == b"a":
            count, start = self._length(data, i + 2, b":{")
            out.append(b"a:%d:{" % count)
            return self._members(data, start, count, out, depth)
        if kind in (b"O", b"C"):
            size, start = self._length(data, i + 2, b':"')
            name_end = start + size
            if data[name_end:name_end + 2] != b'":':
                raise Broken
            name = data[start:name_end]
            count, body = self._length(data, name_end + 2, b":{")
            if kind == b"O":
                out.append(b"O:%d:\"%s\":%d:{" % (len(name), name, count))
                return self._members(data, body, count, out, depth)
            payload = data[body:body + count]  # Serializable::serialize()'s own text
            if data[body + count:body + count + 1] != b"}":
                raise Broken
            payload = self.apply_bytes(payload, depth + 1)
            out.append(b"C:%d:\"%s\":%d:{%s}" % (len(name), name, len(payload), payload))
            return body + count + 1
        match = SCALAR.match(data, i)
        if not match:
            raise Broken
        out.append(match.group())
        return match.end()

    def _members(self, data: bytes, i: int, count: int, out: list[bytes], depth: int) -> int:
        for _ in range(count * 2):  # key, value
            i = self._walk(data, i, out, depth + 1)
        if data[i:i + 1] != b"}":
            raise Broken
        out.append(b"}")
        return i + 1

    @staticmethod
    def _length(data: bytes, i: int, after: bytes) -> tuple[int, int]:
        match = LENGTHS[after].match(data, i)
        if not match:
            raise Broken
        return int(match.group(1)), match.end()


@dataclass
class Result:
    rows: int = 0  # rows changed
    values: int = 0  # column values changed
    tables: list[str] = field(default_factory=list)  # tables with a change
    no_key: list[str] = field(default_factory=list)  # tables skipped: no primary or unique key
    broken: int = 0


def _connect(url: DatabaseUrl):
    from synco_source.engines.mysql import sql

    if url.engine != "mysql":
        raise SyncoError(f"the URL rewrite works on MySQL and MariaDB, not {url.engine}")
    return sql.connect(engines.resolve(url), database=url.database)


def _qi(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def rewrite_database(url: DatabaseUrl, rules: Rules, *, batch: int = BATCH,
                     progress: Callable[[str], None] = lambda table: None) -> Result:
    """Rewrite ``rules`` in every text column of every base table of ``url``'s database."""
    from synco_source.engines.mysql import catalog, sql

    result = Result()
    conn = _connect(url)
    try:
        db = url.database
        for table in catalog.base_tables(conn, db, strict=False):
            cols = catalog.columns(conn, db, table)
            texts = [c["name"] for c in cols if c["type"] in TEXT_TYPES and not c["generated"]]
            if not texts:
                continue
            key = catalog.order_key(conn, db, table, cols)
            if not key:
                found = sql.query(conn, f"SELECT 1 FROM {_qi(table)} WHERE "
                                  + " OR ".join(f"{_qi(c)} LIKE %s" for c in texts) + " LIMIT 1",
                                  [_like(rules.host)] * len(texts))
                if found:
                    result.no_key.append(table)
                continue
            progress(table)
            changed = _rewrite_table(conn, table, key, texts, rules, batch)
            if changed[0]:
                result.tables.append(table)
                result.rows += changed[0]
                result.values += changed[1]
            conn.commit()
    except pymysql.err.Error as exc:
        conn.rollback()
        raise DatabaseError(f"rewriting the site's URL in {url.database}: {exc.args[-1]}",
                            hint="the tables rewritten before it keep the new URL; run it again "
                                 "with wp search-replace") from None
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()
    result.broken = rules.broken
    return result


def _like(host: bytes) -> str:
    text = host.decode()
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _rewrite_table(conn, table: str, key: list[str], texts: list[str], rules: Rules,
                   batch: int) -> tuple[int, int]:
    """Rewrite one table in batches of its key; the new values of a batch go into a temporary
    table (multi-row INSERTs) and then into the table with one joined UPDATE per column: a few
    statements per batch instead of one per row."""
    keys = ", ".join(_qi(k) for k in key)
    mention = " OR ".join(f"{_qi(c)} LIKE %s" for c in texts)
    select = (f"SELECT {keys}, {', '.join(_qi(c) for c in texts)} FROM {_qi(table)} "
              f"WHERE ({mention}) {{after}} ORDER BY {keys} LIMIT {batch}")
    on = " AND ".join(f"t.{_qi(k)} <=> s.{_qi(k)}" for k in key)
    insert = (f"INSERT INTO {TEMP} ({keys}, {VALUE}) "
              f"VALUES ({', '.join(['%s'] * (len(key) + 1))})")
    rows = values = 0
    last = None
    with conn.cursor() as cur:
        cur.execute(f"DROP TEMPORARY TABLE IF EXISTS {TEMP}")
        # no ALTER TABLE: it would end the transaction
        cur.execute(f"CREATE TEMPORARY TABLE {TEMP} ({VALUE} LONGTEXT CHARACTER SET utf8mb4 "
                    f"COLLATE utf8mb4_bin, PRIMARY KEY ({keys})) "
                    f"SELECT {keys} FROM {_qi(table)} LIMIT 0")
        while True:
            args = [_like(rules.host)] * len(texts)
            after = ""
            if last is not None:  # (a, b) > (x, y) spelled out: MariaDB uses the key's range
                terms, rest = [], []
                for i, k in enumerate(key):
                    terms.append("(" + " AND ".join([*(f"{_qi(p)} = %s" for p in key[:i]),
                                                     f"{_qi(k)} > %s"]) + ")")
                    rest += [*last[:i], last[i]]
                after = "AND (" + " OR ".join(terms) + ")"
                args += rest
            cur.execute(select.format(after=after), args)
            found = cur.fetchall()
            changes: dict[str, list[tuple]] = {}
            for row in found:
                ident, current, changed = row[:len(key)], row[len(key):], False
                for name, value in zip(texts, current):
                    if isinstance(value, str):
                        new = rules.apply(value)
                        if new is not value:
                            changes.setdefault(name, []).append((*ident, new))
                            values, changed = values + 1, True
                rows += changed
            for name, pairs in changes.items():
                cur.executemany(insert, pairs)
                cur.execute(f"UPDATE {_qi(table)} t JOIN {TEMP} s ON {on} "
                            f"SET t.{_qi(name)} = s.{VALUE}")
                cur.execute(f"DELETE FROM {TEMP}")
            if len(found) < batch:
                cur.execute(f"DROP TEMPORARY TABLE {TEMP}")
                return rows, values
            last = found[-1][:len(key)]


def option(url: DatabaseUrl, prefix: str, name: str, *, missing_ok: bool = True) -> str | None:
    """The WordPress option ``name`` in ``url``'s database; None when the database, the table or
    the row is not there (``missing_ok``), else a DatabaseError for a missing table."""
    try:
        conn = _connect(url)
    except DatabaseError:
        if missing_ok:
            return None
        raise
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                        "AND TABLE_NAME = %s", (url.database, f"{prefix}options"))
            if not cur.fetchone()[0]:
                if missing_ok:
                    return None
                raise DatabaseError(f"database {url.database} has no table {prefix}options",
                                    hint="is $table_prefix in the local wp-config.php the server's?")
            cur.execute(f"SELECT option_value FROM {_qi(prefix + 'options')} WHERE option_name = %s",
                        (name,))
            row = cur.fetchone()
            return row[0] if row else None
    finally:
        conn.close()


def _multisite_domains(url: DatabaseUrl, prefix: str, old: str, new: str) -> int:
    """A multisite's ``blogs`` and ``site`` tables name hosts without a scheme: the old host (and
    its subdomains) becomes the new one."""
    old_host, new_host = urlsplit(old).hostname, urlsplit(new).netloc
    if not old_host or not new_host or old_host == new_host:
        return 0
    conn = _connect(url)
    changed = 0
    try:
        with conn.cursor() as cur:
            for table in (f"{prefix}blogs", f"{prefix}site"):
                cur.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                            "AND TABLE_NAME = %s", (url.database, table))
                if not cur.fetchone()[0]:
                    continue
                changed += cur.execute(
                    f"UPDATE {_qi(table)} SET domain = CASE WHEN domain = %s THEN %s "
                    f"ELSE CONCAT(LEFT(domain, CHAR_LENGTH(domain) - CHAR_LENGTH(%s)), %s) END "
                    f"WHERE domain = %s OR domain LIKE %s",
                    (old_host, new_host, old_host, new_host, old_host, "%." + old_host))
        conn.commit()
    finally:
        conn.close()
    return changed


def refresh_record(url: DatabaseUrl) -> None:
    """The rewrite is part of the import: the import's record (synco verify, and the re-pull that
    imports nothing) takes the rewritten tables' fingerprints, so neither sees the rewrite as a
    local edit. Without a record there is nothing to refresh."""
    from . import verify

    verify.refresh_fingerprints(url)


def wordpress_step(url: DatabaseUrl, params: dict[str, str], local_url: str | None,
                   previous_home: str | None, say: Callable[[str], None]) -> str | None:
    """The WordPress URL rewrite after an import. Returns None when done (or nothing to do), else
    the line to show when it could not run (no local URL known)."""
    prefix = params["prefix"]
    old = option(url, prefix, "home", missing_ok=False)
    if not old:
        say(f"no home option in {prefix}options: the site's URL is left as it is")
        return None
    new = local_url or params.get("local_url") or previous_home
    if not new:
        return (f"the site's URL is still the server's, {old}: pass --local-url URL, define WP_HOME "
                f"in the local wp-config.php, or run: wp search-replace {old} http://localhost "
                f"--all-tables")
    if _url(new) == _url(old):
        say(f"the site's URL is already {_url(new)}")
        return None
    rules = Rules(old, new)
    result = rewrite_database(url, rules)
    say(f"site URL {rules.old} → {rules.new}: {result.values} values in {result.rows} rows of "
        f"{len(result.tables)} tables rewritten")
    domains = 0
    if params.get("multisite"):
        domains = _multisite_domains(url, prefix, rules.old, rules.new)
        say(f"multisite: {domains} domains in {prefix}blogs and {prefix}site rewritten")
    if result.rows or domains:
        refresh_record(url)
    siteurl = option(url, prefix, "siteurl")
    if siteurl and rules.host.decode() in siteurl:
        say(f"the siteurl option {siteurl} is not under the server's home URL: left as it is")
    if result.broken:
        say(f"{result.broken} serialized values were already broken (PHP cannot read them): "
            f"left as they were")
    if result.no_key:
        say(f"tables without a primary or unique key that mention the old URL, not rewritten: "
            f"{', '.join(result.no_key)}")
    return None
