"""What bench/gen_mysql.py and bench/gen_pg.py share: how many rows make a dump of N MB, the label
that marks a finished database, the parallel fill, and the command line."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any


def plan(size_mb: float, shares: dict[str, float], bytes_per_row: dict[str, int]) -> dict[str, int]:
    """Rows per table for an uncompressed dump of about size_mb MB."""
    total = size_mb * 1_000_000
    return {t: max(1, round(total * shares[t] / bytes_per_row[t])) for t in shares}


def comment_for(size_mb: float, seed: int, nulls: bool = True) -> str:
    """The label on every table of a finished database (set last: an interrupted run has none)."""
    return f"synco-bench gen v1 size_mb={size_mb:g} seed={seed}" + ("" if nulls else " nulls=no")


def reusable(have: dict[str, str] | None, tables, comment: str, force: bool, db: str,
             log) -> bool:
    """Whether `db` holds a finished generation with these parameters (``have``: each table's
    label, None or empty for no tables). Other content is refused unless ``force``, which
    regenerates it."""
    if not have:
        return False
    if not force and set(have) == set(tables) and all(v == comment for v in have.values()):
        log(f"gen: `{db}` already holds {comment!r}; reusing it")
        return True
    if not force:
        raise SystemExit(f"database `{db}` exists with other content; use --force to drop and "
                         "regenerate it")
    return False


def fill(work: list[tuple], jobs: int, session: Callable[[], AbstractContextManager],
         run: Callable[[Any, tuple], None]) -> None:
    """Run every item of ``work`` as ``run(s, item)``, on ``jobs`` threads each with its own
    ``session()``; the first error stops the others and is raised here."""
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with session() as s:
                while not errors:
                    with lock:
                        if not work:
                            return
                        item = work.pop(0)
                    run(s, item)
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, jobs))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]


def main(argv: list[str] | None, doc: str, *, default_url: str, dump: str, parse_url,
         generate, drop, summary: Callable[[dict], str]) -> int:
    """The generators' command line: generate (or --drop) the database the URL names."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--db-url", default=default_url, help=f"target (default {default_url})")
    p.add_argument("--size-mb", type=float, default=None,
                   help=f"approximate uncompressed {dump} size in MB (default 1000)")
    p.add_argument("--scale", type=float, default=None,
                   help="alternative to --size-mb: fraction of the default 1000 MB (0.05 = 50 MB)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--jobs", type=int, default=2, help="parallel connections (default 2)")
    p.add_argument("--no-nulls", action="store_true",
                   help="no NULLs in the nullable columns (wide.phone, wide.birth_date)")
    p.add_argument("--force", action="store_true", help="drop and regenerate an existing database")
    p.add_argument("--drop", action="store_true", help="just drop the database and exit")
    a = p.parse_args(argv)
    conn, db = parse_url(a.db_url)
    if a.drop:
        drop(conn, db)
        return 0
    if a.size_mb is not None and a.scale is not None:
        p.error("give --size-mb or --scale, not both")
    size_mb = a.size_mb if a.size_mb is not None else 1000 * (a.scale if a.scale else 1.0)
    r = generate(conn, db, size_mb, a.seed, a.force, a.jobs, not a.no_nulls)
    print(f"{db}: {sum(r['rows'].values()):,} rows "
          f"({', '.join(f'{t} {n:,}' for t, n in r['rows'].items())}), {summary(r)}, "
          f"generated in {r['seconds']:.1f}s")
    return 0
