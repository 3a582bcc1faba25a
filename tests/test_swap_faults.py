"""kill -9 of a real ``synco download`` at random moments and inside the swap, a few runs per
engine through bench/bench_swap_faults.py (which does 40+ for the record in bench/RESULTS.md).
Marked slow (about a minute): ``pytest -m "not slow"`` leaves it out."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_swap_faults.py"


def bench_module():
    spec = importlib.util.spec_from_file_location("bench_swap_faults", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["mysql", "postgresql"])
def test_killed_downloads_lose_nothing(engine, request, tmp_path):
    request.getfixturevalue("mysql_server" if engine == "mysql" else "pg_server")  # fail in CI if absent
    bench = bench_module()
    kit = bench.mysql_kit() if engine == "mysql" else bench.pg_kit()
    results = bench.run_engine(kit, 6, tmp_path)
    assert results["runs"] == 6
    assert not results["fail"], results["fail"]
    seen = {outcome for _, outcome in results["outcomes"]}
    # the kills inside the swap land on both sides of its point of no return
    assert "new database, old kept as previous copy" in seen, results["outcomes"]
