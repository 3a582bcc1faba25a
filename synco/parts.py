"""The database parts of a session that is still dumping (docs/FORMAT.md §6.4): what the client
imported from them, and the check, once the session is ready, that the full manifest says exactly
that (then what is left to load)."""

from __future__ import annotations

from synco_source.errors import IntegrityError


class EarlyImport:
    """The part of the database imported while the server dumped."""

    def __init__(self, target, head: dict) -> None:
        self.target, self.head = target, head
        self.tables: list[dict] = []  # joined from the parts
        self.parts = 0
        self.seen: dict[str, bool] = {}
        self.meta: dict = {}

    def add(self, part: dict) -> dict:
        """Take in one table part: a table, or the next run of its chunks (§6.4)."""
        if (part["engine"], part["database"]) != (self.head["engine"], self.head["database"]):
            raise IntegrityError("a part of the database names another database than its schema")
        piece = part["tables"][0]
        self.parts += 1
        if self.tables and self.tables[-1]["name"] == piece["name"]:
            last = self.tables[-1]
            if last.get("skipped") or piece.get("skipped"):
                raise IntegrityError(f"malformed parts: skipped table {piece['name'][:80]!r} "
                                     f"comes in more than one part")
            self.tables[-1] = {**last, "rows": last["rows"] + piece["rows"],
                               "chunks": last["chunks"] + piece["chunks"]}
        else:
            self.tables.append(dict(piece))
        return piece

    def check(self, database: dict | None) -> list[dict]:
        """The full manifest must say exactly what was imported from the parts (the last table
        may have been imported in part); returns what is left to load."""
        done = self.tables
        bad = (database is None
               or (database["engine"], database["database"], database["schema"])
               != (self.head["engine"], self.head["database"], self.head["schema"])
               or len(done) > len(database["tables"])
               or (done and database["tables"][:len(done) - 1] != done[:-1]))
        if not bad and done:
            full, last = database["tables"][len(done) - 1], done[-1]
            bad = (full["name"] != last["name"] or full.get("skipped") != last.get("skipped")
                   or full["chunks"][:len(last["chunks"])] != last["chunks"]
                   or (len(full["chunks"]) == len(last["chunks"]) and full != last))
        if bad:
            raise IntegrityError("the database manifest does not match the parts imported while "
                                 "the server dumped", hint="run synco-source again and use the "
                                                           "new token")
        if not done:
            return database["tables"]
        full = database["tables"][len(done) - 1]
        tail = full["chunks"][len(done[-1]["chunks"]):]
        return ([{**full, "chunks": tail}] if tail else []) + database["tables"][len(done):]


def joined(pieces: list[dict]) -> list[dict]:
    """Consecutive runs of one table's chunks as one entry (interleave takes each table once)."""
    joined: list[dict] = []
    for piece in pieces:
        if joined and joined[-1]["name"] == piece["name"]:
            joined[-1] = {**joined[-1], "chunks": joined[-1]["chunks"] + piece["chunks"]}
        else:
            joined.append(piece)
    return joined
