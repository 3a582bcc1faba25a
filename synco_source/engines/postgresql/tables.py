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
       CASE WHEN c.relispartition THEN (
         SELECT (pg_catalog.quote_ident(pn.nspname) || '.' || pg_catalog.quote_ident(p.relname)) FROM pg_catalog.pg_inherits i
         JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
         JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace WHERE i.inhrelid = c.oid) END,
       CASE WHEN NOT c.relispartition THEN (
         SELECT pg_catalog.string_agg(pg_catalog.quote_ident(pn.nspname) || '.' || pg_catalog.quote_ident(p.relname),
                                      ', ' ORDER BY i.inhseqno)
         FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
         JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace WHERE i.inhrelid = c.oid) END,
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
       a.attnotnull, a.attidentity, a.attgenerated, pg_catalog.pg_get_expr(d.adbin, d.adrelid),
       a.attislocal, CASE WHEN a.attstorage <> t.typstorage THEN a.attstorage END, a.attcompression,
       COALESCE(a.attstattarget::int, -1),
       (SELECT pg_catalog.bool_or(pa.attnotnull) FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_attribute pa
          ON pa.attrelid = i.inhparent AND pa.attname = a.attname WHERE i.inhrelid = a.attrelid),
       (SELECT pg_catalog.pg_get_expr(pd.adbin, pd.adrelid) FROM pg_catalog.pg_inherits i
          JOIN pg_catalog.pg_attribute pa ON pa.attrelid = i.inhparent AND pa.attname = a.attname
          JOIN pg_catalog.pg_attrdef pd ON pd.adrelid = pa.attrelid AND pd.adnum = pa.attnum
          WHERE i.inhrelid = a.attrelid ORDER BY i.inhseqno LIMIT 1)
FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"""


def tables(conn) -> list[dict]:
    """Every user table (partitioned ones too), name order, with its CREATE TABLE text (and the
    ALTER TABLE statements that follow it: column storage, compression, statistics target; an
    inheriting table's own NOT NULL and default on inherited columns, as pg_dump writes them)."""
    out = []
    for (oid, name, kind, unlogged, is_part, typed, options, partkey, bound, parent, parents, am,
         can_read) in query(conn, _TABLES):
        if typed:
            raise unsupported("typed table (CREATE TABLE ... OF type)", name)
        if not can_read:
            raise no_right("table", name)
        cols = query(conn, _COLUMNS, (oid,))
        table = {"kind": "table", "name": name, "oid": oid, "partitioned": kind == "p",
                 "columns": [c[0] for c in cols if not c[5]],
                 "attach": (f"ALTER TABLE ONLY {parent} ATTACH PARTITION {name} {bound}" if is_part else None)}
        # a classic (INHERITS) child lists only its own columns: the others come from its parents
        own = [c for c in cols if c[7] or not parents]
        body = [_column(conn, oid, c[:7]) for c in own] + _checks(conn, oid, is_part)
        sql = f"CREATE {'UNLOGGED ' if unlogged else ''}TABLE {name} (\n    " + ",\n    ".join(body) + "\n)"
        if parents:
            sql += f" INHERITS ({parents})"
        if partkey:
            sql += f" PARTITION BY {partkey}"
        if am and am != "heap" and kind == "r":
            sql += f" USING {qi(am)}"
        if options:
            sql += f" WITH ({', '.join(options)})"
        table["sql"] = ";\n".join([sql] + _column_settings(name, cols, bool(parents)))
        out.append(table)
    return out


_STORAGE = {"p": "PLAIN", "e": "EXTERNAL", "m": "MAIN", "x": "EXTENDED"}
_COMPRESSION = {"p": "pglz", "l": "lz4"}


def _column_settings(table: str, cols: list[tuple], inherits: bool) -> list[str]:
    out = []
    for (name, _typ, _coll, notnull, _ident, generated, default, local, storage, compression,
         stattarget, parent_notnull, parent_default) in cols:
        alter = f"ALTER TABLE ONLY {table} ALTER COLUMN {qi(name)}"
        if inherits and not local:  # an inherited column: what the child changed on its own
            if notnull and not parent_notnull:
                out.append(f"{alter} SET NOT NULL")
            if default is not None and not generated and default != parent_default:
                out.append(f"{alter} SET DEFAULT {default}")
        if storage:
            out.append(f"{alter} SET STORAGE {_STORAGE[storage]}")
        if compression in _COMPRESSION:
            out.append(f"{alter} SET COMPRESSION {_COMPRESSION[compression]}")
        if stattarget >= 0:
            out.append(f"{alter} SET STATISTICS {int(stattarget)}")
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
