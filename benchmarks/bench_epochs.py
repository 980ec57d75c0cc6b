"""What the year-on-year check (issue 14) costs: `zoning check --baseline` against the single-epoch check.

Usage: python benchmarks/bench_epochs.py [--n 200000] [--repeat 1]
The baseline survey is derived from the benchmark's synthetic parcels (``_data.parcels``): a third absent (new),
a third shrunk to 70 % of their width (expanded), a third as they are (existing); it is cached beside them. Each run
is a separate `zoning check` process; prints both side by side with the ratio (target ≤ 1.3, memory flat).
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _data  # noqa: E402


def baseline(n: int) -> Path:
    out = _data.CACHE / f"bench_baseline_{n}.gpkg"
    if out.exists():
        return out
    import geopandas as gpd
    import shapely

    cur = gpd.read_file(_data.parcels(n))
    kind = np.arange(len(cur)) % 3
    geoms = np.asarray(cur.geometry.values, dtype=object)
    small = kind == 1
    cen = shapely.get_coordinates(shapely.centroid(geoms[small]))
    # scale about each centroid, vectorised over the coordinates (one call, not one per parcel)
    coords, idx = shapely.get_coordinates(geoms[small], return_index=True)
    centre = cen[idx]
    geoms[small] = shapely.set_coordinates(geoms[small].copy(), centre + 0.7 * (coords - centre))
    keep = kind != 0
    base = gpd.GeoDataFrame({"id": cur["id"].to_numpy()[keep]}, geometry=geoms[keep], crs=cur.crs)
    base.to_file(out, layer="baseline", engine="pyogrio", use_arrow=True)
    return out


def run(n: int, with_baseline: bool) -> tuple[float, float]:
    lines = _data.control_lines()
    with tempfile.TemporaryDirectory() as d:
        args = [sys.executable, "-m", "cli", "-q", "check", "--red-line", str(lines["red_line"]), "--farmland",
                str(lines["farmland"]), "--urban-boundary", str(lines["urban_boundary"]), "--construction",
                str(_data.parcels(n)), "-o", f"{d}/c.gpkg"] + (["--baseline", str(baseline(n))] if with_baseline
                                                              else [])
        t = time.perf_counter()
        r = subprocess.run(args, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
        secs = time.perf_counter() - t
        if r.returncode != 0:
            raise SystemExit(r.stderr)
        return secs, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    baseline(a.n)
    rows = {}
    for with_baseline in (False, True):  # RUSAGE_CHILDREN keeps the largest child so far: the smaller run first
        res = [run(a.n, with_baseline) for _ in range(a.repeat)]
        rows[with_baseline] = (statistics.median(r[0] for r in res), max(r[1] for r in res))
    (t0, m0), (t1, m1) = rows[False], rows[True]
    print(f"{a.n:,} parcels, medians of {a.repeat} runs; ratio = with the baseline / without (target ≤ 1.30)")
    print(f"{'':<34}{'seconds':>10}{'peak MB':>10}")
    print(f"{'zoning check':<34}{t0:>10.2f}{m0:>10.0f}")
    print(f"{'zoning check --baseline':<34}{t1:>10.2f}{m1:>10.0f}")
    print(f"{'ratio':<34}{t1 / t0:>10.2f}{m1 / m0:>10.2f}")


if __name__ == "__main__":
    main()
