"""Size, start-up and peak memory of the release binaries, side by side with the other ways to
wrap the same PyInstaller program (staticx's own runtime, with and without its xz).

    build/build.sh && python3 bench/bench_binary.py [--runs 10]

Uses what build/build.sh left in dist/ and build/work/ (the PyInstaller stage and the staticx
stage it packs); makes the staticx-xz variant into a temporary folder. Prints markdown for
bench/RESULTS.md: one row per binary with its size, the median/min/max wall time of
``--version`` over the runs, and the peak RSS of the largest process of a run (wait4, which
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

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "build" / "work"
MIB = 1024 * 1024


def run_once(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one run."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"bench_binary: {' '.join(cmd)} failed: {proc.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss


def measure(label: str, path: Path, args: list[str], runs: int) -> dict:
    run_once([str(path), *args])  # warm the page cache
    results = [run_once([str(path), *args]) for _ in range(runs)]
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
        rows = [
            measure("**`dist/synco-source-linux-x86_64`** (launcher + payload, shipped)",
                    shipped, ["--version"], opts.runs),
            measure("the same program in staticx's runtime, `--no-compress`", staticx_plain,
                    ["--version"], opts.runs),
            measure("the same program in staticx's runtime, xz", staticx_xz, ["--version"],
                    opts.runs),
            measure("the PyInstaller stage alone (needs the host's glibc 2.35+)", pyi,
                    ["--version"], opts.runs),
            measure("`dist/synco-linux-x86_64` (client, `version`)", client, ["version"],
                    opts.runs),
        ]

    print(f"`--version`, {opts.runs} runs each after one warm-up; 1 MiB = 1,048,576 bytes.\n")
    print("| binary | bytes | MiB | median | min | max | peak RSS |")
    print("|--------|------:|----:|-------:|----:|----:|---------:|")
    for r in rows:
        print(f"| {r['label']} | {r['bytes']:,} | {r['bytes'] / MIB:.2f} | {r['median']:.3f} s "
              f"| {r['min']:.3f} | {r['max']:.3f} | {r['rss'] / 1024:.0f} MB |")

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
