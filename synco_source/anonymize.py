"""Privacy rules, applied inside the dump (docs/privacy.md): table filters and column fakes.

The rules come from synco.yaml's ``tables:``, ``columns:``, ``anonymize:`` and
``anonymize_secret:`` keys and from framework presets. ``resolve`` lays them over the database's
catalog (read in the dump's own snapshot) and gives, per table, a ``Shape``: SQL expressions that
replace anonymized columns in the dump's SELECT, and a condition that keeps only the rows a filter
keeps (following foreign keys, so the copy imports with every constraint checked). The database
computes the fakes: no row is parsed in Python, and the plaintext chunks never hold a source value.

A fake is a function of the column's value and a per-project key: SHA-256 of the key's 64 hex
digits followed by the value's bytes. The key is derived from the secret here (HMAC-SHA-256), so
the secret itself never leaves this process; the derived key reaches the database server as a
session variable (MySQL ``@synco_k``, PostgreSQL the transaction-local setting ``synco.k``), never
in a dump query's text. Same value, same secret: same fake, in every table and every pull.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
import dataclasses
from dataclasses import dataclass, field

from .errors import UsageError

SECRET_ENV = "SYNCO_ANONYMIZE_SECRET"
MIN_SECRET = 16
# the fakes: name -> what it gives (docs/privacy.md)
KINDS = {
    "email": "u<16 hex digits>@example.org, unique where the source is",
    "first_name": "a first name from a built-in list of 64",
    "last_name": "a last name from a built-in list of 64",
    "name": "first name and last name",
    "phone": "+49 151 and 8 digits",
    "ipv4": "10.x.x.x (a private address)",
    "ipv6": "2001:db8:… (the documentation prefix), unique where the source is",
    "iban": "a German IBAN with valid check digits, unique where the source is",
    "text": "text-<16 hex digits>, unique where the source is",
    "date_shift": "the date moved by a per-project number of days (1 to 365, either way)",
}
HASHED = frozenset(KINDS)  # every fake needs the secret
UNIQUE_KINDS = frozenset({"email", "ipv6", "iban", "text", "date_shift"})
OTHER_RULES = ("keep", "value", "null")
MIN_LENGTH = {"email": 21, "phone": 16, "ipv4": 15, "ipv6": 39, "iban": 22, "text": 13}
UNIQUE_LENGTH = {"email": 29, "text": 21}  # 16 hex digits (64 bits): unique where the source is
TRUNCATED = frozenset({"first_name", "last_name", "name", "text", "email"})
EMAIL_DOMAIN = "@example.org"
KEY_LABEL = b"synco anonymize 1"
KEY_VAR = {"mysql": "@synco_k", "postgresql": "pg_catalog.current_setting('synco.k')"}

FIRST_NAMES = ("Alex", "Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hannah", "Ida",
               "Jan", "Julia", "Karl", "Laura", "Leon", "Lina", "Lukas", "Maria", "Max", "Mia",
               "Noah", "Nora", "Oskar", "Paul", "Paula", "Peter", "Rosa", "Sara", "Simon", "Sophie",
               "Tim", "Tom", "Ava", "Chris", "Dana", "Eli", "Finn", "Gina", "Hugo", "Iris", "Jonas",
               "Kim", "Lea", "Mark", "Nina", "Olga", "Pia", "Quinn", "Rita", "Sam", "Tessa", "Uma",
               "Vera", "Will", "Xenia", "Yara", "Zoe", "Adam", "Bea", "Carl", "Dora", "Erik",
               "Frida", "Gus")
LAST_NAMES = ("Adams", "Bauer", "Becker", "Brown", "Clark", "Davis", "Fischer", "Fuchs", "Garcia",
              "Hall", "Hartmann", "Hoffmann", "Jones", "Keller", "Klein", "Koch", "Krause", "Lange",
              "Lee", "Lewis", "Meyer", "Miller", "Moore", "Neumann", "Parker", "Richter", "Roth",
              "Schmidt", "Schneider", "Scott", "Smith", "Sommer", "Taylor", "Vogel", "Wagner",
              "Walker", "Weber", "White", "Wolf", "Young", "Zimmer", "Baker", "Berg", "Carter",
              "Dietrich", "Evans", "Frank", "Graf", "Hill", "Horn", "King", "Kuhn", "Lorenz",
              "Martin", "Nagel", "Otto", "Peters", "Reed", "Seidel", "Stone", "Turner", "Ward",
              "Winter", "Wood")

TEXT_TYPES = {"mysql": {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "binary",
                        "varbinary"},
              "postgresql": {"varchar", "text", "bpchar", "citext", "name"}}
DATE_TYPES = {"mysql": {"date", "datetime", "timestamp"},
              "postgresql": {"date", "timestamp", "timestamptz"}}
IP_TYPES = {"mysql": set(), "postgresql": {"inet", "cidr"}}
JSON_TYPES = {"json", "jsonb"}

# Strict mode: names that look personal (English and German), as whole words of the column's
# name (split at '_', '-', digits and camelCase) or as parts of a longer word; and the fake that
# would cover each. None: no fake fits, {null: true} or {value: ...} is the rule to write.
PERSONAL_WORDS = {
    "email": "email", "mail": "email", "e_mail": "email", "emailaddress": "email",
    "phone": "phone", "telefon": "phone", "tel": "phone", "mobile": "phone", "mobil": "phone",
    "handy": "phone", "fax": "phone", "telephone": "phone",
    "name": "name", "fullname": "name", "firstname": "first_name", "first": "first_name",
    "vorname": "first_name", "givenname": "first_name", "lastname": "last_name",
    "surname": "last_name", "nachname": "last_name", "familyname": "last_name",
    "middlename": "first_name", "username": "text", "login": "text",
    "address": "text", "adresse": "text", "street": "text", "strasse": "text", "straße": "text",
    "zip": "text", "plz": "text", "postcode": "text", "postal": "text", "city": "text",
    "ort": "text", "ip": "ipv4", "ipaddress": "ipv4", "ipv4": "ipv4", "ipv6": "ipv6",
    "iban": "iban", "bic": None, "birth": "date_shift", "birthday": "date_shift",
    "birthdate": "date_shift", "dob": "date_shift", "geburt": "date_shift",
    "geburtstag": "date_shift", "geburtsdatum": "date_shift", "born": "date_shift",
    "geboren": "date_shift", "token": None, "password": None,
    "passwort": None, "passwd": None, "pwd": None, "secret": None, "ssn": None,
    "salt": None, "credentials": None, "credentialssource": None, "apikey": None,
    "steuernummer": None, "taxid": None, "creditcard": None, "cardnumber": None,
}
PERSONAL_STEMS = ("email", "phone", "telefon", "passw", "birth", "geburt", "address", "adress",
                  "street", "strasse", "vorname", "nachname", "firstname", "lastname", "iban",
                  "secret", "token", "credential")


@dataclass(frozen=True)
class TableRule:
    pattern: str  # a table name or glob
    skip: bool = False
    where: str | None = None
    limit: int | None = None
    order: str | None = None
    origin: str = "synco.yaml"
    # a framework's smart exclusion of rows: applies only where its table and the tables its
    # condition reads (``needs``, bare names) exist; otherwise it is left out silently
    optional: bool = False
    needs: tuple[str, ...] = ()

    def text(self) -> str:
        if self.skip:
            return "skip (structure only)"
        if self.where is not None:
            return f"where {self.where}"
        return f"limit {self.limit}" + (f" order by {self.order}" if self.order else "")


@dataclass(frozen=True)
class ColumnRule:
    table: str  # a table name or glob
    column: str  # a column name or glob
    kind: str  # a fake of KINDS, or keep, value, null
    value: str | None = None
    origin: str = "synco.yaml"

    @property
    def key(self) -> str:
        return f"{self.table}.{self.column}"

    def text(self) -> str:
        if self.kind == "value":
            return "value (a fixed value)"
        return "null" if self.kind == "null" else self.kind


@dataclass
class Rules:
    """What synco.yaml and the presets ask for; ``resolve`` lays it over a database."""

    tables: list[TableRule] = field(default_factory=list)
    columns: list[ColumnRule] = field(default_factory=list)
    strict: bool = False
    secret: str | None = None
    secret_origin: str = ""
    presets: list[ColumnRule] = field(default_factory=list)  # apply where nothing else does
    origin: str = "synco.yaml"

    def active(self) -> bool:
        return bool(self.tables or self.columns or self.strict or self.presets)

    def filters(self) -> list[TableRule]:
        return [r for r in self.tables if not r.skip]


# --- reading the rules (synco.yaml's checks call these; a ValueError is (problem, hint)) -----

def table_rule(key: str, value: object, origin: str = "synco.yaml") -> TableRule:
    if value == "skip":
        return TableRule(key, skip=True, origin=origin)
    example = f'write {key}: skip, {{where: "id > 100"}} or {{limit: 1000, order: "id desc"}}'
    if not isinstance(value, dict) or not value or set(value) - {"where", "limit", "order"}:
        raise ValueError("must be skip, {where: SQL} or {limit: N, order: SQL}", example)
    if "where" in value:
        if set(value) != {"where"} or not isinstance(value["where"], str) or not value["where"].strip():
            raise ValueError("where is a condition on its own (an SQL text)", example)
        return TableRule(key, where=value["where"].strip(), origin=origin)
    limit, order = value.get("limit"), value.get("order")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise ValueError("limit must be a whole number of rows", example)
    if order is not None and (not isinstance(order, str) or not order.strip()):
        raise ValueError("order must be an SQL ORDER BY list, e.g. \"id desc\"", example)
    return TableRule(key, limit=limit, order=order.strip() if order else None, origin=origin)


def column_rule(key: str, value: object, origin: str = "synco.yaml") -> ColumnRule:
    table, dot, column = str(key).rpartition(".")
    if not dot or not table or not column:
        raise ValueError("must be TABLE.COLUMN (globs allowed, e.g. \"*.email\")",
                         "write users.email: email")
    kinds = ", ".join([*KINDS, "keep"])
    if isinstance(value, str):
        if value not in KINDS and value != "keep":
            close = difflib.get_close_matches(value, [*KINDS, "keep"], 1)
            raise ValueError(f"unknown fake {value!r}" + (f" (did you mean {close[0]}?)" if close else ""),
                             f"one of {kinds}, or {{value: ...}} or {{null: true}}")
        return ColumnRule(table, column, value, origin=origin)
    if isinstance(value, dict) and len(value) == 1 and set(value) <= {"null", None} and \
            list(value.values()) == [True]:  # YAML reads the key null as None
        return ColumnRule(table, column, "null", origin=origin)
    if isinstance(value, dict) and set(value) == {"value"} and \
            isinstance(value["value"], (str, int, float)) and not isinstance(value["value"], bool):
        return ColumnRule(table, column, "value", str(value["value"]), origin=origin)
    raise ValueError("must be a fake, {value: ...} or {null: true}",
                     f"one of {kinds}, or {{value: \"fixed text\"}} or {{null: true}}")


def derived_key(secret: str) -> str:
    """The key the database sees: the secret never leaves this process."""
    return hmac.new(secret.encode("utf-8"), KEY_LABEL, hashlib.sha256).hexdigest()


def shift_days(secret: str) -> int:
    """The per-project shift of date_shift: 1 to 365 days, earlier or later."""
    raw = hmac.new(secret.encode("utf-8"), KEY_LABEL + b" date_shift", hashlib.sha256).digest()
    days = 1 + int.from_bytes(raw[:4], "big") % 365
    return days if raw[4] & 1 else -days


# --- the catalog ---------------------------------------------------------------------------

@dataclass
class Column:
    name: str
    type: str  # MySQL's DATA_TYPE; PostgreSQL's base type name (varchar, text, inet, …)
    length: int | None  # maximum characters (text types), else None
    nullable: bool
    generated: bool = False
    cast: str = ""  # PostgreSQL: format_type, for the cast of a fake


@dataclass
class ForeignKey:
    child: str
    columns: list[str]
    parent: str
    parent_columns: list[str]


@dataclass
class Catalog:
    engine: str
    tables: dict[str, list[Column]]  # as the dumper names them, in its order
    keys: dict[str, list[str]]  # the row key (primary, else a NOT NULL unique index)
    unique: dict[str, set[str]]  # columns that are unique on their own
    fks: list[ForeignKey]

    def bare(self, table: str) -> str:
        return table.rsplit(".", 1)[-1].strip('"`').replace('""', '"')


def read_catalog(engine: str, select: Callable[..., list[tuple]], database: str) -> Catalog:
    """Columns, keys, unique columns and foreign keys, through the dumper's connection."""
    return (_mysql_catalog if engine == "mysql" else _pg_catalog)(select, database)


