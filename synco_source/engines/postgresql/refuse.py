"""Object kinds the dumper does not copy: found by name, refused loudly, never dropped silently."""

from __future__ import annotations

from .catalog import USER_NS, not_extension, unsupported
from .sql import query


def _in_schema(catalog: str, alias: str, nsp_col: str, name_expr: str, extra: str = "") -> str:
    return (f"SELECT {name_expr} FROM pg_catalog.{catalog} {alias} JOIN pg_catalog.pg_namespace n "
            f"ON n.oid = {alias}.{nsp_col} WHERE {USER_NS} AND {not_extension(catalog, alias + '.oid')} {extra}")


def _named(alias: str, col: str) -> str:
    return f"pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident({alias}.{col})"


def _global(catalog: str, alias: str, name_expr: str, extra: str = "") -> str:
    return (f"SELECT {name_expr} FROM pg_catalog.{catalog} {alias} WHERE {alias}.oid >= 16384 "
            f"AND {not_extension(catalog, alias + '.oid')} {extra}")


_REL = "c.relname"
CHECKS = [
    ("operator", _in_schema("pg_operator", "o", "oprnamespace", "pg_catalog.quote_ident(n.nspname) || '.' || o.oprname")),
    ("operator class", _in_schema("pg_opclass", "o", "opcnamespace", _named("o", "opcname"))),
    ("operator family", _in_schema("pg_opfamily", "o", "opfnamespace", _named("o", "opfname"))),
    ("collation", _in_schema("pg_collation", "o", "collnamespace", _named("o", "collname"))),
    ("conversion", _in_schema("pg_conversion", "o", "connamespace", _named("o", "conname"))),
    ("text search configuration", _in_schema("pg_ts_config", "o", "cfgnamespace", _named("o", "cfgname"))),
    ("text search dictionary", _in_schema("pg_ts_dict", "o", "dictnamespace", _named("o", "dictname"))),
    ("text search parser", _in_schema("pg_ts_parser", "o", "prsnamespace", _named("o", "prsname"))),
    ("text search template", _in_schema("pg_ts_template", "o", "tmplnamespace", _named("o", "tmplname"))),
    ("foreign table", _in_schema("pg_class", "c", "relnamespace", _named("c", "relname"), "AND c.relkind = 'f'")),
    ("table with row level security", _in_schema("pg_class", "c", "relnamespace", _named("c", "relname"),
                                                 "AND (c.relrowsecurity OR c.relforcerowsecurity)")),
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
    ("rule", "SELECT pg_catalog.quote_ident(r.rulename) || ' on ' || r.ev_class::pg_catalog.regclass "
             "FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid = r.ev_class "
             "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
             f"WHERE r.rulename <> '_RETURN' AND {USER_NS} AND {not_extension('pg_rewrite', 'r.oid')}"),
    ("policy", "SELECT pg_catalog.quote_ident(p.polname) || ' on ' || p.polrelid::pg_catalog.regclass "
               "FROM pg_catalog.pg_policy p"),
    ("large object", "SELECT 'with OID ' || l.oid FROM pg_catalog.pg_largeobject_metadata l"),
    ("column with a non-default storage, compression or statistics target",
     "SELECT a.attrelid::pg_catalog.regclass || '.' || pg_catalog.quote_ident(a.attname) "
     "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
     "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
     f"WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'm') AND {USER_NS} "
     f"AND {not_extension('pg_class', 'c.oid')} AND (a.attstorage <> t.typstorage OR a.attcompression <> '' "
     "OR a.attstattarget >= 0)"),
]


def refuse_unsupported(conn) -> None:
    """Raise DatabaseError naming the first object of a kind synco cannot copy."""
    for what, sql in CHECKS:
        rows = query(conn, f"SELECT * FROM ({sql}) x ORDER BY 1 LIMIT 1")
        if rows:
            raise unsupported(what, rows[0][0])
