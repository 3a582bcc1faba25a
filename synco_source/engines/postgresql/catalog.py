"""Tables, columns, sequences and types read from the system catalogs, as DDL text.

Every query runs with ``search_path = ''`` so the ``pg_get_*def``/``format_type`` helpers print
schema-qualified names. Objects that belong to an extension (``pg_depend.deptype = 'e'``) are left
to ``CREATE EXTENSION``.
"""

from __future__ import annotations

from ...errors import DatabaseError
from .sql import qi, ql, query

USER_NS = ("n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'")


def not_extension(catalog: str, oid: str) -> str:
    return (f"NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = "
            f"'pg_catalog.{catalog}'::pg_catalog.regclass AND e.objid = {oid} AND e.deptype = 'e')")


def database_info(conn) -> dict:
    version, number, encoding, collate, ctype = query(
        conn, "SELECT pg_catalog.current_setting('server_version'), "
              "pg_catalog.current_setting('server_version_num')::int, "
              "pg_catalog.pg_encoding_to_char(encoding), datcollate, datctype "
              "FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()")[0]
    return {"server_version": version, "server_version_num": number, "encoding": encoding,
            "collate": collate, "ctype": ctype}


def schemas(conn) -> list[dict]:
    """CREATE SCHEMA for every user schema but public; DROP SCHEMA public when the source has none."""
    names = [r[0] for r in query(conn, f"SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE {USER_NS} "
                                       f"AND {not_extension('pg_namespace', 'n.oid')} ORDER BY 1")]
    out = [{"kind": "schema", "name": n, "sql": f"CREATE SCHEMA {qi(n)}"} for n in names if n != "public"]
    if "public" not in names:
        out.insert(0, {"kind": "schema", "name": "public", "sql": "DROP SCHEMA IF EXISTS public"})
    else:
        comment = query(conn, "SELECT pg_catalog.obj_description('public'::pg_catalog.regnamespace, "
                              "'pg_namespace')")[0][0]
        out.append({"kind": "comment", "name": "schema public",
                    "sql": f"COMMENT ON SCHEMA public IS {ql(comment) if comment is not None else 'NULL'}"})
    return out


def extensions(conn) -> list[dict]:
    rows = query(conn, "SELECT x.extname, n.nspname FROM pg_catalog.pg_extension x "
                       "JOIN pg_catalog.pg_namespace n ON n.oid = x.extnamespace ORDER BY x.oid")
    return [{"kind": "extension", "name": name,
             "sql": f"CREATE EXTENSION IF NOT EXISTS {qi(name)} WITH SCHEMA {qi(nsp)}"} for name, nsp in rows]


# ---------------------------------------------------------------- types

_TYPES = f"""
SELECT t.oid, t.typtype, (pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(t.typname))
FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE {USER_NS} AND {not_extension('pg_type', 't.oid')}
  AND NOT (t.typtype = 'c' AND (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) <> 'c')
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)
  AND t.typtype <> 'm'
ORDER BY t.oid"""


def types(conn) -> list[dict]:
    out = []
    for oid, kind, name in query(conn, _TYPES):
        build = _TYPE_BUILDERS.get(kind)
        if build is None:
            what = {"b": "base type", "p": "pseudo-type (shell type)"}.get(kind, f"type of kind {kind!r}")
            raise unsupported(what, name)
        out.append({"kind": "type", "name": name, "oid": oid, "sql": build(conn, oid, name)})
    return out


_COLLATIONS = f"""
SELECT co.oid, (pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(co.collname)),
       pg_catalog.to_jsonb(co)
FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace n ON n.oid = co.collnamespace
WHERE {USER_NS} AND {not_extension('pg_collation', 'co.oid')} ORDER BY co.oid"""

_PROVIDERS = {"c": "libc", "i": "icu", "b": "builtin"}


def collations(conn) -> list[dict]:
    """CREATE COLLATION for every user collation (the catalog's columns differ between server
    versions: the row is read as JSON and the locale taken from whichever column holds it)."""
    out = []
    for oid, name, row in query(conn, _COLLATIONS):
        provider = _PROVIDERS.get(row["collprovider"])
        if provider is None:
            raise unsupported(f"collation with provider {row['collprovider']!r}", name)
        locale = row.get("colllocale") or row.get("colliculocale")
        if provider == "libc":
            if row["collcollate"] == row["collctype"]:
                opts = [f"locale = {ql(row['collcollate'])}"]
            else:
                opts = [f"lc_collate = {ql(row['collcollate'])}", f"lc_ctype = {ql(row['collctype'])}"]
        else:
            opts = [f"locale = {ql(locale or '')}"]
        opts.insert(0, f"provider = {provider}")
        if not row["collisdeterministic"]:
            opts.append("deterministic = false")
        if row.get("collicurules"):
            opts.append(f"rules = {ql(row['collicurules'])}")
        out.append({"kind": "collation", "name": name, "oid": oid,
                    "sql": f"CREATE COLLATION {name} ({', '.join(opts)})"})
    return out


def unsupported(what: str, name: str) -> DatabaseError:
    return DatabaseError(f"the database contains the {what} {name}, which synco cannot copy yet",
                         hint="drop it, or copy this database with pg_dump")


def _enum(conn, oid: int, name: str) -> str:
    labels = [r[0] for r in query(conn, "SELECT enumlabel FROM pg_catalog.pg_enum WHERE enumtypid = %s "
                                        "ORDER BY enumsortorder", (oid,))]
    return f"CREATE TYPE {name} AS ENUM ({', '.join(ql(x) for x in labels)})"


def _collate(coll_expr: str) -> str:
    return (f"CASE WHEN {coll_expr} <> 0 AND {coll_expr} <> COALESCE(bt.typcollation, 0) THEN "
            f"(SELECT ' COLLATE ' || (pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname)) "
            f"FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace "
            f"WHERE co.oid = {coll_expr}) ELSE '' END")


