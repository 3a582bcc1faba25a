"""Functions, aggregates and views (created before the data) and what comes after the data:
keys, indexes, foreign keys, triggers, rules, row-level security and policies, replica identity,
statistics objects, comments."""

from __future__ import annotations

from .catalog import USER_NS, not_extension, unsupported
from .sql import qi, query

_QNAME = "(pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident({}))"


def functions(conn) -> list[dict]:
    """Functions, procedures and plain aggregates, in OID order."""
    rows = query(conn, f"""
        SELECT p.oid, p.prokind, {_QNAME.format('p.proname')} || '('
               || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')'
        FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE {USER_NS} AND {not_extension('pg_proc', 'p.oid')} AND NOT EXISTS (
          SELECT 1 FROM pg_catalog.pg_depend i WHERE i.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
          AND i.objid = p.oid AND i.deptype = 'i')  -- range and multirange constructors
        ORDER BY p.oid""")
    out = []
    for oid, kind, name in rows:
        if kind == "a":
            sql = _aggregate(conn, oid, name)
        else:
            sql = query(conn, "SELECT pg_catalog.pg_get_functiondef(%s)", (oid,))[0][0].rstrip()
        out.append({"kind": "aggregate" if kind == "a" else "function", "name": name, "oid": oid, "sql": sql})
    return out


_AGG = """
SELECT a.aggkind, a.aggtransfn::pg_catalog.regproc::text, pg_catalog.format_type(a.aggtranstype, NULL),
       a.aggtransspace, NULLIF(a.aggfinalfn::oid, 0)::pg_catalog.regproc::text, a.aggfinalextra,
       a.aggfinalmodify, NULLIF(a.aggcombinefn::oid, 0)::pg_catalog.regproc::text,
       NULLIF(a.aggserialfn::oid, 0)::pg_catalog.regproc::text,
       NULLIF(a.aggdeserialfn::oid, 0)::pg_catalog.regproc::text, a.agginitval,
       NULLIF(a.aggsortop, 0)::pg_catalog.regoperator::text, a.aggmtransfn::oid, p.proparallel,
       pg_catalog.pg_get_function_arguments(p.oid)
FROM pg_catalog.pg_aggregate a JOIN pg_catalog.pg_proc p ON p.oid = a.aggfnoid WHERE a.aggfnoid = %s"""


def _aggregate(conn, oid: int, name: str) -> str:
    (kind, sfunc, stype, sspace, ffunc, fextra, fmodify, combine, serial, deserial, init, sortop,
     moving, parallel, args) = query(conn, _AGG, (oid,))[0]
    if kind != "n" or moving:
        raise unsupported("ordered-set or moving aggregate", name)
    opts = [f"SFUNC = {sfunc}", f"STYPE = {stype}"]
    opts += [f"SSPACE = {sspace}"] if sspace else []
    opts += [f"FINALFUNC = {ffunc}"] if ffunc else []
    opts += ["FINALFUNC_EXTRA"] if fextra else []
    if ffunc:
        opts.append("FINALFUNC_MODIFY = " + {"r": "READ_ONLY", "s": "SHAREABLE", "w": "READ_WRITE"}[fmodify])
    opts += [f"COMBINEFUNC = {combine}"] if combine else []
    opts += [f"SERIALFUNC = {serial}", f"DESERIALFUNC = {deserial}"] if serial else []
    opts += [f"INITCOND = {_literal(init)}"] if init is not None else []
    opts += [f"SORTOP = {sortop.split('(')[0]}"] if sortop else []
    opts += [f"PARALLEL = {dict(s='SAFE', r='RESTRICTED', u='UNSAFE')[parallel]}"]
    base = name.split("(")[0]
    return f"CREATE AGGREGATE {base}({args}) (\n    " + ",\n    ".join(opts) + "\n)"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def views(conn) -> list[dict]:
    """Views and materialized views (created empty: refreshed after the data when populated).

    A view whose query is only valid because of a constraint (``GROUP BY`` a primary key with
    other columns of that table selected) cannot be created before the keys: as pg_dump does, it
    is created first as a placeholder with the same columns (``NULL::type AS column``), so that
    what depends on it can be created, and replaced by the real query after the keys (its
    ``late`` statement). A materialized view with such a query is created after the keys."""
    rows = query(conn, f"""
        SELECT c.oid, {_QNAME.format('c.relname')}, c.relkind, c.reloptions, c.relispopulated,
               pg_catalog.pg_get_viewdef(c.oid), (SELECT am.amname FROM pg_catalog.pg_am am WHERE am.oid = c.relam),
               EXISTS (SELECT 1 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
                       WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND r.ev_class = c.oid
                       AND d.refclassid = 'pg_catalog.pg_constraint'::pg_catalog.regclass)
        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v', 'm') AND {USER_NS} AND {not_extension('pg_class', 'c.oid')} ORDER BY c.oid""")
    out = []
    for oid, name, kind, options, populated, definition, am, needs_keys in rows:
        with_ = f" WITH ({', '.join(options)})" if options else ""
        body = definition.strip().rstrip(";")
        view = {"kind": "view" if kind == "v" else "materialized view", "name": name, "oid": oid,
                "populated": kind == "m" and bool(populated), "late": None}
        if kind == "v":
            view["sql"] = f"CREATE VIEW {name}{with_} AS\n{body}"
            if needs_keys:
                view["late"] = f"CREATE OR REPLACE VIEW {name}{with_} AS\n{body}"
                view["sql"] = f"CREATE VIEW {name} AS\nSELECT {_placeholder_columns(conn, oid)}"
        else:
            using = f" USING {qi(am)}" if am and am != "heap" else ""
            view["sql"] = f"CREATE MATERIALIZED VIEW {name}{using}{with_} AS\n{body}\nWITH NO DATA"
            if needs_keys:
                view["late"], view["sql"] = view["sql"], None
        out.append(view)
    return out


