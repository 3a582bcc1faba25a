"""Reading and re-creating what lives in a database besides table rows.

Objects (views, triggers, routines) are plain dicts so they can go into the JSON manifest:
``{"kind", "name", "create", "sql_mode"}`` plus ``"table"`` for triggers and ``"type"`` for
routines. Their CREATE text has no DEFINER clause and unqualified names (read after ``USE db``).
"""

from __future__ import annotations

from ...errors import DatabaseError
from .sql import failing, qi, qs, query, strip_definer

TABLE_TYPES = ("BASE TABLE",)
UNSUPPORTED_TYPES = {"SEQUENCE": "sequence", "SYSTEM VERSIONED": "system-versioned table"}


def table_kinds(conn, db: str) -> dict[str, str]:
    rows = query(conn, "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                       "WHERE TABLE_SCHEMA = %s", (db,))
    return {name: kind for name, kind in rows}


def base_tables(conn, db: str, *, strict: bool = True) -> list[str]:
    """Base tables in name order; with ``strict``, refuse kinds the engine cannot copy."""
    names = []
    for name, kind in sorted(table_kinds(conn, db).items()):
        if kind in TABLE_TYPES:
            names.append(name)
        elif kind != "VIEW" and strict:
            what = UNSUPPORTED_TYPES.get(kind, kind.lower())
            raise DatabaseError(f"database {db!r} contains the {what} {name!r}, which synco cannot copy",
                                hint="drop or convert it, or copy this database another way")
        elif kind != "VIEW":
            names.append(name)
    return names


def columns(conn, db: str, table: str) -> list[dict]:
    """Columns in table order: name, type, charset, generated flag, maximum size in bytes."""
    rows = query(conn, "SELECT COLUMN_NAME, DATA_TYPE, CHARACTER_SET_NAME, IS_GENERATED, "
                       "CHARACTER_OCTET_LENGTH, IS_NULLABLE "
                       "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
                       "ORDER BY ORDINAL_POSITION", (db, table))
    return [{"name": n, "type": t.lower(), "charset": c, "generated": g == "ALWAYS", "octets": o,
             "nullable": nullable == "YES"} for n, t, c, g, o, nullable in rows]


def order_key(conn, db: str, table: str, cols: list[dict]) -> list[str] | None:
    """Columns of the primary key, else of the first all-NOT-NULL unique index; None if neither."""
    # STATISTICS alone, with constants: joined with COLUMNS, MariaDB opens every table on the
    # server and can wait behind another client's lock on an unrelated database.
    rows = query(conn, "SELECT INDEX_NAME, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS "
                       "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND NON_UNIQUE = 0 "
                       "ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX",
                       (db, table))
    nullable = {c["name"]: c["nullable"] for c in cols}
    indexes: dict[str, list] = {}
    for index, col, sub_part in rows:
        indexes.setdefault(index, []).append((col, nullable.get(col, True) or sub_part is not None))
    for parts in indexes.values():
        if not any(bad for _, bad in parts):
            return [col for col, _ in parts]
    return None


def show_create_table(conn, table: str) -> str:
    return query(conn, f"SHOW CREATE TABLE {qi(table)}")[0][1]


def _toposort(views: dict[str, str]) -> list[str]:
    """View names so that each comes after the views its definition names (ties: name order)."""
    deps = {v: sorted(w for w in views if w != v and qi(w) in views[v]) for v in views}
    done: list[str] = []
    seen: set[str] = set()

    def visit(name: str, path: tuple) -> None:
        if name in seen or name in path:
            return
        for dep in deps[name]:
            visit(dep, path + (name,))
        seen.add(name)
        done.append(name)

    for name in sorted(views):
        visit(name, ())
    return done


def views(conn, db: str) -> list[dict]:
    """Views of the current database (``USE db`` first), in dependency order."""
    names = [n for n, k in table_kinds(conn, db).items() if k == "VIEW"]
    texts = {}
    for name in names:
        with failing(f"cannot read the definition of view {name!r}"):
            texts[name] = strip_definer(query(conn, f"SHOW CREATE VIEW {qi(name)}")[0][1])
    return [{"kind": "view", "name": n, "create": texts[n], "sql_mode": ""} for n in _toposort(texts)]


def triggers(conn, db: str) -> list[dict]:
    rows = query(conn, "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
                       "WHERE TRIGGER_SCHEMA = %s ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, "
                       "EVENT_MANIPULATION, ACTION_ORDER", (db,))
    out = []
    for name, table in rows:
        shown = query(conn, f"SHOW CREATE TRIGGER {qi(name)}")[0]
        out.append({"kind": "trigger", "name": name, "table": table, "sql_mode": shown[1],
                    "create": strip_definer(_need(shown[2], "trigger", name))})
    return out


def routines(conn, db: str) -> list[dict]:
    rows = query(conn, "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES "
                       "WHERE ROUTINE_SCHEMA = %s ORDER BY ROUTINE_TYPE, ROUTINE_NAME", (db,))
    out = []
    for name, rtype in rows:
        if rtype not in ("FUNCTION", "PROCEDURE"):
            raise DatabaseError(f"database {db!r} contains the {rtype.lower()} {name!r}, "
                                "which synco cannot copy", hint="drop it or copy this database another way")
        shown = query(conn, f"SHOW CREATE {rtype} {qi(name)}")[0]
        out.append({"kind": "routine", "type": rtype, "name": name, "sql_mode": shown[1],
                    "create": strip_definer(_need(shown[2], rtype.lower(), name))})
    return out


def refuse_events(conn, db: str) -> None:
    rows = query(conn, "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s "
                       "ORDER BY EVENT_NAME", (db,))
    if rows:
        names = ", ".join(repr(r[0]) for r in rows)
        raise DatabaseError(f"database {db!r} contains events ({names}), which synco cannot copy",
                            hint="drop the events or copy this database another way")


def _need(text, what: str, name: str) -> str:
    if text is None:
        raise DatabaseError(f"the server hides the definition of {what} {name!r} from this user",
                            hint="connect as the owner of the object or a user with SHOW_ROUTINE/SUPER")
    return text


def objects(conn, db: str) -> list[dict]:
    """Routines, views, triggers of ``db`` in the order they must be created."""
    query(conn, f"USE {qi(db)}")
    return routines(conn, db) + views(conn, db) + triggers(conn, db)


def drop_sql(obj: dict) -> str:
    kind = obj["type"] if obj["kind"] == "routine" else obj["kind"].upper()
    return f"DROP {kind} IF EXISTS {qi(obj['name'])}"


def create_objects(conn, db: str, objs: list[dict]) -> None:
    """Create ``objs`` in ``db`` (each under its own sql_mode)."""
    query(conn, f"USE {qi(db)}")
    mode = query(conn, "SELECT @@SESSION.sql_mode")[0][0]
    try:
        for obj in objs:
            with failing(f"cannot create {obj['kind']} {obj['name']!r} in {db!r}"):
                query(conn, f"SET SESSION sql_mode = {qs(obj['sql_mode'])}")
                query(conn, obj["create"])
    finally:
        query(conn, f"SET SESSION sql_mode = {qs(mode)}")


def drop_objects(conn, db: str, objs: list[dict]) -> None:
    query(conn, f"USE {qi(db)}")
    for obj in reversed(objs):
        with failing(f"cannot drop {obj['kind']} {obj['name']!r} in {db!r}"):
            query(conn, drop_sql(obj))


def key(obj: dict) -> tuple[str, str]:
    """What names an object within its database: routines by type (a function and a procedure
    may share a name), views and triggers by name."""
    return (obj["type"] if obj["kind"] == "routine" else obj["kind"].upper(), obj["name"])


def present(conn, db: str) -> list[dict]:
    """Names of the views, triggers and routines in ``db`` (no definitions: a view whose tables
    are gone is listed too)."""
    rows = query(conn, "SELECT 'routine', ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES "
                       "WHERE ROUTINE_SCHEMA = %s UNION ALL "
                       "SELECT 'view', '', TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s "
                       "UNION ALL SELECT 'trigger', '', TRIGGER_NAME FROM information_schema.TRIGGERS "
                       "WHERE TRIGGER_SCHEMA = %s", (db, db, db))
    return [{"kind": k, "type": t, "name": n} for k, t, n in rows]


def missing(conn, db: str, objs: list[dict]) -> list[dict]:
    """Those of ``objs`` that ``db`` does not have (in their order)."""
    have = {key(o) for o in present(conn, db)}
    return [o for o in objs if key(o) not in have]