def _mysql_catalog(select, db: str) -> Catalog:
    tables: dict[str, list[Column]] = {}
    for table, name, dtype, length, nullable, generated in select(
            "SELECT c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, c.CHARACTER_MAXIMUM_LENGTH, c.IS_NULLABLE, "
            "c.IS_GENERATED FROM information_schema.COLUMNS c JOIN information_schema.TABLES t "
            "ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME "
            "WHERE c.TABLE_SCHEMA = %s AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') "
            "ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION", (db,)):
        tables.setdefault(table, []).append(Column(name, dtype.lower(), length, nullable == "YES",
                                                   generated == "ALWAYS"))
    indexes: dict[tuple[str, str], list[tuple[str, bool]]] = {}
    for table, index, col, sub_part in select(
            "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS "
            "WHERE TABLE_SCHEMA = %s AND NON_UNIQUE = 0 "
            "ORDER BY TABLE_NAME, INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX", (db,)):
        indexes.setdefault((table, index), []).append((col, sub_part is None))
    fks: dict[tuple[str, str], ForeignKey] = {}
    for name, table, col, parent, parent_col in select(
            "SELECT CONSTRAINT_NAME, TABLE_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME "
            "FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = %s AND "
            "REFERENCED_TABLE_SCHEMA = %s ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION", (db, db)):
        fk = fks.setdefault((table, name), ForeignKey(table, [], parent, []))
        fk.columns.append(col)
        fk.parent_columns.append(parent_col)
    return _finish("mysql", tables, indexes, list(fks.values()))


