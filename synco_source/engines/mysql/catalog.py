"""Reading and re-creating what lives in a database besides table rows.

Objects (views, triggers, routines, events) are plain dicts so they can go into the JSON manifest:
``{"kind", "name", "create", "sql_mode"}`` plus ``"table"`` for triggers, ``"type"`` for routines
and ``"time_zone"`` for events. Their CREATE text has no DEFINER clause and unqualified names
(read after ``USE db``). Sequences (MariaDB) are tables: ``{"name", "create", "next", "round"}``,
created before the tables whose defaults call them.
"""

from __future__ import annotations

import re

from ...errors import DatabaseError
from .sql import failing, qi, qs, query, strip_definer

# table kinds whose rows are dumped (a system-versioned table: its current rows, as mariadb-dump)
TABLE_TYPES = ("BASE TABLE", "SYSTEM VERSIONED")
SEQUENCE = "SEQUENCE"
COPIED_TYPES = TABLE_TYPES + (SEQUENCE, "VIEW")


class Refusals:
    """What a database holds that synco cannot copy, collected over the whole catalog so that
    one error names every offending object, grouped by kind."""

    HINT = ("drop or convert {them}, or copy this database with mariadb-dump (docs/mysql.md lists what "
            "synco copies)")

    def __init__(self, db: str) -> None:
        self.db = db
        self.found: dict[tuple[str, str], list[str]] = {}
        self.hints: list[str] = []

    def add(self, kind: str, plural: str, name: str, hint: str | None = None) -> None:
        self.found.setdefault((kind, plural), []).append(name)
        if hint and hint not in self.hints:
            self.hints.append(hint)

    def check(self) -> None:
        """Raise one DatabaseError naming everything found (nothing found: nothing happens)."""
        if not self.found:
            return
        groups = [f"{kind if len(names) == 1 else f'{len(names)} {plural}'} "
                  f"{', '.join(repr(n) for n in names)}" for (kind, plural), names in self.found.items()]
        count = sum(len(n) for n in self.found.values())
        hint = "; ".join([self.HINT.format(them="it" if count == 1 else "them"), *self.hints])
        if count == 1:
            raise DatabaseError(f"database {self.db!r} contains the {groups[0]}, which synco cannot "
                                "copy yet", hint=hint)
        raise DatabaseError(f"database {self.db!r} contains {count} objects synco cannot copy yet: "
                            f"{'; '.join(groups)}", hint=hint)


