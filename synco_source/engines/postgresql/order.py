"""Dependency order of the objects created before the data (types, functions, sequences, tables,
views), from ``pg_depend``; OID order breaks ties, as pg_dump does."""

from __future__ import annotations

from .sql import query

# Each dependency row, with the dependent sub-object (view rule, column default, CHECK or domain
# constraint) replaced by the object that owns it, and a referenced row type or array type by the
# table or type behind it.
_DEPS = """
WITH d AS (
  SELECT CASE d.classid
           WHEN 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN (SELECT r.ev_class FROM pg_catalog.pg_rewrite r WHERE r.oid = d.objid)
           WHEN 'pg_catalog.pg_attrdef'::pg_catalog.regclass THEN (SELECT a.adrelid FROM pg_catalog.pg_attrdef a WHERE a.oid = d.objid)
           WHEN 'pg_catalog.pg_constraint'::pg_catalog.regclass THEN
             (SELECT CASE WHEN c.contype = 'c' THEN COALESCE(NULLIF(c.conrelid, 0), c.contypid) END
              FROM pg_catalog.pg_constraint c WHERE c.oid = d.objid)
           ELSE d.objid END AS obj,
         d.refclassid, d.refobjid
  FROM pg_catalog.pg_depend d WHERE d.deptype = 'n'
)
SELECT d.obj, CASE WHEN d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass THEN
         (SELECT CASE WHEN e.oid IS NOT NULL THEN COALESCE(NULLIF(e.typrelid, 0), e.oid)
                      ELSE COALESCE(NULLIF(t.typrelid, 0), t.oid) END
          FROM pg_catalog.pg_type t LEFT JOIN pg_catalog.pg_type e ON e.typarray = t.oid
          WHERE t.oid = d.refobjid)
       ELSE d.refobjid END
FROM d WHERE d.obj IS NOT NULL"""


def dependency_order(conn, objects: list[dict]) -> list[dict]:
    """``objects`` (each with an ``oid``) sorted so every one comes after those it depends on."""
    by_oid = {o["oid"]: o for o in objects}
    deps: dict[int, set[int]] = {oid: set() for oid in by_oid}
    for obj, ref in query(conn, _DEPS):
        if obj in by_oid and ref in by_oid and obj != ref:
            deps[obj].add(ref)
    done: list[dict] = []
    state: dict[int, int] = {}

    def visit(oid: int) -> None:
        stack = [(oid, iter(sorted(deps[oid])))]
        state[oid] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                state[node] = 2
                done.append(by_oid[node])
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(sorted(deps[child]))))

    for oid in sorted(by_oid):
        if oid not in state:
            visit(oid)
    return done
