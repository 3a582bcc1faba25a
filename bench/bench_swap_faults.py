#!/usr/bin/env python3
"""Kill a real ``synco download`` with SIGKILL at random moments and inside the swap, and check
that nothing is ever lost.

Usage (from the repository root)::

    .venv/bin/python bench/bench_swap_faults.py                   # 40 runs per engine
    .venv/bin/python bench/bench_swap_faults.py --runs 10 --engine mysql
    .venv/bin/python bench/bench_swap_faults.py --write           # also refresh bench/RESULTS.md

One synco-source serves a small database with views, triggers and routines (MySQL: a shop of
20,000 customers; PostgreSQL: the same shape). Before every run the destination is reset to an
old database that has views, triggers and routines of its own. Then ``synco download --yes`` runs
as a subprocess and is killed with SIGKILL (its whole process group):

- a third of the runs (``random``) at a uniformly random moment of the whole run (start-up,
  download, import, swap), measured on a calibration run;
- a third (``swap``) 0-80 ms after the swap begins: on MySQL when ``<db>__synco_prev`` appears,
  on PostgreSQL when the client's last connection to ``<db>__synco_new`` ends (the indexes are
  built, the renames follow);
- a third (``rename``) 0-80 ms after the tables moved: on MySQL when ``<db>__synco_prev`` holds
  tables (the views, triggers and routines are being created), on PostgreSQL when
  ``<db>__synco_prev`` appears (the renames committed).

After each kill the next run's first step (``recover``, which ``synco download`` and ``synco
restore`` run before anything else) is applied, then the destination must be the complete old
database, or the complete new one with the complete old one as ``<db>__synco_prev`` — or, failing
both, ``synco restore --yes`` must give back the complete old one. "Complete" is the test suite's
fingerprint: every table's definition and rows, every view, trigger and routine with its
sql_mode, the character set (MySQL: also every event and sequence). Any other state is a failure and the script exits 1.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

import dbfixtures  # noqa: E402
import pgfixtures  # noqa: E402
from e2e import make_shop  # noqa: E402
from sourceproc import Source  # noqa: E402
from synco_source import engines  # noqa: E402

SWAP_WINDOW = 0.080  # seconds after the swap begins

MYSQL_OLD = (
    "CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO a VALUES (1, 'old'), (2, 'old')",
    "CREATE TABLE log (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(40))",
    "CREATE TABLE customer (id INT PRIMARY KEY, mine TEXT)", "INSERT INTO customer VALUES (1, 'old')",
    "CREATE VIEW v_a AS SELECT id FROM a", "CREATE VIEW v_v AS SELECT id FROM v_a WHERE id > 1",
    "CREATE TRIGGER trg AFTER INSERT ON a FOR EACH ROW INSERT INTO log (what) VALUES ('old')",
    "CREATE TRIGGER trg2 AFTER INSERT ON a FOR EACH ROW FOLLOWS trg INSERT INTO log (what) VALUES ('x')",
    "SET SESSION sql_mode = 'ANSI_QUOTES'", "CREATE FUNCTION f() RETURNS INT DETERMINISTIC RETURN 1",
    "SET SESSION sql_mode = DEFAULT", "CREATE PROCEDURE p() SELECT 'old'",
    "CREATE SEQUENCE seq START WITH 5 NOCACHE",
    "CREATE EVENT ev ON SCHEDULE EVERY 1 DAY STARTS '2035-01-01' DISABLE DO DELETE FROM a",
    "CREATE EVENT ev_old ON SCHEDULE AT '2035-01-01' DISABLE DO DELETE FROM customer")
MYSQL_NEW_EXTRA = ("CREATE FUNCTION f() RETURNS INT DETERMINISTIC RETURN 2",
                   "CREATE PROCEDURE p_new() SELECT COUNT(*) FROM customer",
                   "CREATE SEQUENCE seq START WITH 100 INCREMENT BY 10 NOCACHE", "SELECT NEXTVAL(seq)",
                   "CREATE EVENT ev ON SCHEDULE EVERY 2 HOUR STARTS '2035-01-01' ENABLE DO DELETE FROM customer "
                   "WHERE id < 0")
PG_OLD = ("CREATE TABLE a (id int PRIMARY KEY, v text)", "INSERT INTO a VALUES (1, 'old'), (2, 'old')",
          "CREATE TABLE customer (id int PRIMARY KEY, mine text)", "INSERT INTO customer VALUES (1, 'old')",
          "CREATE VIEW v_a AS SELECT id FROM a",
          "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
          "CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN NEW.v := NEW.v || ''!''; "
          "RETURN NEW; END'",
          "CREATE TRIGGER trg BEFORE INSERT ON a FOR EACH ROW EXECUTE FUNCTION stamp()")
PG_NEW = ("CREATE TABLE customer (id int PRIMARY KEY, name text, note text, created timestamp)",
          "INSERT INTO customer SELECT g, 'customer ' || g, repeat(md5(g::text), 4), "
          "'2024-01-01'::timestamp + g * interval '1 second' FROM generate_series(1, 20000) g",
          "CREATE TABLE audit (id serial PRIMARY KEY, what text)",
          "CREATE VIEW customer_names AS SELECT id, name FROM customer",
          "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 2'",
          "CREATE FUNCTION audit_it() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN INSERT INTO audit (what) "
          "VALUES (NEW.name); RETURN NEW; END'",
          "CREATE TRIGGER customer_audit AFTER INSERT ON customer FOR EACH ROW EXECUTE FUNCTION audit_it()")


@dataclass
class Kit:
    engine: str
    server: object
    execute: Callable        # (url, *statements, database=...) -> rows
    fingerprint: Callable    # url -> dict
    databases: Callable      # url -> set of names
    maintenance: str         # a database to run CREATE/DROP DATABASE from

    def url(self, name: str):
        return self.server.with_database(name)

    def text(self, name: str) -> str:
        return dbfixtures.url_text(self.url(name))

    def drop(self, name: str) -> None:
        for suffix in ("", "__synco_new", "__synco_prev"):
            force = " WITH (FORCE)" if self.engine == "postgresql" else ""
            self.execute(self.server, f'DROP DATABASE IF EXISTS "{name}{suffix}"{force}'
                         if self.engine == "postgresql" else f"DROP DATABASE IF EXISTS `{name}{suffix}`",
                         database=self.maintenance)

    def create(self, name: str, statements) -> None:
        if self.engine == "mysql":
            self.execute(self.server, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 "
                                      "COLLATE utf8mb4_general_ci", database="")
        else:
            self.execute(self.server, f'CREATE DATABASE "{name}"', database=self.maintenance)
        if statements:
            self.execute(self.url(name), *statements)

    def probe(self, name: str, mode: str) -> Callable[[], bool]:
        """A probe that turns true at the moment ``mode`` waits for (see the module docstring)."""
        prev = name + "__synco_prev"
        if self.engine == "mysql":
            conn = dbfixtures.mysql_connect(self.server)
            sql = ("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s" if mode == "swap" else
                   "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s LIMIT 1")

            def probe() -> bool:
                with conn.cursor() as cur:
                    cur.execute(sql, (prev,))
                    return bool(cur.fetchall())
            return probe
        conn = pgfixtures.pg_connect(self.server, self.maintenance)
        if mode == "rename":
            return lambda: bool(conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                             (prev,)).fetchall())
        seen = [False]

        def probe() -> bool:
            count = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                                 (name + "__synco_new",)).fetchone()[0]
            seen[0] = seen[0] or count > 0
            return seen[0] and count == 0
        return probe


def mysql_fingerprint(url) -> dict:
    """The test suite's fingerprint plus the events and the sequences' state, which it leaves out."""
    out = dbfixtures.mysql_fingerprint(url)
    execute = dbfixtures.mysql_execute
    out["events"] = {name: re.sub(r" DEFINER=\S+@\S+", "", execute(url, f"SHOW CREATE EVENT `{name}`")[0][3])
                     for (name,) in execute(url, "SELECT EVENT_NAME FROM information_schema.EVENTS "
                                                 f"WHERE EVENT_SCHEMA = '{url.database}'")}
    out["sequences"] = {name: execute(url, f"SELECT * FROM `{name}`")
                        for (name,) in execute(url, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE "
                                                    f"TABLE_SCHEMA = '{url.database}' AND TABLE_TYPE = 'SEQUENCE'")}
    return out


def mysql_kit() -> Kit:
    return Kit("mysql", dbfixtures._server_url(), dbfixtures.mysql_execute, mysql_fingerprint,
               lambda url: {r[0] for r in dbfixtures.mysql_execute(url, "SHOW DATABASES", database="")}, "")


def pg_kit() -> Kit:
    return Kit("postgresql", pgfixtures._server_url(), pgfixtures.pg_execute, pgfixtures.pg_fingerprint,
               pgfixtures.pg_databases, "postgres")


def client_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "SYNCO_DB_URL"}
    env.update(XDG_CACHE_HOME=str(home / "cache"), XDG_DATA_HOME=str(home / "data"),
               XDG_STATE_HOME=str(home / "state"), XDG_CONFIG_HOME=str(home / "config"))
    return env


def synco_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", "from synco.cli import run; run()", *args]


class Bench:
    def __init__(self, kit: Kit, home: Path) -> None:
        self.kit, self.home = kit, home
        tag = f"{os.getpid()}_{random.randrange(1 << 20):05x}"
        self.src, self.dst = f"synco_fault_src_{tag}", f"synco_fault_dst_{tag}"

    def setup(self) -> None:
        kit = self.kit
        kit.drop(self.src)
        if kit.engine == "mysql":
            kit.create(self.src, ())
            make_shop(kit.url(self.src))
            kit.execute(kit.url(self.src), *MYSQL_NEW_EXTRA)
        else:
            kit.create(self.src, PG_NEW)
        self.new = kit.fingerprint(kit.url(self.src))

    def reset(self) -> None:
        self.kit.drop(self.dst)
        self.kit.create(self.dst, MYSQL_OLD if self.kit.engine == "mysql" else PG_OLD)

    def cleanup(self) -> None:
        for name in (self.src, self.dst):
            try:
                self.kit.drop(name)
            except Exception as exc:  # keep cleaning up
                print(f"cannot drop {name}: {exc}", file=sys.stderr)

    def start(self, token: str) -> subprocess.Popen:
        return subprocess.Popen(synco_cmd("download", token, "--yes", "--db-url", self.kit.text(self.dst)),
                                env=client_env(self.home), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)

    def calibrate(self, token: str) -> float:
        """One whole run: how long it takes, and a check that the checks below can succeed."""
        self.reset()
        self.old = self.kit.fingerprint(self.kit.url(self.dst))
        start = time.monotonic()
        proc = self.start(token)
        _, err = proc.communicate(timeout=600)
        took = time.monotonic() - start
        if proc.returncode:
            raise SystemExit(f"{self.kit.engine}: the calibration download failed: {err}")
        if self.kit.fingerprint(self.kit.url(self.dst)) != self.new:
            raise SystemExit(f"{self.kit.engine}: the downloaded copy differs from the source")
        if self.kit.fingerprint(self.kit.url(self.dst + "__synco_prev")) != self.old:
            raise SystemExit(f"{self.kit.engine}: the previous copy differs from the old database")
        return took

    def one(self, token: str, mode: str, whole: float) -> tuple[str, str, float]:
        """(outcome, what recover said, kill time) of one killed run."""
        kit = self.kit
        self.reset()
        probe = kit.probe(self.dst, mode) if mode != "random" else None
        start = time.monotonic()
        proc = self.start(token)
        if probe is None:
            delay = random.uniform(0, whole)
            while proc.poll() is None and time.monotonic() - start < delay:
                time.sleep(0.002)
        else:
            while proc.poll() is None and not probe() and time.monotonic() - start < 120:
                time.sleep(0.001)
            time.sleep(random.uniform(0, SWAP_WINDOW))
        at = time.monotonic() - start
        ended_before = proc.poll() is not None
        if not ended_before:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        said = "; ".join(engines.recover(kit.url(self.dst))) or "-"
        dst, prev = kit.url(self.dst), kit.url(self.dst + "__synco_prev")
        names = kit.databases(kit.server)
        if self.dst + "__synco_new" in names:
            return "FAIL: a shadow database is left after recover", said, at
        have = kit.fingerprint(dst) if self.dst in names else None
        if ended_before:
            outcome = "finished before the kill"
        elif have == self.old:
            outcome = "old database"
        elif have == self.new and self.dst + "__synco_prev" in names and kit.fingerprint(prev) == self.old:
            outcome = "new database, old kept as previous copy"
        else:
            back = subprocess.run(synco_cmd("restore", "--yes", "--db-url", kit.text(self.dst)),
                                  env=client_env(self.home), capture_output=True, text=True, timeout=300)
            if back.returncode == 0 and kit.fingerprint(dst) == self.old:
                outcome = "old database after synco restore"
            else:
                outcome = f"FAIL: neither old nor new+previous; restore: {back.stderr.strip()[-200:]}"
        if ended_before and not (have == self.new and kit.fingerprint(prev) == self.old):
            err = proc.stderr.read().strip() if proc.stderr else ""
            outcome = (f"FAIL: the finished run (exit {proc.returncode}) left something else than new + "
                       f"previous: {err[-300:]}")
        return outcome, said, at

    def next_run(self, token: str) -> str:
        """Kill a run inside the swap, then run ``synco download`` again as a user would (no
        separate recover): it must finish with the new database in place."""
        self.reset()
        probe = self.kit.probe(self.dst, "swap")
        proc = self.start(token)
        start = time.monotonic()
        while proc.poll() is None and not probe() and time.monotonic() - start < 120:
            time.sleep(0.001)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        again = subprocess.run(synco_cmd("download", token, "--yes", "--db-url", self.kit.text(self.dst)),
                               env=client_env(self.home), capture_output=True, text=True, timeout=600)
        if again.returncode:
            return f"failed: {again.stderr.strip()[-300:]}"
        if self.kit.fingerprint(self.kit.url(self.dst)) != self.new:
            return "failed: the target is not the new database"
        return "ok (exit 0, the new database in place)"


def kind_of(said: str) -> str:
    """What recover did, in a few words (the database names taken out)."""
    if said == "-":
        return "nothing to do"
    return re.sub(r"'[^']*'", "<db>", said.split(":")[0])


def run_engine(kit: Kit, runs: int, home: Path) -> dict:
    bench = Bench(kit, home)
    bench.setup()
    results: dict = {"engine": kit.engine, "runs": 0, "modes": collections.Counter(),
                     "outcomes": collections.Counter(), "recover": collections.Counter(), "fail": []}
    try:
        with Source(["--listen", "127.0.0.1:0"], db_url=kit.text(bench.src)) as source:
            source.wait_ready()
            whole = bench.calibrate(source.token)
            results["whole"] = whole
            for i in range(runs):
                mode = ("random", "swap", "rename")[i % 3]
                outcome, said, at = bench.one(source.token, mode, whole)
                results["runs"] += 1
                results["modes"][mode] += 1
                results["outcomes"][(mode, outcome)] += 1
                results["recover"][kind_of(said)] += 1
                line = f"{kit.engine} {i + 1:3}/{runs} {mode:6} kill at {at:6.3f} s: {outcome} (recover: {said})"
                print(line, flush=True)
                if outcome.startswith("FAIL"):
                    results["fail"].append(line)
            results["next_run"] = bench.next_run(source.token)
            print(f"{kit.engine} a real download after a kill inside the swap: {results['next_run']}", flush=True)
            if not results["next_run"].startswith("ok"):
                results["fail"].append(f"{kit.engine} next run: {results['next_run']}")
    finally:
        bench.cleanup()
    return results


def report(all_results: list[dict]) -> str:
    lines = [f"## Swap fault injection ({dt.date.today().isoformat()})", "",
             "`bench/bench_swap_faults.py`: a real `synco download` killed with SIGKILL, a third of the "
             "runs at a random moment of the whole run, a third 0-80 ms after the swap begins, a third "
             "0-80 ms after the tables moved (see the script's docstring); the destination "
             "has views, triggers and routines. After each kill the next run's `recover` step, then the "
             "destination is checked against the fingerprints of the old and the new database.", "",
             "| engine | mode | runs | outcome | count |", "| --- | --- | --- | --- | --- |"]
    for res in all_results:
        for (mode, outcome), count in sorted(res["outcomes"].items()):
            lines.append(f"| {res['engine']} | {mode} | {res['modes'][mode]} | {outcome} | {count} |")
    lines.append("")
    for res in all_results:
        said = ", ".join(f"{k}: {v}" for k, v in sorted(res["recover"].items()))
        lines.append(f"- {res['engine']}: a whole run takes {res['whole']:.2f} s; {res['runs']} kills, "
                     f"{len(res['fail'])} failures; what the next run's recover did: {said}; a real "
                     f"`synco download` right after a kill inside the swap: {res.get('next_run', '-')}.")
    return "\n".join(lines) + "\n"


def write_results(text: str) -> None:
    path = HERE / "RESULTS.md"
    old = path.read_text()
    # up to the next section's heading or the marker comment another script puts before it
    section = re.compile(r"^## Swap fault injection.*?(?=^## |^<!-- |\Z)", re.S | re.M)
    new = section.sub(lambda m: text + "\n", old, count=1) if section.search(old) else old.rstrip("\n") + "\n\n" + text
    path.write_text(new)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="kills per engine (default 40)")
    parser.add_argument("--engine", choices=("mysql", "postgresql", "both"), default="both")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--write", action="store_true", help="refresh the section in bench/RESULTS.md")
    args = parser.parse_args()
    random.seed(args.seed)
    kits = [k for k in (mysql_kit, pg_kit) if args.engine in ("both", k().engine)]
    results = []
    with tempfile.TemporaryDirectory(prefix="synco-faults-") as home:
        for make in kits:
            results.append(run_engine(make(), args.runs, Path(home)))
    text = report(results)
    print()
    print(text)
    if args.write:
        write_results(text)
    failed = sum(len(r["fail"]) for r in results)
    if failed:
        print(f"{failed} run(s) lost data:", *(line for r in results for line in r["fail"]), sep="\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
