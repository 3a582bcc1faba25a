"""Size, start-up and peak memory of the release binaries, side by side with the other ways to
wrap the same PyInstaller program (staticx's own runtime, with and without its xz).

    build/build.sh && .venv/bin/python bench/bench_binary.py [--runs 10]

Uses what build/build.sh left in dist/ and build/work/ (the PyInstaller stage and the staticx
stage it packs); makes the staticx-xz variant into a temporary folder. Prints markdown for
bench/RESULTS.md: one row per binary with its size, the median/min/max wall time of
``--version`` over the runs, and the peak RSS of the largest process of a run (GNU time, which
covers the launcher's descendants).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = REPO / "build" / "work"
MIB = 1024 * 1024
sys.path.insert(0, str(HERE))

from bench_mysql import GNU_TIME, Measured  # noqa: E402


def run_once(cmd: list[str], tmp: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB, under GNU time when installed: see bench_mysql.Measured)
    of one run."""
    start = time.perf_counter()
    run = Measured(cmd, "binary", tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rc, rss_mb, _ = run.wait()
    elapsed = time.perf_counter() - start
    if rc != 0:
        sys.exit(f"bench_binary: {' '.join(cmd)} failed: {run.proc.stderr.read().decode()}")
    return elapsed, rss_mb


def measure(label: str, path: Path, args: list[str], runs: int, tmp: Path) -> dict:
    run_once([str(path), *args], tmp)  # warm the page cache
    results = [run_once([str(path), *args], tmp) for _ in range(runs)]
    times = [t for t, _ in results]
    return {"label": label, "bytes": path.stat().st_size, "median": statistics.median(times),
            "min": min(times), "max": max(times), "rss": max(r for _, r in results)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    opts = parser.parse_args()
    shipped = REPO / "dist" / "synco-source-linux-x86_64"
    client = REPO / "dist" / "synco-linux-x86_64"
    pyi = WORK / "pyi" / "synco-source"
    staticx_plain = WORK / "staticx" / "synco-source"
    for path in (shipped, client, pyi, staticx_plain):
        if not path.exists():
            sys.exit(f"bench_binary: {path.relative_to(REPO)} is missing: run build/build.sh first")

    with tempfile.TemporaryDirectory() as tmp:
        staticx_xz = Path(tmp) / "synco-source-staticx-xz"
        env = dict(os.environ, PATH=f"{WORK / 'venv' / 'bin'}:{os.environ['PATH']}")
        subprocess.run([str(WORK / "venv" / "bin" / "staticx"), "--strip", str(pyi),
                        str(staticx_xz)], check=True, env=env, capture_output=True)
        tmp = Path(tmp)
        rows = [
            measure("**`dist/synco-source-linux-x86_64`** (launcher + payload, shipped)",
                    shipped, ["--version"], opts.runs, tmp),
            measure("the same program in staticx's runtime, `--no-compress`", staticx_plain,
                    ["--version"], opts.runs, tmp),
            measure("the same program in staticx's runtime, xz", staticx_xz, ["--version"],
                    opts.runs, tmp),
            measure("the PyInstaller stage alone (needs the host's glibc 2.35+)", pyi,
                    ["--version"], opts.runs, tmp),
            measure("`dist/synco-linux-x86_64` (client, `version`)", client, ["version"],
                    opts.runs, tmp),
        ]

    rss = "GNU time's %M" if GNU_TIME else "wait4, an upper bound (no GNU time)"
    print(f"`--version`, {opts.runs} runs each after one warm-up; 1 MiB = 1,048,576 bytes; "
          f"peak RSS: the largest process of a run ({rss}).\n")
    print("| binary | bytes | MiB | median | min | max | peak RSS |")
    print("|--------|------:|----:|-------:|----:|----:|---------:|")
    for r in rows:
        print(f"| {r['label']} | {r['bytes']:,} | {r['bytes'] / MIB:.2f} | {r['median']:.3f} s "
              f"| {r['min']:.3f} | {r['max']:.3f} | {r['rss']:.0f} MB |")

    sys.path.insert(0, str(REPO / "build"))
    import pack

    print("\nPayload of the shipped server binary (`python3 build/pack.py --list`):\n")
    print("| entry | role | codec | bytes | stored |")
    print("|-------|------|-------|------:|-------:|")
    launcher = shipped.stat().st_size
    for e in pack.read(str(shipped)):
        launcher -= len(e["stored"]) + pack.ENTRY.size + len(e["name"].encode())
        if e["kind"] == "file":
            print(f"| {e['name']} | {e['role']} | {e['codec']} | {e['size']:,} | "
                  f"{len(e['stored']):,} |")
    print(f"| (launcher, build/launcher.c) | | | | {launcher - pack.TRAILER.size:,} |")


if __name__ == "__main__":
    main()
