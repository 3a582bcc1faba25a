"""Object kinds the dumper does not copy: found by name, refused loudly, never dropped silently.

Every check runs before anything is dumped, and the refusal names every offending object, grouped
by kind, so that one run tells the user all there is to change."""

from __future__ import annotations

from ...errors import DatabaseError
from .catalog import USER_NS, not_extension
from .sql import query


def _in_schema(catalog: str, alias: str, nsp_col: str, name_expr: str, extra: str = "") -> str:
    return (f"SELECT {name_expr} FROM pg_catalog.{catalog} {alias} JOIN pg_catalog.pg_namespace n "
            f"ON n.oid = {alias}.{nsp_col} WHERE {USER_NS} AND {not_extension(catalog, alias + '.oid')} {extra}")


def _named(alias: str, col: str) -> str:
    return f"pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident({alias}.{col})"


def _global(catalog: str, alias: str, name_expr: str, extra: str = "") -> str:
    return (f"SELECT {name_expr} FROM pg_catalog.{catalog} {alias} WHERE {alias}.oid >= 16384 "
            f"AND {not_extension(catalog, alias + '.oid')} {extra}")


_TYPE_NAME = "pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(t.typname)"
CHECKS = [
    ("operator", _in_schema("pg_operator", "o", "oprnamespace", "pg_catalog.quote_ident(n.nspname) || '.' || o.oprname")),
    ("operator class", _in_schema("pg_opclass", "o", "opcnamespace", _named("o", "opcname"))),
    ("operator family", _in_schema("pg_opfamily", "o", "opfnamespace", _named("o", "opfname"))),
    ("conversion", _in_schema("pg_conversion", "o", "connamespace", _named("o", "conname"))),
    ("text search configuration", _in_schema("pg_ts_config", "o", "cfgnamespace", _named("o", "cfgname"))),
    ("text search dictionary", _in_schema("pg_ts_dict", "o", "dictnamespace", _named("o", "dictname"))),
    ("text search parser", _in_schema("pg_ts_parser", "o", "prsnamespace", _named("o", "prsname"))),
    ("text search template", _in_schema("pg_ts_template", "o", "tmplnamespace", _named("o", "tmplname"))),
    ("foreign table", _in_schema("pg_class", "c", "relnamespace", _named("c", "relname"), "AND c.relkind = 'f'")),
    ("typed table (CREATE TABLE ... OF type)",
     _in_schema("pg_class", "c", "relnamespace", _named("c", "relname"),
                "AND c.relkind IN ('r', 'p') AND c.reloftype <> 0")),
    ("base type", _in_schema("pg_type", "t", "typnamespace", _TYPE_NAME, "AND t.typtype = 'b' AND NOT EXISTS ("
                             "SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)")),
    ("pseudo-type (shell type)", _in_schema("pg_type", "t", "typnamespace", _TYPE_NAME, "AND t.typtype = 'p'")),
    ("range type with a canonical function",
     _in_schema("pg_type", "t", "typnamespace", _TYPE_NAME, "AND t.typtype = 'r' AND EXISTS (SELECT 1 FROM "
                "pg_catalog.pg_range r WHERE r.rngtypid = t.oid AND r.rngcanonical <> 0)")),
    ("ordered-set or moving aggregate",
     _in_schema("pg_proc", "p", "pronamespace", _named("p", "proname") + " || '(' || "
                "pg_catalog.pg_get_function_identity_arguments(p.oid) || ')'",
                "AND p.prokind = 'a' AND EXISTS (SELECT 1 FROM pg_catalog.pg_aggregate a WHERE a.aggfnoid = "
                "p.oid AND (a.aggkind <> 'n' OR a.aggmtransfn <> 0))")),
    ("cast", _global("pg_cast", "o", "o.castsource::pg_catalog.regtype || ' AS ' || o.casttarget::pg_catalog.regtype",
                     "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_cast'"
                     "::pg_catalog.regclass AND d.objid = o.oid AND d.deptype = 'i')")),  # multirange casts
    ("procedural language", _global("pg_language", "o", "pg_catalog.quote_ident(o.lanname)")),
    ("access method", _global("pg_am", "o", "pg_catalog.quote_ident(o.amname)")),
    ("foreign-data wrapper", _global("pg_foreign_data_wrapper", "o", "pg_catalog.quote_ident(o.fdwname)")),
    ("foreign server", _global("pg_foreign_server", "o", "pg_catalog.quote_ident(o.srvname)")),
    ("event trigger", _global("pg_event_trigger", "o", "pg_catalog.quote_ident(o.evtname)")),
    ("publication", _global("pg_publication", "o", "pg_catalog.quote_ident(o.pubname)")),
    ("transform", _global("pg_transform", "o", "o.trftype::pg_catalog.regtype::text")),
    # large objects live outside every table: the format has no place for their bytes
    ("large object", "SELECT 'with OID ' || l.oid FROM pg_catalog.pg_largeobject_metadata l"),
]

SHOWN = 5  # names shown per kind; the rest are counted


def _plural(kind: str) -> str:
    head, sep, tail = kind.partition(" (")
    head = head[:-1] + "ies" if head.endswith("y") and not head.endswith("ay") else head + "s"
    return head + sep + tail


def refusal(found: list[tuple[str, list[str]]]) -> DatabaseError:
    """One error naming every offending object, grouped by kind (``found``: kind, names)."""
    if len(found) == 1 and len(found[0][1]) == 1:
        kind, (name,) = found[0]
        return DatabaseError(f"the database contains the {kind} {name}, which synco cannot copy yet",
                             hint="drop it, or copy this database with pg_dump")
    groups = []
    for kind, names in found:
        more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
        label = kind if len(names) == 1 else f"{len(names)} {_plural(kind)}"
        groups.append(f"{label} {', '.join(names[:SHOWN])}{more}")
    count = sum(len(names) for _, names in found)
    return DatabaseError(f"the database contains {count} objects synco cannot copy yet: {'; '.join(groups)}",
                         hint="drop them, or copy this database with pg_dump (docs/postgresql.md lists "
                              "what synco copies)")


def refuse_unsupported(conn) -> None:
    """Raise DatabaseError naming every object of a kind synco cannot copy (nothing when none)."""
    found = []
    for what, sql in CHECKS:
        names = [r[0] for r in query(conn, f"SELECT * FROM ({sql}) x ORDER BY 1")]
        if names:
            found.append((what, names))
    if found:
        raise refusal(found)