def _placeholder_columns(conn, oid: int) -> str:
    rows = query(conn, """
        SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
               CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN
                 (SELECT pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname)
                  FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
                  WHERE co.oid = a.attcollation) END
        FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum""", (oid,))
    return ", ".join(f"NULL::{typ}{f' COLLATE {coll}' if coll else ''} AS {qi(col)}" for col, typ, coll in rows)


def _rel_filter(alias: str) -> str:
    return (f"{alias} IN (SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
            f"ON n.oid = c.relnamespace WHERE {USER_NS} AND {not_extension('pg_class', 'c.oid')})")


def keys(conn) -> list[dict]:
    """PRIMARY KEY, UNIQUE and EXCLUDE constraints (one ALTER TABLE ONLY each, partitions too)."""
    rows = query(conn, f"""
        SELECT co.conrelid::pg_catalog.regclass::text, co.conname, pg_catalog.pg_get_constraintdef(co.oid)
        FROM pg_catalog.pg_constraint co WHERE co.contype IN ('p', 'u', 'x') AND {_rel_filter('co.conrelid')}
        ORDER BY co.contype = 'p' DESC, co.oid""")
    return [{"kind": "constraint", "name": f"{name} on {table}",
             "sql": f"ALTER TABLE ONLY {table} ADD CONSTRAINT {qi(name)} {text}"} for table, name, text in rows]


def indexes(conn) -> list[dict]:
    """Indexes that back no constraint, then the ATTACH of partition indexes, then CLUSTER marks."""
    rows = query(conn, f"""
        SELECT i.indexrelid::pg_catalog.regclass::text, pg_catalog.pg_get_indexdef(i.indexrelid)
        FROM pg_catalog.pg_index i WHERE {_rel_filter('i.indrelid')}
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint co WHERE co.conindid = i.indexrelid
                          AND co.contype IN ('p', 'u', 'x') AND co.conrelid = i.indrelid)
        ORDER BY i.indexrelid""")
    out = [{"kind": "index", "name": name, "sql": text} for name, text in rows]
    attach = query(conn, f"""
        SELECT h.inhparent::pg_catalog.regclass::text, h.inhrelid::pg_catalog.regclass::text
        FROM pg_catalog.pg_inherits h JOIN pg_catalog.pg_class c ON c.oid = h.inhrelid
        WHERE c.relkind IN ('i', 'I') AND {_rel_filter('h.inhrelid')} ORDER BY h.inhrelid""")
    out += [{"kind": "index attach", "name": child, "sql": f"ALTER INDEX {parent} ATTACH PARTITION {child}"}
            for parent, child in attach]
    cluster = query(conn, f"""
        SELECT i.indrelid::pg_catalog.regclass::text, ic.relname FROM pg_catalog.pg_index i
        JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indisclustered AND {_rel_filter('i.indrelid')} ORDER BY i.indexrelid""")
    out += [{"kind": "cluster", "name": table, "sql": f"ALTER TABLE {table} CLUSTER ON {qi(index)}"}
            for table, index in cluster]
    return out


