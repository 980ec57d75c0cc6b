"""Control-line benchmark: `zoning check` vs geopandas.overlay vs plain STRtree (and PostGIS if installed).

    python benchmarks/bench_check.py [--sizes 10000 100000 1000000] [--repeat 3] [--postgis]
    python benchmarks/bench_check.py --scale [bench_cluster.py's options]   # one process vs Dask clusters

The three construction checks (in red line, on farmland, outside the urban boundary) on synthetic parcels against
synthetic control lines over Sichuan, generated reproducibly into $ZONING_BENCH_CACHE. Each peer runs in its own
subprocess and reads the same GeoPackages; areas are in China Albers. Prints medians, ratios, peak memory and each
peer's total violation area (they must agree within 0.1 %).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _data  # noqa: E402


def _read(n):
    import geopandas as gpd

    lines = {k: gpd.read_file(p).to_crs(_data.ALBERS) for k, p in _data.control_lines().items()}
    parcels = gpd.read_file(_data.parcels(n)).to_crs(_data.ALBERS)
    return lines, parcels


def peer_zoning(n: int) -> dict:
    import zoning

    rules = Path(_data.CACHE) / "bench_rules.toml"
    rules.write_text("[checks.red_line_farmland_overlap]\nenabled = false\n[checks.red_line_urban_overlap]\n"
                     "enabled = false\n[checks.farmland_urban_overlap]\nenabled = false\n[checks.self_overlap]\n"
                     "enabled = false\n")
    lines = _data.control_lines()
    res = zoning.check(lines["red_line"], lines["farmland"], lines["urban_boundary"], construction=_data.parcels(n),
                       rules=rules, sink=lambda *rows: None)
    s = res.county_summary
    s = s[s.county_id == "TOTAL"]
    return {c: float(a) for c, a in zip(s.check_id, s.area_m2)}


def peer_overlay(n: int) -> dict:
    import geopandas as gpd

    lines, parcels = _read(n)
    out = {}
    for check, layer in (("construction_in_red_line", "red_line"), ("construction_on_farmland", "farmland")):
        out[check] = float(gpd.overlay(parcels, lines[layer], how="intersection", keep_geom_type=True).area.sum())
    out["construction_outside_urban_boundary"] = float(
        gpd.overlay(parcels, lines["urban_boundary"], how="difference", keep_geom_type=True).area.sum())
    return out


def peer_strtree(n: int) -> dict:
    """What an expert writes by hand: one bulk query, vectorised intersection, union for the outside part."""
    import numpy as np
    import pandas as pd
    import shapely

    lines, parcels = _read(n)
    p = parcels.geometry.values
    out = {}
    for check, layer in (("construction_in_red_line", "red_line"), ("construction_on_farmland", "farmland")):
        c = lines[layer].geometry.values
        ip, ic = shapely.STRtree(c).query(p, predicate="intersects")
        out[check] = float(shapely.area(shapely.intersection(p[ip], c[ic])).sum())
    u = lines["urban_boundary"].geometry.values
    ip, iu = shapely.STRtree(u).query(p, predicate="intersects")
    inter = pd.Series(shapely.intersection(p[ip], u[iu])).groupby(ip).agg(lambda s: shapely.union_all(s.values))
    covered = np.zeros(len(p))
    covered[inter.index.to_numpy()] = shapely.area(inter.to_numpy())
    out["construction_outside_urban_boundary"] = float((shapely.area(p) - covered).sum())
    return out


PEERS = {"zoning": peer_zoning, "overlay": peer_overlay, "strtree": peer_strtree}
LABELS = {"zoning": "zoning check (3 construction checks)", "overlay": "geopandas.overlay",
          "strtree": "STRtree + vectorised intersection", "postgis": "PostGIS (ST_Subdivide, GiST)"}


def child(name: str, n: int) -> None:
    if name == "postgis":
        import bench_postgis

        t = time.perf_counter()
        areas = bench_postgis.run(n)
    else:
        t = time.perf_counter()
        areas = PEERS[name](n)
    secs = time.perf_counter() - t
    print(json.dumps({"seconds": secs, "peak_mb": _data.peak_mb(),
                      "areas": areas}))


def run_peer(name: str, n: int) -> dict:
    """One peer in a process of its own: the whole process's wall time (start, imports, reading, checks), the
    time inside it, its peak memory and its areas."""
    t = time.perf_counter()
    r = subprocess.run([sys.executable, __file__, "--child", name, "--n", str(n)], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{name} at {n} failed:\n{r.stderr[-3000:]}")
    return {**json.loads(r.stdout.strip().splitlines()[-1]), "wall": wall}


def main() -> None:
    if "--scale" in sys.argv:  # 10⁶-10⁷ parcels × 10⁶ farmland patches: one process, local:2, external scheduler
        import bench_cluster

        bench_cluster.main([a for a in sys.argv[1:] if a != "--scale"])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--postgis", action="store_true", help="also time PostGIS (needs postgresql-15-postgis-3)")
    ap.add_argument("--peers", nargs="+", default=list(PEERS))
    ap.add_argument("--child")
    ap.add_argument("--n", type=int)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.n)
        return
    print("preparing data in", _data.CACHE, flush=True)
    paths = _data.control_lines()
    import pyogrio

    counts = {k: pyogrio.read_info(p)["features"] for k, p in paths.items()}
    print("control features:", counts, flush=True)
    peers = list(a.peers)
    if a.postgis:
        import bench_postgis

        if bench_postgis.available():
            peers.append("postgis")
        else:
            print("PostGIS not installed (apt-get install postgresql-15-postgis-3): skipped", flush=True)
    table = []
    for n in a.sizes:
        _data.parcels(n)
        for name in peers:
            reps = a.repeat if n < 1_000_000 else 1
            res = [run_peer(name, n) for _ in range(reps)]
            row = {"n": n, "peer": name, "median_s": statistics.median(r["wall"] for r in res),
                   "peak_mb": max(r["peak_mb"] for r in res), "total_ha": sum(res[0]["areas"].values()) / 1e4,
                   "runs": reps}
            table.append(row)
            print(f"  {n:>9,} {name:<8} {row['median_s']:8.2f} s  {row['peak_mb']:7.0f} MB", flush=True)
    print("\nThree construction checks, Albers areas, 2 cores; whole processes (start, imports, reading, checks), "
          "medians; ratio = peer time / zoning time")
    print(f"{'parcels':>10}  {'peer':<38}{'median s':>9}{'ratio':>7}{'peak MB':>9}{'violation ha':>15}{'Δ vs zoning':>13}")
    for n in a.sizes:
        rows = [r for r in table if r["n"] == n]
        base = next(r for r in rows if r["peer"] == "zoning")
        for r in rows:
            d = (r["total_ha"] - base["total_ha"]) / base["total_ha"] if base["total_ha"] else 0.0
            print(f"{n:>10,}  {LABELS[r['peer']]:<38}{r['median_s']:>9.2f}{r['median_s'] / base['median_s']:>7.2f}"
                  f"{r['peak_mb']:>9.0f}{r['total_ha']:>15,.1f}{d:>+13.4%}")


if __name__ == "__main__":
    main()
