"""Tables as DDL (columns, defaults, identity, generated columns, CHECKs, partitioning) and the
row order of each table's dump."""

from __future__ import annotations

from .catalog import USER_NS, no_right, not_extension, sequence_options, unsupported
from .sql import qi, query

_TABLES = f"""
SELECT c.oid, (pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)), c.relkind, c.relpersistence = 'u',
       c.relispartition, c.reloftype <> 0, c.reloptions,
       CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END,
       CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END,
       (SELECT (pg_catalog.quote_ident(pn.nspname) || '.' || pg_catalog.quote_ident(p.relname)) FROM pg_catalog.pg_inherits i
          JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
          JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace WHERE i.inhrelid = c.oid),
       EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid) AND NOT c.relispartition,
       (SELECT am.amname FROM pg_catalog.pg_am am WHERE am.oid = c.relam),
       pg_catalog.has_table_privilege(c.oid, 'SELECT')
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND {USER_NS}
  AND {not_extension('pg_class', 'c.oid')}
ORDER BY n.nspname, c.relname"""

_COLUMNS = """
SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
       CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN
         (SELECT (pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname)) FROM pg_catalog.pg_collation co
          JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) END,
       a.attnotnull, a.attidentity, a.attgenerated, pg_catalog.pg_get_expr(d.adbin, d.adrelid)
FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"""


def tables(conn) -> list[dict]:
    """Every user table (partitioned ones too), name order, with its CREATE TABLE text."""
    out = []
    for (oid, name, kind, unlogged, is_part, typed, options, partkey, bound, parent, inherits, am,
         can_read) in query(conn, _TABLES):
        if typed:
            raise unsupported("typed table (CREATE TABLE ... OF type)", name)
        if inherits:
            raise unsupported("inheriting table (INHERITS, not a partition)", name)
        if not can_read:
            raise no_right("table", name)
        cols = query(conn, _COLUMNS, (oid,))
        table = {"kind": "table", "name": name, "oid": oid, "partitioned": kind == "p",
                 "columns": [c[0] for c in cols if not c[5]],
                 "attach": (f"ALTER TABLE ONLY {parent} ATTACH PARTITION {name} {bound}" if is_part else None)}
        body = [_column(conn, oid, c) for c in cols] + _checks(conn, oid, is_part)
        sql = f"CREATE {'UNLOGGED ' if unlogged else ''}TABLE {name} (\n    " + ",\n    ".join(body) + "\n)"
        if partkey:
            sql += f" PARTITION BY {partkey}"
        if am and am != "heap" and kind == "r":
            sql += f" USING {qi(am)}"
        if options:
            sql += f" WITH ({', '.join(options)})"
        table["sql"] = sql
        out.append(table)
    return out


def _column(conn, oid: int, col: tuple) -> str:
    name, typ, coll, notnull, identity, generated, default = col
    text = f"{qi(name)} {typ}"
    if coll:
        text += f" COLLATE {coll}"
    if generated == "s":
        text += f" GENERATED ALWAYS AS ({default}) STORED"
    elif default is not None:
        text += f" DEFAULT {default}"
    if identity:
        text += _identity(conn, oid, name, identity)
    if notnull:
        text += " NOT NULL"
    return text


def _identity(conn, oid: int, column: str, kind: str) -> str:
    row = query(conn, "SELECT (pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)), s.seqstart, s.seqincrement, "
                      "s.seqmin, s.seqmax, s.seqcache, s.seqcycle FROM pg_catalog.pg_depend d "
                      "JOIN pg_catalog.pg_class c ON c.oid = d.objid "
                      "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                      "JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid "
                      "JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
                      "WHERE d.refobjid = %s AND a.attname = %s AND d.deptype = 'i' "
                      "AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass", (oid, column))
    how = "ALWAYS" if kind == "a" else "BY DEFAULT"
    if not row:
        return f" GENERATED {how} AS IDENTITY"
    seq, *opts = row[0]
    return f" GENERATED {how} AS IDENTITY (SEQUENCE NAME {seq} {sequence_options(*opts)})"


def _checks(conn, oid: int, is_partition: bool) -> list[str]:
    """Validated CHECK constraints defined here (all of them on a partition: ATTACH needs them)."""
    rows = query(conn, "SELECT conname, pg_catalog.pg_get_constraintdef(oid) FROM pg_catalog.pg_constraint "
                       "WHERE conrelid = %s AND contype = 'c' AND convalidated AND (conislocal OR %s) "
                       "ORDER BY conname", (oid, is_partition))
    return [f"CONSTRAINT {qi(name)} {text}" for name, text in rows]


def order_key(conn, oid: int) -> list[str] | None:
    """Primary key columns, else the first unique index on NOT NULL plain columns; None if neither."""
    rows = query(conn, """
        SELECT i.indexrelid, i.indisprimary, a.attname, a.attnotnull
        FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
        CROSS JOIN LATERAL pg_catalog.unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY k(attnum, pos)
        LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = %s AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
        ORDER BY i.indisprimary DESC, ic.relname, k.pos""", (oid,))
    indexes: dict[int, list] = {}
    for index, _primary, col, notnull in rows:
        indexes.setdefault(index, []).append((col, bool(notnull)))
    for parts in indexes.values():
        if all(col is not None and notnull for col, notnull in parts):
            return [col for col, _ in parts]
    return None