_PG_COLUMNS = """
SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), a.attname,
       bt.typname, pg_catalog.format_type(a.atttypid, a.atttypmod),
       CASE WHEN bt.typname IN ('varchar', 'bpchar') AND COALESCE(NULLIF(t.typtypmod, -1), a.atttypmod) > 4
            THEN COALESCE(NULLIF(t.typtypmod, -1), a.atttypmod) - 4 END,
       NOT a.attnotnull AND NOT (t.typtype = 'd' AND t.typnotnull), a.attgenerated <> ''
FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
ORDER BY n.nspname, c.relname, a.attnum"""

_PG_INDEXES = """
SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), ic.relname,
       a.attname, a.attnotnull
FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL pg_catalog.unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY k(attnum, pos)
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indisunique AND i.indisvalid AND i.indpred IS NULL
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
ORDER BY 1, i.indisprimary DESC, ic.relname, k.pos"""

_PG_FKS = """
SELECT con.oid, pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(c.relname),
       pg_catalog.quote_ident(pn.nspname) || '.' || pg_catalog.quote_ident(p.relname),
       ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(con.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i),
       ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(con.confkey) WITH ORDINALITY k(n, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i)
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
JOIN pg_catalog.pg_class p ON p.oid = con.confrelid JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
WHERE con.contype = 'f' AND NOT p.relispartition
ORDER BY 2, con.conname"""


# (a foreign key declared on a partitioned table is cloned onto each partition, the tables the
# dump reads; one that references a partitioned table is cloned for each of its partitions too:
# those clones are left out, the reference to the partitioned table itself is the one that counts)