def table_kinds(conn, db: str) -> dict[str, str]:
    rows = query(conn, "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                       "WHERE TABLE_SCHEMA = %s", (db,))
    return {name: kind for name, kind in rows}


def base_tables(conn, db: str, *, strict: bool = True, refusals: Refusals | None = None) -> list[str]:
    """Tables whose rows are copied, in name order. Without ``strict``: every table (sequences
    too: what a swap moves). With ``strict``, kinds the engine cannot copy are refused (all of
    them in one error, or added to ``refusals``)."""
    names = []
    found = refusals or Refusals(db)
    for name, kind in sorted(table_kinds(conn, db).items()):
        if kind in TABLE_TYPES or (not strict and kind != "VIEW"):
            names.append(name)
        elif kind not in COPIED_TYPES:
            found.add(kind.lower(), f"{kind.lower()}s", name)
    if strict and refusals is None:
        found.check()
    return names


def sequences(conn, db: str) -> list[dict]:
    """MariaDB sequences in name order: their CREATE SEQUENCE text (every option) and the value
    the next NEXTVAL gives once the sequence is created anew (``next``, in cycle ``round``): the
    stored next_not_cached_value, as mariadb-dump reads it (values the source holds in its
    cache are skipped, as after a restart of the source)."""
    out = []
    for name in sorted(n for n, k in table_kinds(conn, db).items() if k == SEQUENCE):
        with failing(f"cannot read sequence {name!r}"):
            create = query(conn, f"SHOW CREATE SEQUENCE {qi(name)}")[0][1]
            nxt, rnd = query(conn, f"SELECT next_not_cached_value, cycle_count FROM {qi(name)}")[0]
        out.append({"name": name, "create": create, "next": int(nxt), "round": int(rnd)})
    return out


def sequence_value_sql(seq: dict) -> list[str]:
    """Statements that make a freshly created sequence continue at its dumped value: RESTART
    (SETVAL ignores a value below the start), then SETVAL for the cycle round, if any."""
    out = [f"ALTER SEQUENCE {qi(seq['name'])} RESTART WITH {int(seq['next'])}"]
    if seq["round"]:
        out.append(f"DO SETVAL({qi(seq['name'])}, {int(seq['next'])}, 0, {int(seq['round'])})")
    return out


# A default that calls a sequence: SHOW CREATE TABLE qualifies it with the database's name,
# ``nextval(`db`.`seq`)``, which a copy under another name must not keep.
_SEQUENCE_CALL = r"\b((?:nextval|lastval|setval)\(){}\."


def unqualify_sequences(create: str, db: str) -> str:
    """``create`` with calls of ``db``'s own sequences unqualified (they then resolve in the
    database the table is created in)."""
    return re.sub(_SEQUENCE_CALL.format(re.escape(qi(db))), r"\1", create, flags=re.I)


def sequence_defaults(conn, db: str, tables: list[str], old: list[str], new: str) -> list[list]:
    """``[table, [[column, default], ...]]`` for the tables of ``tables`` in ``db`` with columns
    whose default calls a sequence of a database in ``old``, the defaults retargeted to database
    ``new``: a table keeps the name of the database its default was created in, also when RENAME
    TABLE moves it."""
    if not tables:
        return []
    rows = query(conn, "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_DEFAULT FROM information_schema.COLUMNS "
                       "WHERE TABLE_SCHEMA = %s AND COLUMN_DEFAULT LIKE %s ORDER BY TABLE_NAME, "
                       "ORDINAL_POSITION", (db, "%val(`%"))
    out: dict[str, list] = {}
    wanted = set(tables)
    for table, column, default in rows:
        fixed = default
        for name in old:
            fixed = re.sub(_SEQUENCE_CALL.format(re.escape(qi(name))), lambda m: m.group(1) + qi(new) + ".",
                           fixed, flags=re.I)
        if table in wanted and fixed != default:
            out.setdefault(table, []).append([column, fixed])
    return [[table, cols] for table, cols in out.items()]


def set_defaults_sql(db: str, table: str, columns: list) -> str:
    """One ALTER for all of a table's columns (the server checks every default of the table)."""
    changes = ", ".join(f"ALTER COLUMN {qi(column)} SET DEFAULT {default}" for column, default in columns)
    # MariaDB refuses an ALTER of a system-versioned table unless asked to keep its history
    return (f"SET STATEMENT system_versioning_alter_history = KEEP FOR ALTER TABLE "
            f"{qi(db)}.{qi(table)} {changes}")


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


def triggers(conn, db: str, refusals: Refusals) -> list[dict]:
    rows = query(conn, "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
                       "WHERE TRIGGER_SCHEMA = %s ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, "
                       "EVENT_MANIPULATION, ACTION_ORDER", (db,))
    out = []
    for name, table in rows:
        shown = query(conn, f"SHOW CREATE TRIGGER {qi(name)}")[0]
        if _hidden(shown[2], "trigger", name, refusals):
            continue
        out.append({"kind": "trigger", "name": name, "table": table, "sql_mode": shown[1],
                    "create": strip_definer(shown[2])})
    return out


def routines(conn, db: str, refusals: Refusals) -> list[dict]:
    rows = query(conn, "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES "
                       "WHERE ROUTINE_SCHEMA = %s ORDER BY ROUTINE_TYPE, ROUTINE_NAME", (db,))
    out = []
    for name, rtype in rows:
        if rtype not in ("FUNCTION", "PROCEDURE"):  # MariaDB's PACKAGE and PACKAGE BODY (sql_mode ORACLE)
            refusals.add(rtype.lower(), rtype.lower().replace("body", "bodie") + "s", name)
            continue
        shown = query(conn, f"SHOW CREATE {rtype} {qi(name)}")[0]
        if _hidden(shown[2], rtype.lower(), name, refusals):
            continue
        out.append({"kind": "routine", "type": rtype, "name": name, "sql_mode": shown[1],
                    "create": strip_definer(shown[2])})
    return out


def events(conn, db: str, refusals: Refusals) -> list[dict]:
    """Events with their schedule, status (ENABLE, DISABLE, DISABLE ON SLAVE), ON COMPLETION and
    comment as SHOW CREATE EVENT gives them, their sql_mode and time zone (in which STARTS, ENDS
    and AT are written); without DEFINER, as routines."""
    rows = query(conn, "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s "
                       "ORDER BY EVENT_NAME", (db,))
    out = []
    for (name,) in rows:
        shown = query(conn, f"SHOW CREATE EVENT {qi(name)}")[0]
        if _hidden(shown[3], "event", name, refusals):
            continue
        out.append({"kind": "event", "name": name, "sql_mode": shown[1], "time_zone": shown[2],
                    "create": strip_definer(shown[3])})
    return out


def _hidden(text, what: str, name: str, refusals: Refusals) -> bool:
    if text is None:
        refusals.add(f"{what} whose definition is hidden from this user",
                     f"{what}s whose definitions are hidden from this user", name,
                     "for a hidden definition, connect as its owner or a user with SHOW_ROUTINE/SUPER")
        return True
    return False


def objects(conn, db: str, refusals: Refusals | None = None) -> list[dict]:
    """Routines, views, triggers, events of ``db`` in the order they must be created. What
    cannot be copied is refused, all of it in one error (or added to ``refusals``)."""
    found = refusals or Refusals(db)
    query(conn, f"USE {qi(db)}")
    out = routines(conn, db, found) + views(conn, db) + triggers(conn, db, found) + events(conn, db, found)
    if refusals is None:
        found.check()
    return out


def _kind(obj: dict) -> str:
    return obj["type"] if obj["kind"] == "routine" else obj["kind"].upper()


def drop_sql(obj: dict) -> str:
    return f"DROP {_kind(obj)} IF EXISTS {qi(obj['name'])}"


def session_sql(obj: dict) -> list[str]:
    """What the session must be while ``obj`` is created: its sql_mode (and an event's time zone)."""
    out = [f"SET SESSION sql_mode = {qs(obj['sql_mode'])}"]
    if obj.get("time_zone"):
        out.append(f"SET SESSION time_zone = {qs(obj['time_zone'])}")
    return out


def create_objects(conn, db: str, objs: list[dict]) -> None:
    """Create ``objs`` in ``db`` (each under its own sql_mode and time zone)."""
    query(conn, f"USE {qi(db)}")
    mode, zone = query(conn, "SELECT @@SESSION.sql_mode, @@SESSION.time_zone")[0]
    try:
        for obj in objs:
            with failing(f"cannot create {obj['kind']} {obj['name']!r} in {db!r}"):
                for stmt in session_sql(obj):
                    query(conn, stmt)
                query(conn, obj["create"])
    finally:
        query(conn, f"SET SESSION sql_mode = {qs(mode)}, time_zone = {qs(zone)}")


def drop_objects(conn, db: str, objs: list[dict]) -> None:
    query(conn, f"USE {qi(db)}")
    for obj in reversed(objs):
        with failing(f"cannot drop {obj['kind']} {obj['name']!r} in {db!r}"):
            query(conn, drop_sql(obj))


def key(obj: dict) -> tuple[str, str]:
    """What names an object within its database: routines by type (a function and a procedure
    may share a name), views, triggers and events by name."""
    return (_kind(obj), obj["name"])


def present(conn, db: str) -> list[dict]:
    """Names of the views, triggers, routines and events in ``db`` (no definitions: a view whose
    tables are gone is listed too)."""
    rows = query(conn, "SELECT 'routine', ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES "
                       "WHERE ROUTINE_SCHEMA = %s UNION ALL "
                       "SELECT 'view', '', TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s "
                       "UNION ALL SELECT 'trigger', '', TRIGGER_NAME FROM information_schema.TRIGGERS "
                       "WHERE TRIGGER_SCHEMA = %s UNION ALL "
                       "SELECT 'event', '', EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s",
                 (db, db, db, db))
    return [{"kind": k, "type": t, "name": n} for k, t, n in rows]


def missing(conn, db: str, objs: list[dict]) -> list[dict]:
    """Those of ``objs`` that ``db`` does not have (in their order)."""
    have = {key(o) for o in present(conn, db)}
    return [o for o in objs if key(o) not in have]