def late_constraints(conn) -> list[dict]:
    """Foreign keys (not the per-partition clones) and CHECKs marked NOT VALID."""
    rows = query(conn, f"""
        SELECT co.conrelid::pg_catalog.regclass::text, c.relkind, co.conname,
               pg_catalog.pg_get_constraintdef(co.oid)
        FROM pg_catalog.pg_constraint co JOIN pg_catalog.pg_class c ON c.oid = co.conrelid
        WHERE (co.contype = 'f' AND co.conparentid = 0 OR co.contype = 'c' AND NOT co.convalidated
               AND co.conislocal) AND {_rel_filter('co.conrelid')}
        ORDER BY co.oid""")
    return [{"kind": "constraint", "name": f"{name} on {table}",
             "sql": f"ALTER TABLE {'' if kind == 'p' else 'ONLY '}{table} ADD CONSTRAINT {qi(name)} {text}"}
            for table, kind, name, text in rows]


_ENABLE = {"D": "DISABLE TRIGGER", "R": "ENABLE REPLICA TRIGGER", "A": "ENABLE ALWAYS TRIGGER"}
_ENABLE_RULE = {"D": "DISABLE RULE", "R": "ENABLE REPLICA RULE", "A": "ENABLE ALWAYS RULE"}


def rules(conn) -> list[dict]:
    """Rules (``CREATE RULE``; a view's own ``_RETURN`` rule is the view), with their state."""
    rows = query(conn, f"""
        SELECT r.ev_class::pg_catalog.regclass::text, r.rulename, pg_catalog.pg_get_ruledef(r.oid), r.ev_enabled
        FROM pg_catalog.pg_rewrite r WHERE r.rulename <> '_RETURN' AND {_rel_filter('r.ev_class')}
          AND {not_extension('pg_rewrite', 'r.oid')} ORDER BY r.oid""")
    out = []
    for table, name, text, enabled in rows:
        text = text.strip().rstrip(";")
        if enabled in _ENABLE_RULE:
            text += f";\nALTER TABLE {table} {_ENABLE_RULE[enabled]} {qi(name)}"
        out.append({"kind": "rule", "name": f"{name} on {table}", "sql": text})
    return out


_POLICY_CMD = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}