def _pg_catalog(select, _db: str) -> Catalog:
    tables: dict[str, list[Column]] = {}
    for table, name, base, cast, length, nullable, generated in select(_PG_COLUMNS):
        tables.setdefault(table, []).append(Column(name, base, length, nullable, generated, cast))
    indexes: dict[tuple[str, str], list[tuple[str, bool]]] = {}
    for table, index, col, notnull in select(_PG_INDEXES):
        indexes.setdefault((table, index), []).append((col, bool(notnull) and col is not None))
    fks = [ForeignKey(child, list(cols), parent, list(pcols))
           for _oid, child, parent, cols, pcols in select(_PG_FKS)]
    return _finish("postgresql", tables, indexes, fks)


def _finish(engine, tables, indexes, fks) -> Catalog:
    keys: dict[str, list[str]] = {}
    unique: dict[str, set[str]] = {}
    for (table, _index), parts in indexes.items():
        cols = {c.name: c for c in tables.get(table, [])}
        if len(parts) == 1 and parts[0][0] is not None:
            unique.setdefault(table, set()).add(parts[0][0])
        if table not in keys and all(col in cols and ok and not cols[col].nullable for col, ok in parts):
            keys[table] = [col for col, _ in parts]
    return Catalog(engine, tables, keys, unique, fks)


# --- lay the rules over the catalog ---------------------------------------------------------

@dataclass
class Shape:
    """How the dump reads one table: ``columns`` maps a column to the SQL expression of its
    fake (MySQL: the literal's bytes, as the dump's other pieces; PostgreSQL: the value, cast to
    the column's type); ``where`` keeps the rows the filters keep."""

    columns: dict[str, str] = field(default_factory=dict)
    where: str | None = None


@dataclass
class Decision:
    table: str
    column: str
    rule: ColumnRule
    note: str = ""  # e.g. "follows the foreign key to …"


@dataclass
class Resolved:
    shapes: dict[str, Shape]
    decisions: list[Decision]
    filters: dict[str, str]  # table -> why its rows are filtered (its rule, or a foreign key)
    refused: list[tuple[str, str, str]]  # strict: (table, column, suggested rule)
    key: str | None  # the derived key for the session variable (None: no fake needs it)
    notes: list[str] = field(default_factory=list)


