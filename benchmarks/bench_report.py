"""`zoning check --report` against `zoning check`: the reports must not break flat memory (issue 15).

Usage: python benchmarks/bench_report.py [--n 200000] [--repeat 3]
Each run is a separate `zoning check` process on the benchmark's synthetic parcels; peak memory is the child's
VmHWM. Prints both side by side with the ratio.
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


def run(n: int, report: bool) -> tuple[float, float]:
    lines = _data.control_lines()
    with tempfile.TemporaryDirectory() as d:
        args = [sys.executable, "-m", "cli", "-q", "check", "--red-line", str(lines["red_line"]), "--farmland",
                str(lines["farmland"]), "--urban-boundary", str(lines["urban_boundary"]), "--construction",
                str(_data.parcels(n)), "-o", f"{d}/c.gpkg"] + (["--report", f"{d}/rep"] if report else [])
        t = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        r = subprocess.run(args, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
        secs = time.perf_counter() - t
        if r.returncode != 0:
            raise SystemExit(r.stderr)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        return secs, max(peak, before) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    _data.parcels(a.n)
    rows = {}
    for report in (False, True):
        # RUSAGE_CHILDREN keeps the largest child so far: run the plain check first
        res = [run(a.n, report) for _ in range(a.repeat)]
        rows[report] = (statistics.median(s for s, _ in res), max(m for _, m in res))
    (t0, m0), (t1, m1) = rows[False], rows[True]
    print(f"{a.n:,} parcels, medians of {a.repeat} runs; ratio = with report / without")
    print(f"{'':<28}{'seconds':>10}{'peak MB':>10}")
    print(f"{'zoning check':<28}{t0:>10.2f}{m0:>10.0f}")
    print(f"{'zoning check --report':<28}{t1:>10.2f}{m1:>10.0f}")
    print(f"{'ratio':<28}{t1 / t0:>10.2f}{m1 / m0:>10.2f}")


if __name__ == "__main__":
    main()
