"""The generic plugin: no framework, everything given explicitly.

Database from ``--db-url`` or ``SYNCO_DB_URL``; file sets as ``NAME=PATH`` pairs (a bare PATH is
named after its last component), relative to the project folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from synco_source import dburl
from synco_source.errors import UsageError

from .base import Project

SET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RESERVED = {"db"}


def parse_file_sets(specs: list[str], root: Path) -> dict[str, Path]:
    sets: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = Path(spec).name, spec
        if not SET_NAME_RE.match(name) or name in RESERVED:
            raise UsageError(f"bad file set name {name!r} in {spec!r}",
                             hint="use NAME=PATH with letters, digits, '.', '_' or '-' ('db' is taken)")
        if name in sets:
            raise UsageError(f"file set {name!r} is given twice")
        sets[name] = (root / path).resolve()
    return sets


def project(root: Path, db_url: str | None, file_specs: list[str], *, need_db: bool = True) -> Project:
    database = dburl.from_option(db_url) if (need_db or db_url) else None
    return Project(framework="generic", root=root, database=database,
                   file_sets=parse_file_sets(file_specs, root))
