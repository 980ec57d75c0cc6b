"""Compensation benchmark: `zoning compensate` against `zoning classify`'s land-cover pass (`classify --raster
landcover=… --no-census`: the same raster read the same way, without the DEM), each a whole process, side by side;
and the national ecosystem service value beside the published figure (Xie et al. 2015: 38.1×10¹² yuan for 2010).

    python benchmarks/bench_compensate.py [--scenarios national sichuan_30m] [--repeat 3]

Scenarios as in bench_classify.py: all 2,875 county-level units with MODIS MCD12C1; the 183 Sichuan sample units
with the sample land cover refined to ~30 m (1.06 G cells) by the peers' `make_fine_raster.py`. Both commands run
with the default --memory-mb 1024. Peak memory is each process's own maximum resident set (os.wait4).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_classify  # noqa: E402

XIE_2010_YUAN = 38.1e12  # Xie et al. 2015, abstract: China's total ecosystem service value in 2010


def commands(name: str, out: Path) -> dict[str, list[str]]:
    counties, lc, _ = bench_classify.scenario(name)
    return {
        "classify (land cover)": [sys.executable, "-m", "cli", "-q", "classify", str(counties), "--raster",
                                  f"landcover={lc}", "--no-census", "-o", str(out / f"z_{name}.gpkg"), "--overwrite"],
        "compensate": [sys.executable, "-m", "cli", "-q", "compensate", str(counties), "--raster", f"landcover={lc}",
                       "--no-census", "-o", str(out / f"c_{name}.gpkg"), "--overwrite"],
    }


def national_totals(path: Path) -> None:
    import geopandas as gpd

    from zoning.compensation import load_factors

    c = gpd.read_file(path, layer="compensation")
    total = c["esv_yuan"].sum()
    print(f"\nNational ESV (MODIS MCD12C1 2019, IGBP mapping, D = 3,406.50): {total / 1e12:.2f}×10¹² yuan a year, "
          f"{total / XIE_2010_YUAN:.2f}× Xie et al. 2015 (38.1×10¹², 2010 land use); without water "
          f"{c['esv_without_water_yuan'].sum() / 1e12:.2f}×10¹²")
    print(f"{'service':<26}{'10¹² yuan':>10}{'share':>8}")
    for s in load_factors().services:
        v = c[f"esv_{s.key}_yuan"].sum()
        print(f"{s.key:<26}{v / 1e12:>10.2f}{v / total:>8.1%}")
    ha = {k[:-3]: c[k].sum() for k in c.columns if k.endswith("_ha")}
    print("area by type (10⁶ ha): " + ", ".join(f"{k} {v / 1e6:.0f}" for k, v in sorted(ha.items(),
                                                                                       key=lambda kv: -kv[1])))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenarios", nargs="+", default=["national", "sichuan_30m"])
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="zoning-bench-"))
    for s in a.scenarios:
        bench_classify.scenario(s)  # build data before timing
    rows = []
    for s in a.scenarios:
        reps = a.repeat if s != "sichuan_30m" else 1
        for peer, cmd in commands(s, out).items():
            res = [bench_classify.measure(cmd) for _ in range(reps)]
            rows.append((s, peer, statistics.median(r[0] for r in res), max(r[1] for r in res), reps))
            print(f"  {s:<13}{peer:<23}{rows[-1][2]:8.2f} s {rows[-1][3]:8.0f} MB", flush=True)
    print("\nEcosystem service value per county vs the classification's land-cover pass (same raster, same streaming "
          "engine, --memory-mb 1024); 2 cores; ratio = compensate / classify")
    print(f"{'scenario':<14}{'command':<23}{'median s':>10}{'peak MB':>10}{'ratio s':>9}{'ratio MB':>10}{'runs':>6}")
    for s in a.scenarios:
        ref = next(r for r in rows if r[0] == s and r[1].startswith("classify"))
        for r in (r for r in rows if r[0] == s):
            print(f"{s:<14}{r[1]:<23}{r[2]:>10.2f}{r[3]:>10.0f}{r[2] / ref[2]:>9.2f}{r[3] / ref[3]:>10.2f}{r[4]:>6}")
    if "national" in a.scenarios:
        national_totals(out / "c_national.gpkg")


if __name__ == "__main__":
    main()