def row_security(conn) -> list[dict]:
    """``ENABLE``/``FORCE ROW LEVEL SECURITY`` of each table, then its policies. They come after
    the data: rows are loaded by the tables' owner, whom a forced policy would filter. A policy's
    roles are named as in the source (roles are not copied: they must exist on the target, as
    with pg_dump)."""
    out = []
    for table, enable, force in query(conn, f"""
            SELECT c.oid::pg_catalog.regclass::text, c.relrowsecurity, c.relforcerowsecurity
            FROM pg_catalog.pg_class c WHERE (c.relrowsecurity OR c.relforcerowsecurity)
              AND c.relkind IN ('r', 'p') AND {_rel_filter('c.oid')} ORDER BY c.oid"""):
        if enable:
            out.append({"kind": "row security", "name": table,
                        "sql": f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"})
        if force:
            out.append({"kind": "row security", "name": table,
                        "sql": f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY"})
    rows = query(conn, f"""
        SELECT p.polrelid::pg_catalog.regclass::text, p.polname, p.polcmd, p.polpermissive,
               ARRAY(SELECT CASE WHEN r.role = 0 THEN 'PUBLIC' ELSE (SELECT pg_catalog.quote_ident(a.rolname)
                                 FROM pg_catalog.pg_roles a WHERE a.oid = r.role) END
                     FROM pg_catalog.unnest(p.polroles) WITH ORDINALITY r(role, pos) ORDER BY r.pos),
               pg_catalog.pg_get_expr(p.polqual, p.polrelid), pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)
        FROM pg_catalog.pg_policy p WHERE {_rel_filter('p.polrelid')} ORDER BY p.oid""")
    for table, name, cmd, permissive, roles, using, check in rows:
        sql = (f"CREATE POLICY {qi(name)} ON {table} AS {'PERMISSIVE' if permissive else 'RESTRICTIVE'} "
               f"FOR {_POLICY_CMD[cmd]} TO {', '.join(roles)}")
        sql += f" USING ({using})" if using is not None else ""
        sql += f" WITH CHECK ({check})" if check is not None else ""
        out.append({"kind": "policy", "name": f"{name} on {table}", "sql": sql})
    return out


def replica_identities(conn) -> list[dict]:
    """``REPLICA IDENTITY`` of the tables where it is not the default (the primary key)."""
    rows = query(conn, f"""
        SELECT c.oid::pg_catalog.regclass::text, c.relreplident,
               (SELECT ic.relname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                WHERE i.indrelid = c.oid AND i.indisreplident)
        FROM pg_catalog.pg_class c WHERE c.relreplident <> 'd' AND c.relkind IN ('r', 'p')
          AND {_rel_filter('c.oid')} ORDER BY c.oid""")
    how = {"n": "NOTHING", "f": "FULL"}
    return [{"kind": "replica identity", "name": table,
             "sql": f"ALTER TABLE ONLY {table} REPLICA IDENTITY "
                    + (how[ident] if ident in how else f"USING INDEX {qi(index)}")}
            for table, ident, index in rows if ident in how or index]


def triggers(conn) -> list[dict]:
    rows = query(conn, f"""
        SELECT t.tgrelid::pg_catalog.regclass::text, t.tgname, pg_catalog.pg_get_triggerdef(t.oid),
               t.tgenabled FROM pg_catalog.pg_trigger t
        WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND {_rel_filter('t.tgrelid')} ORDER BY t.oid""")
    out = []
    for table, name, text, enabled in rows:
        if enabled in _ENABLE:
            text += f";\nALTER TABLE {table} {_ENABLE[enabled]} {qi(name)}"
        out.append({"kind": "trigger", "name": f"{name} on {table}", "sql": text})
    return out


def statistics(conn) -> list[dict]:
    rows = query(conn, f"""
        SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(s.stxname),
               pg_catalog.pg_get_statisticsobjdef(s.oid)
        FROM pg_catalog.pg_statistic_ext s JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace
        WHERE {USER_NS} AND {not_extension('pg_statistic_ext', 's.oid')} ORDER BY s.oid""")
    return [{"kind": "statistics", "name": name, "sql": text} for name, text in rows]


_COMMENT_KINDS = {"table column": "COLUMN", "view column": "COLUMN", "materialized view column": "COLUMN",
                  "composite type column": "COLUMN", "composite type": "TYPE",
                  "table constraint": "CONSTRAINT", "statistics object": "STATISTICS"}


def comments(conn) -> list[dict]:
    """COMMENT ON for every commented user object (not extensions, databases or public)."""
    rows = query(conn, f"""
        SELECT o.type, o.identity, d.description
        FROM pg_catalog.pg_description d
        CROSS JOIN LATERAL pg_catalog.pg_identify_object(d.classoid, d.objoid, d.objsubid) o
        WHERE (o.schema IS NOT NULL AND o.schema <> 'information_schema' AND o.schema !~ '^pg_'
               OR o.type = 'schema' AND o.identity NOT IN ('public', 'information_schema')
               AND o.identity !~ '^pg_'
               OR d.classoid = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND EXISTS (
                 SELECT 1 FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE t.oid = d.objoid AND {USER_NS}))
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = d.classoid
                          AND e.objid = d.objoid AND e.deptype = 'e')
        ORDER BY o.type COLLATE "C", o.identity COLLATE "C"
""")
    out = []
    for kind, identity, text in rows:
        if kind == "domain constraint":
            name, domain = identity.split(" on ", 1)
            target = f"CONSTRAINT {name} ON DOMAIN {domain}"
        else:
            target = f"{_COMMENT_KINDS.get(kind, kind.upper())} {identity}"
        out.append({"kind": "comment", "name": f"{kind} {identity}", "sql": f"COMMENT ON {target} IS {_literal(text)}"})
    return out