def _matches(pattern: str, name: str, bare: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(bare, pattern)


def _glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _closest(word: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(names), 3)
    return f"closest: {', '.join(close)}" if close else "check the name"


def resolve(rules: Rules, catalog: Catalog, dumped: Iterable[str],
            skipped: Callable[[str], bool] = lambda t: False, listing: bool = False) -> Resolved:
    """The shapes for the tables the dump reads; raises UsageError (one line) for a rule that
    names nothing, a fake that cannot fit its column, a missing secret, or strict mode's list
    (``listing``, for detect: neither of the last two; ``refused`` lists strict mode's columns)."""
    dumped = list(dumped)
    bare = {t: catalog.bare(t) for t in dumped}
    origin = rules.origin
    present = {catalog.bare(t) for t in catalog.tables}
    rules = dataclasses.replace(rules, tables=[
        r for r in rules.tables if not r.optional or (
            any(_matches(r.pattern, t, bare[t]) for t in dumped) and set(r.needs) <= present)])
    for rule in rules.tables:
        if not _glob(rule.pattern) and not any(_matches(rule.pattern, t, bare[t]) for t in dumped):
            raise UsageError(f"{rule.origin}: tables: {rule.pattern}: no such table",
                             hint=_closest(rule.pattern, bare.values()))
    for rule in rules.columns:
        where = f"{rule.origin}: columns: {rule.key}"
        tables = [t for t in dumped if _matches(rule.table, t, bare[t])]
        if not tables and not _glob(rule.table):
            raise UsageError(f"{where}: no table {rule.table}", hint=_closest(rule.table, bare.values()))
        if tables and not _glob(rule.table) and not _glob(rule.column) and not any(
                c.name == rule.column for t in tables for c in catalog.tables.get(t, [])):
            names = {c.name for t in tables for c in catalog.tables.get(t, [])}
            raise UsageError(f"{where}: table {bare[tables[0]]} has no column {rule.column}",
                             hint=_closest(rule.column, names))
    decisions: dict[tuple[str, str], Decision] = {}
    for table in dumped:
        if skipped(table):
            continue
        for col in catalog.tables.get(table, []):
            rule = _pick(rules, table, bare[table], col.name)
            if rule is not None:
                decisions[(table, col.name)] = Decision(table, col.name, rule)
    _follow_keys(catalog, decisions, dumped, skipped)
    for d in decisions.values():
        _check_fit(catalog, d)
    refused = []
    if rules.strict:
        for table in dumped:
            if skipped(table):
                continue
            for col in catalog.tables.get(table, []):
                if (table, col.name) not in decisions and not col.generated:
                    found = personal(col.name, col.type)
                    if found is not None:
                        refused.append((table, col.name, found))
    needs_key = any(d.rule.kind in HASHED for d in decisions.values())
    secret, notes = rules.secret, []
    if needs_key and not secret and not rules.strict and \
            all(d.rule.origin.endswith(" preset") for d in decisions.values() if d.rule.kind in HASHED):
        # presets only: a key of this session, so that a project without a secret still keeps
        # its personal data on the server; the fakes then change from one pull to the next
        secret = secrets.token_hex(32)
        notes.append(f"no anonymize secret: the presets' fakes use a key of this session only, and "
                     f"change with every pull (set {SECRET_ENV} to keep them)")
    if listing:
        return Resolved({}, list(decisions.values()),
                        {t: why for t, (_c, why) in _filters(rules, catalog, dumped, bare, skipped).items()},
                        refused, None)
    if (needs_key or rules.strict) and not secret:
        why = "column rules with fakes need" if needs_key else "anonymize: strict needs"
        raise UsageError(f"{origin}: {why} a secret, and none is set",
                         hint=f"set {SECRET_ENV} in the server's environment (e.g. from "
                              f"'openssl rand -hex 32'), or anonymize_secret: ${{{SECRET_ENV}}} "
                              f"in {origin}; keep it the same from one pull to the next")
    if rules.secret and len(rules.secret) < MIN_SECRET:
        raise UsageError(f"{rules.secret_origin or origin}: the anonymize secret is shorter than "
                         f"{MIN_SECRET} characters", hint="use a long random value, e.g. from "
                                                         "'openssl rand -hex 32'")
    if refused:
        listed = ", ".join(f"{bare[t]}.{c} ({s or '{null: true}'})" for t, c, s in refused)
        raise UsageError(f"anonymize: strict: {len(refused)} column{'s' * (len(refused) != 1)} look "
                         f"personal and have no rule: {listed}",
                         hint=f"add a rule for each under columns: in {origin} (the one in "
                              f"brackets would do; keep: when a column is not personal)")
    filters = _filters(rules, catalog, dumped, bare, skipped)
    shapes: dict[str, Shape] = {}
    dialect = Dialect(catalog.engine, secret or "")
    for d in decisions.values():
        if d.rule.kind == "keep":
            continue
        col = next(c for c in catalog.tables[d.table] if c.name == d.column)
        shapes.setdefault(d.table, Shape()).columns[d.column] = dialect.piece(col, d.rule)
    for table, (condition, _why) in filters.items():
        shapes.setdefault(table, Shape()).where = condition
    return Resolved(shapes, list(decisions.values()), {t: why for t, (_c, why) in filters.items()},
                    refused, derived_key(secret) if secret and needs_key else None, notes)


def _pick(rules: Rules, table: str, bare: str, column: str) -> ColumnRule | None:
    """synco.yaml's exact rule, else its first matching glob, else a preset's."""
    yaml = [r for r in rules.columns if _matches(r.table, table, bare) and fnmatch.fnmatchcase(column, r.column)]
    exact = [r for r in yaml if not _glob(r.table) and not _glob(r.column)]
    for found in (exact, yaml):
        if found:
            return found[0]
    for r in rules.presets:
        if _matches(r.table, table, bare) and fnmatch.fnmatchcase(column, r.column):
            return r
    return None


def _follow_keys(catalog: Catalog, decisions: dict, dumped: list[str], skipped) -> None:
    """A column that references an anonymized column gets the same fake (the key still joins)."""
    present = set(dumped)
    changed = True
    while changed:
        changed = False
        for fk in catalog.fks:
            if fk.child not in present or skipped(fk.child):
                continue
            for col, pcol in zip(fk.columns, fk.parent_columns):
                parent = decisions.get((fk.parent, pcol))
                if parent is None or parent.rule.kind == "keep":
                    continue
                mine = decisions.get((fk.child, col))
                if mine is None:
                    note = f"follows the foreign key to {catalog.bare(fk.parent)}.{pcol}"
                    decisions[(fk.child, col)] = Decision(fk.child, col, parent.rule, note)
                    changed = True
                elif (mine.rule.kind, mine.rule.value) != (parent.rule.kind, parent.rule.value):
                    raise UsageError(
                        f"{mine.rule.origin}: columns: {catalog.bare(fk.child)}.{col} ({mine.rule.text()}) "
                        f"references {catalog.bare(fk.parent)}.{pcol} ({parent.rule.text()}): the "
                        f"foreign key would break", hint="give both columns the same rule")


def _check_fit(catalog: Catalog, d: Decision) -> None:
    engine = catalog.engine
    col = next(c for c in catalog.tables[d.table] if c.name == d.column)
    kind, name = d.rule.kind, f"{catalog.bare(d.table)}.{d.column}"
    where = f"{d.rule.origin}: columns: {name}"
    if kind == "keep":
        return
    if col.generated:
        raise UsageError(f"{where}: is a generated column: its value is computed from the others",
                         hint="anonymize the columns it is computed from instead")
    unique = d.column in catalog.unique.get(d.table, set())
    if kind == "null":
        if not col.nullable:
            raise UsageError(f"{where}: {{null: true}} on a NOT NULL column",
                             hint="use {value: ...} or a fake instead")
        return
    if kind == "value":
        if unique:
            raise UsageError(f"{where}: one fixed value in a unique column would repeat",
                             hint="use a fake that stays unique (email, text) or {null: true}")
        if col.length is not None and len(d.rule.value or "") > col.length:
            raise UsageError(f"{where}: the value has {len(d.rule.value or '')} characters, the "
                             f"column holds {col.length}", hint="give a shorter value")
        return
    if kind == "date_shift":
        if col.type not in DATE_TYPES[engine]:
            raise UsageError(f"{where}: date_shift needs a date or timestamp column, not {col.type}",
                             hint="use another fake, {value: ...} or {null: true}")
        return
    allowed = TEXT_TYPES[engine] | (IP_TYPES[engine] if kind in ("ipv4", "ipv6") else set())
    if col.type not in allowed:
        raise UsageError(f"{where}: the fake {kind} gives text; the column is {col.type}",
                         hint="use {value: ...} or {null: true} for it")
    if col.type in IP_TYPES[engine]:
        return
    if col.length is not None and col.length < MIN_LENGTH.get(kind, 1):
        raise UsageError(f"{where}: the fake {kind} needs {MIN_LENGTH[kind]} characters, the column "
                         f"holds {col.length}", hint="use text, {value: ...} or {null: true}")
    if unique and col.length is not None and col.length < UNIQUE_LENGTH.get(kind, 0):
        raise UsageError(f"{where}: the column is unique and holds {col.length} characters: the fake "
                         f"{kind} needs {UNIQUE_LENGTH[kind]} to stay unique",
                         hint="use ipv6 or iban if they fit, or {null: true}")
    if unique and kind not in UNIQUE_KINDS:
        raise UsageError(f"{where}: the column is unique and the fake {kind} repeats values",
                         hint="use a fake that stays unique: " + ", ".join(sorted(UNIQUE_KINDS - {'date_shift'})))


def personal(column: str, dtype: str) -> str | None:
    """Strict mode: the fake that would cover a column that looks personal ('' when only
    {null: true} or {value: ...} fits), None when it does not look personal."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1_\2", column).lower()
    words = [w for w in re.split(r"[^a-zß]+", spaced) if w]
    joined = "".join(words)
    for word in [joined, *reversed(words)]:  # the last word names the thing: last_login_ip
        if word in PERSONAL_WORDS:
            return PERSONAL_WORDS[word] or ""
    for stem in PERSONAL_STEMS:
        if stem in joined:
            return next((PERSONAL_WORDS[w] or "" for w in PERSONAL_WORDS if stem in w), "")
    if dtype in JSON_TYPES:
        return ""
    if dtype in ("inet", "cidr"):
        return "ipv4"
    return None


# --- filters ------------------------------------------------------------------------------

def _filters(rules: Rules, catalog: Catalog, dumped: list[str], bare: dict,
             skipped) -> dict[str, tuple[str, str]]:
    """table -> (SQL condition on the table's rows, why), for every table a filter reaches:
    its own rule, and rows that reference (by a foreign key) rows another filter leaves out."""
    q = Dialect(catalog.engine, "")
    own: dict[str, str] = {}
    why: dict[str, list[str]] = {}
    for table in dumped:
        if skipped(table):
            continue
        rule = next((r for r in rules.filters() if _matches(r.pattern, table, bare[table])), None)
        if rule is None:
            continue
        if rule.where is not None:
            own[table] = f"({rule.where})"
        else:
            key = catalog.keys.get(table)
            if not key:
                raise UsageError(f"{rule.origin}: tables: {rule.pattern}: limit needs a primary key "
                                 f"(or a NOT NULL unique index) on {bare[table]}",
                                 hint="use {where: ...} for this table")
            order = ", ".join(([rule.order] if rule.order else []) + [q.ident(k) for k in key])
            cols = ", ".join(q.ident(k) for k in key)
            mine = ", ".join(f"{table if catalog.engine == 'postgresql' else q.ident(table)}.{q.ident(k)}"
                             for k in key)
            only = "ONLY " if catalog.engine == "postgresql" else ""
            from_ = table if catalog.engine == "postgresql" else q.ident(table)
            own[table] = (f"({mine}) IN (SELECT {cols} FROM (SELECT {cols} FROM {only}{from_} "
                          f"ORDER BY {order} LIMIT {int(rule.limit)}) AS synco_limit)")
        why.setdefault(table, []).append(f"{rule.text()} ({rule.origin})")
    by_child: dict[str, list[ForeignKey]] = {}
    for fk in catalog.fks:
        by_child.setdefault(fk.child, []).append(fk)
    present = set(dumped)
    memo: dict[str, str | None] = {}

    def condition(table: str, path: tuple[str, ...]) -> str | None:
        """The rows of ``table`` the copy keeps, as a condition on ``table``; None: all."""
        if table in memo:
            return memo[table]
        if skipped(table) or table not in present:
            return "FALSE" if table in present else None
        parts = [own[table]] if table in own else []
        for fk in by_child.get(table, []):
            if fk.parent in path or fk.parent == table:
                if _reaches(fk.parent, by_child, own, skipped, present):
                    cycle = " -> ".join(bare.get(t, t) for t in (*path[path.index(fk.parent):], table)) \
                        if fk.parent in path else f"{bare[table]} -> {bare[table]}"
                    raise UsageError(f"the filters reach a cycle of foreign keys ({cycle}): synco "
                                     f"cannot keep it consistent", hint="filter those tables so "
                                     "that the cycle stays whole, or leave the filter out")
                continue
            parent = condition(fk.parent, (*path, table))
            if parent is None:
                continue
            ref = q.table_ref(table)
            nulls = " OR ".join(f"{ref}.{q.ident(c)} IS NULL" for c in fk.columns)
            joins = " AND ".join(f"{q.table_ref(fk.parent)}.{q.ident(p)} = {ref}.{q.ident(c)}"
                                 for c, p in zip(fk.columns, fk.parent_columns))
            inner = "" if parent == "FALSE" else \
                f" OR EXISTS (SELECT 1 FROM {q.from_(fk.parent)} WHERE {joins} AND {parent})"
            parts.append(f"({nulls}{inner})")
            why.setdefault(table, []).append(f"follows the foreign key to {bare.get(fk.parent, fk.parent)}")
        memo[table] = " AND ".join(parts) if parts else None
        return memo[table]

    out = {}
    for table in dumped:
        found = condition(table, ())
        if found is not None and not skipped(table):
            out[table] = (found, "; ".join(dict.fromkeys(why.get(table, []))))
    return out


def _reaches(table, by_child, own, skipped, present, seen=None) -> bool:
    """Whether ``table``'s rows are filtered at all (its own rule or one up its foreign keys)."""
    seen = set() if seen is None else seen
    if table in seen:
        return False
    seen.add(table)
    if table in own or (table in present and skipped(table)):
        return True
    return any(_reaches(fk.parent, by_child, own, skipped, present, seen) for fk in by_child.get(table, []))


# --- the fakes as SQL ---------------------------------------------------------------------

class Dialect:
    def __init__(self, engine: str, secret: str) -> None:
        self.engine, self.secret = engine, secret
        self.my = engine == "mysql"

    def ident(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`" if self.my else '"' + name.replace('"', '""') + '"'

    def table_ref(self, table: str) -> str:
        return self.ident(table) if self.my else table

    def from_(self, table: str) -> str:
        return self.ident(table) if self.my else f"ONLY {table}"

    def lit(self, text: str) -> str:
        if self.my:
            return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return "'" + text.replace("'", "''") + "'"

    def hash(self, col: str) -> str:
        if self.my:
            return f"SHA2(CONCAT({KEY_VAR['mysql']}, CAST({col} AS BINARY)), 256)"
        return (f"pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to("
                f"{KEY_VAR['postgresql']} || ({col})::text, 'UTF8')), 'hex')")

    def number(self, h: str, start: int, digits: int) -> str:
        """The hex digits start..start+digits-1 (1-based) of ``h`` as a non-negative integer."""
        if self.my:
            return f"CAST(CONV(SUBSTRING({h}, {start}, {digits}), 16, 10) AS UNSIGNED)"
        return f"('x' || pg_catalog.substr({h}, {start}, {digits}))::bit({4 * digits})::bigint"

    def concat(self, *parts: str) -> str:
        return f"CONCAT({', '.join(parts)})" if self.my else "(" + " || ".join(parts) + ")"

    def pick(self, index: str, words: tuple[str, ...]) -> str:
        listed = ", ".join(self.lit(w) for w in words)
        if self.my:
            return f"ELT(1 + MOD({index}, {len(words)}), {listed})"
        return f"(ARRAY[{listed}])[1 + ({index}) % {len(words)}]"

    def digits(self, h: str, start: int, count: int) -> str:
        """``count`` decimal digits (zero-padded) from 15 hex digits of ``h``."""
        n = self.number(h, start, 15)
        if self.my:
            return f"LPAD(MOD({n}, {10 ** count}), {count}, '0')"
        return f"pg_catalog.lpad((({n}) % {10 ** count})::text, {count}, '0')"

    def sub(self, h: str, start: int, count: int) -> str:
        return f"SUBSTRING({h}, {start}, {count})" if self.my else f"pg_catalog.substr({h}, {start}, {count})"

    def fake(self, col: Column, rule: ColumnRule, ref: str) -> str:
        kind = rule.kind
        h = self.hash(ref)
        if kind == "email":
            room = min(16, (col.length or 64) - 1 - len(EMAIL_DOMAIN))
            return self.concat("'u'", self.sub(h, 1, room), self.lit(EMAIL_DOMAIN))
        if kind == "first_name":
            return self.pick(self.number(h, 1, 8), FIRST_NAMES)
        if kind == "last_name":
            return self.pick(self.number(h, 9, 8), LAST_NAMES)
        if kind == "name":
            return self.concat(self.pick(self.number(h, 1, 8), FIRST_NAMES), "' '",
                               self.pick(self.number(h, 9, 8), LAST_NAMES))
        if kind == "phone":
            return self.concat("'+49 151 '", self.digits(h, 1, 8))
        # each fake names the hash once or twice: the database computes it once per mention
        if kind == "ipv4":
            n = self.number(h, 1, 6)
            if self.my:
                return f"INET_NTOA(167772160 + {n})"  # 10.0.0.0 + 24 bits
            return f"pg_catalog.host('10.0.0.0'::inet + {n})"
        if kind == "ipv6":
            groups = self.sub(h, 1, 24)
            for at in (21, 17, 13, 9, 5):  # colons between the six groups of four
                groups = (f"INSERT({groups}, {at}, 0, ':')" if self.my
                          else f"pg_catalog.overlay({groups}, ':', {at}, 0)")
            return self.concat("'2001:db8:'", groups)
        if kind == "iban":
            bban = self.digits(h, 1, 18)
            if self.my:
                check = f"LPAD(98 - MOD(CAST(CONCAT({bban}, '131400') AS DECIMAL(30, 0)), 97), 2, '0')"
            else:
                check = f"pg_catalog.lpad((98 - (({bban}) || '131400')::numeric % 97)::text, 2, '0')"
            return self.concat("'DE'", check, bban)
        if kind == "text":
            return self.concat("'text-'", self.sub(h, 1, 16))
        if kind == "date_shift":
            days = shift_days(self.secret)
            if self.my:
                return f"{ref} + INTERVAL {days} DAY"
            return f"{ref} + INTERVAL '{days} days'"
        raise AssertionError(kind)

    def piece(self, col: Column, rule: ColumnRule) -> str:
        ref = self.ident(col.name)
        if rule.kind == "null":
            value = "NULL"
        elif rule.kind == "value":
            value = f"CASE WHEN {ref} IS NULL THEN NULL ELSE {self.lit(rule.value or '')} END"
        else:
            value = self.fake(col, rule, ref)
            if col.length is not None and rule.kind in TRUNCATED:
                value = f"LEFT({value}, {col.length})" if self.my else f"pg_catalog.left({value}, {col.length})"
        if not self.my:
            return f"({value})::{col.cast}"
        # MySQL: the literal's bytes, as the dump's other pieces (engines/mysql/sql.py); QUOTE()
        # gives NULL for NULL, and the fakes are ASCII; a fixed value goes as UTF-8 text
        if rule.kind == "null":
            return "_binary'NULL'"
        return (f"IF({ref} IS NULL, _binary'NULL', CAST(CONCAT('_utf8mb4', "
                f"CAST(QUOTE({value}) AS BINARY)) AS BINARY))")


# --- applying it to a dumper ----------------------------------------------------------------

def set_key(dumper, engine: str, key: str) -> None:
    """Hand the derived key to the dump's connection as a session variable (never in the text
    of a dump query; see docs/privacy.md for what a server's query log shows)."""
    if engine == "mysql":
        with dumper.conn.cursor() as cur:
            cur.execute("SET @synco_k = %s", (key,))
    else:
        dumper.conn.execute("SELECT pg_catalog.set_config('synco.k', %s, true)", (key,))


def prepare(dumper, engine: str, database: str, rules: Rules, skipped: Callable[[str], bool]) -> Resolved:
    """Resolve ``rules`` in the dumper's snapshot, hand it the shapes and the key."""
    catalog = read_catalog(engine, lambda sql, args=None: _select(dumper, engine, sql, args), database)
    resolved = resolve(rules, catalog, dumper.tables(), skipped)
    if resolved.key:
        set_key(dumper, engine, resolved.key)
    dumper.shapes = resolved.shapes
    return resolved


def _select(dumper, engine: str, sql: str, args) -> list[tuple]:
    if args is None:
        return dumper.select(sql)
    if engine == "mysql":
        with dumper.conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())
    return dumper.conn.execute(sql, args).fetchall()


def describe(rules: Rules, resolved: Resolved | None, bare: Callable[[str], str]) -> list[str]:
    """Lines for ``synco-source detect``: the rules and where they apply."""
    lines = []
    secret = (f"anonymize secret: from {rules.secret_origin}" if rules.secret
              else f"anonymize secret: not set ({SECRET_ENV}); presets then use a key of each session")
    if rules.columns or rules.presets or rules.strict:
        lines.append(secret)
    if rules.strict:
        lines.append("anonymize: strict (a column that looks personal and has no rule stops serve)")
    if resolved is None:
        lines += [f"table rule {r.pattern}: {r.text()} ({r.origin})" for r in rules.tables]
        lines += [f"column rule {r.key}: {r.text()} ({r.origin})" for r in [*rules.columns, *rules.presets]]
        return lines
    for table, why in resolved.filters.items():
        lines.append(f"rows of {bare(table)}: {why}")
    for d in resolved.decisions:
        note = d.note or d.rule.origin
        lines.append(f"column {bare(d.table)}.{d.column}: {d.rule.text()} ({note})")
    for table, column, suggested in resolved.refused:
        lines.append(f"strict mode refuses {bare(table)}.{column}: looks personal, no rule "
                     f"(e.g. {suggested or '{null: true}'})")
    return lines


def listing(rules: Rules, dumper, engine: str, database: str, skipped) -> Resolved:
    """``resolve`` for ``detect``: in a dumper's snapshot, nothing handed to it."""
    catalog = read_catalog(engine, lambda sql, args=None: _select(dumper, engine, sql, args), database)
    return resolve(rules, catalog, dumper.tables(), skipped, listing=True)


def checked(rules: Rules, dumper, engine: str, database: str, skipped) -> Resolved:
    """``prepare`` plus a zero-row read of every shaped table: an invalid WHERE or a fake the
    server refuses is the database's error, naming the rule, before anything is published."""
    resolved = prepare(dumper, engine, database, rules, skipped)
    # a table's own rules first: a bad WHERE is named by its table, not by a table it reaches
    inherited = lambda t: resolved.filters.get(t, "").startswith("follows")  # noqa: E731
    for table, shape in sorted(resolved.shapes.items(), key=lambda item: inherited(item[0])):
        q = Dialect(engine, "")
        cols = ", ".join(shape.columns.values()) or "1"
        where = f" WHERE ({shape.where}) AND 1 = 0" if shape.where else " WHERE 1 = 0"
        try:
            dumper.select(f"SELECT {cols} FROM {q.from_(table)}{where}")
        except Exception as exc:  # the engine's DatabaseError: its message names the database
            detail = str(exc).split(": ", 1)[-1]
            raise UsageError(f"the privacy rules for table {q.table_ref(table) if engine == 'postgresql' else table} "
                             f"do not run: {detail}",
                             hint=f"check its rules under tables: and columns: in {rules.origin}") from None
    return resolved



def summary(resolved: Resolved, bare: Callable[[str], str]) -> list[str]:
    """What serve says about the rules it applies (names only, never a value)."""
    lines = list(resolved.notes)
    changed = [d for d in resolved.decisions if d.rule.kind != "keep"]
    if changed:
        shown = ", ".join(f"{bare(d.table)}.{d.column} ({d.rule.text()})" for d in changed)
        lines.append(f"anonymized: {shown}")
    if resolved.filters:
        lines.append("rows filtered: " + ", ".join(f"{bare(t)} ({why})" for t, why in resolved.filters.items()))
    return lines