def _domain(conn, oid: int, name: str) -> str:
    base, coll, default, notnull = query(
        conn, f"SELECT pg_catalog.format_type(t.typbasetype, t.typtypmod), {_collate('t.typcollation')}, "
              f"t.typdefault, t.typnotnull FROM pg_catalog.pg_type t "
              f"LEFT JOIN pg_catalog.pg_type bt ON bt.oid = t.typbasetype WHERE t.oid = %s", (oid,))[0]
    sql = f"CREATE DOMAIN {name} AS {base}{coll}"
    if default is not None:
        sql += f" DEFAULT {default}"
    if notnull:
        sql += " NOT NULL"
    for cname, cdef in query(conn, "SELECT conname, pg_catalog.pg_get_constraintdef(oid) FROM "
                                   "pg_catalog.pg_constraint WHERE contypid = %s ORDER BY conname", (oid,)):
        sql += f";\nALTER DOMAIN {name} ADD CONSTRAINT {qi(cname)} {cdef}"
    return sql


def _composite(conn, oid: int, name: str) -> str:
    rows = query(conn, f"SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
                       f"{_collate('a.attcollation')} FROM pg_catalog.pg_type t "
                       f"JOIN pg_catalog.pg_attribute a ON a.attrelid = t.typrelid "
                       f"LEFT JOIN pg_catalog.pg_type bt ON bt.oid = a.atttypid "
                       f"WHERE t.oid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", (oid,))
    return f"CREATE TYPE {name} AS ({', '.join(f'{qi(a)} {t}{c}' for a, t, c in rows)})"


def _range(conn, oid: int, name: str) -> str:
    (sub, opc, opc_default, coll, canonical, diff, multi) = query(
        conn, "SELECT pg_catalog.format_type(r.rngsubtype, NULL), "
              "(SELECT (pg_catalog.quote_ident(on_.nspname) || '.' || pg_catalog.quote_ident(oc.opcname)) FROM pg_catalog.pg_opclass oc "
              " JOIN pg_catalog.pg_namespace on_ ON on_.oid = oc.opcnamespace WHERE oc.oid = r.rngsubopc), "
              "(SELECT oc.opcdefault FROM pg_catalog.pg_opclass oc WHERE oc.oid = r.rngsubopc), "
              "CASE WHEN r.rngcollation <> 0 AND r.rngcollation <> st.typcollation THEN (SELECT "
              " (pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname)) FROM pg_catalog.pg_collation co JOIN "
              " pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = r.rngcollation) END, "
              "r.rngcanonical::oid, NULLIF(r.rngsubdiff::oid, 0)::pg_catalog.regproc::text, "
              "pg_catalog.format_type(r.rngmultitypid, NULL) "
              "FROM pg_catalog.pg_range r JOIN pg_catalog.pg_type st ON st.oid = r.rngsubtype "
              "WHERE r.rngtypid = %s", (oid,))[0]
    if canonical:
        raise unsupported("range type with a canonical function", name)
    parts = [f"SUBTYPE = {sub}"]
    if not opc_default:
        parts.append(f"SUBTYPE_OPCLASS = {opc}")
    if coll:
        parts.append(f"COLLATION = {coll}")
    if diff:
        parts.append(f"SUBTYPE_DIFF = {diff}")
    parts.append(f"MULTIRANGE_TYPE_NAME = {multi}")
    return f"CREATE TYPE {name} AS RANGE ({', '.join(parts)})"


_TYPE_BUILDERS = {"e": _enum, "d": _domain, "c": _composite, "r": _range}


# ---------------------------------------------------------------- sequences

_SEQ = """
SELECT s.seqrelid, (pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)), c.relpersistence = 'u',
       pg_catalog.format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
       s.seqcache, s.seqcycle,
       (SELECT d.deptype FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
          AND d.objid = c.oid AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')),
       (SELECT (pg_catalog.quote_ident(tn.nspname) || '.' || pg_catalog.quote_ident(t.relname) || '.' || pg_catalog.quote_ident(a.attname))
          FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
          JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
          JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
          WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
            AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')),
       pg_catalog.has_sequence_privilege(c.oid, 'SELECT')
FROM pg_catalog.pg_sequence s JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE {where} ORDER BY c.oid"""


def sequence_options(start, inc, smin, smax, cache, cycle) -> str:
    return (f"START WITH {start} INCREMENT BY {inc} MINVALUE {smin} MAXVALUE {smax} CACHE {cache}"
            f"{' CYCLE' if cycle else ' NO CYCLE'}")


def sequences(conn) -> list[dict]:
    """Every user sequence: its CREATE (none for identity ones), its value and its owner column."""
    out = []
    where = f"{USER_NS} AND {not_extension('pg_class', 'c.oid')}"
    for (oid, name, unlogged, typ, start, inc, smin, smax, cache, cycle, deptype, owner, can_read) in \
            query(conn, _SEQ.format(where=where)):
        if not can_read:
            raise no_right("sequence", name)
        last, called = query(conn, f"SELECT last_value, is_called FROM {name}")[0]
        opts = sequence_options(start, inc, smin, smax, cache, cycle)
        seq = {"kind": "sequence", "name": name, "oid": oid, "identity": deptype == "i", "owner": owner,
               "options": opts, "value": [str(last), bool(called)],
               "sql": f"CREATE {'UNLOGGED ' if unlogged else ''}SEQUENCE {name} AS {typ} {opts}"}
        out.append(seq)
    return out


def no_right(what: str, name: str) -> DatabaseError:
    return DatabaseError(f"the user may not read the {what} {name} (permission denied)",
                         hint="grant it SELECT (or dump as the owner of the database)")
