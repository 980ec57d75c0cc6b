"""What the parcel ledger (layer ``parcels``, issue 13) costs: `zoning check` with and without `--no-ledger`.

Usage: python benchmarks/bench_ledger.py [--n 1000000] [--repeat 1]
Each run is a separate `zoning check` process on the benchmark's synthetic parcels (``_data.parcels``) against its
synthetic control lines; peak memory is the child's. Prints both side by side with the ratio (target ≤ 1.2).
"""
from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _data  # noqa: E402


def run(n: int, ledger: bool) -> tuple[float, float, float]:
    lines = _data.control_lines()
    with tempfile.TemporaryDirectory() as d:
        args = [sys.executable, "-m", "cli", "-q", "check", "--red-line", str(lines["red_line"]), "--farmland",
                str(lines["farmland"]), "--urban-boundary", str(lines["urban_boundary"]), "--construction",
                str(_data.parcels(n)), "-o", f"{d}/c.gpkg"] + ([] if ledger else ["--no-ledger"])
        t = time.perf_counter()
        r = subprocess.run(args, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
        secs = time.perf_counter() - t
        if r.returncode != 0:
            raise SystemExit(r.stderr)
        size = Path(f"{d}/c.gpkg").stat().st_size / 1e6
        return secs, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    _data.parcels(a.n)
    rows = {}
    for ledger in (False, True):  # RUSAGE_CHILDREN keeps the largest child so far: the smaller run first
        res = [run(a.n, ledger) for _ in range(a.repeat)]
        rows[ledger] = (statistics.median(r[0] for r in res), max(r[1] for r in res), res[0][2])
    (t0, m0, s0), (t1, m1, s1) = rows[False], rows[True]
    print(f"{a.n:,} parcels, medians of {a.repeat} runs; ratio = with the ledger / without (target ≤ 1.20)")
    print(f"{'':<34}{'seconds':>10}{'peak MB':>10}{'gpkg MB':>10}")
    print(f"{'zoning check --no-ledger':<34}{t0:>10.2f}{m0:>10.0f}{s0:>10.0f}")
    print(f"{'zoning check (parcels layer)':<34}{t1:>10.2f}{m1:>10.0f}{s1:>10.0f}")
    print(f"{'ratio':<34}{t1 / t0:>10.2f}{m1 / m0:>10.2f}{s1 / s0:>10.2f}")


if __name__ == "__main__":
    main()
