"""Classification benchmark: `zoning classify` against the exactextract reference (`../shared/peers/ref_zonal.py`,
counties handed over as WKB: 17 class fractions + DEM mean -> GeoPackage), each a whole process, side by side.

    python benchmarks/bench_classify.py [--scenarios national sichuan_0.001 sichuan_30m] [--repeat 3]

Scenarios: all 2,875 county-level units with MODIS MCD12C1 and the national DEM; the 183 Sichuan sample units with
the sample land cover refined to 0.001° (x50, 95 M cells) and to ~30 m (x167, 1.06 G cells) by the peers' own
`make_fine_raster.py`, with the sample DEM. Data are built once into $ZONING_BENCH_CACHE (~/.cache/zoning-bench).
Peak memory is each process's own maximum resident set (os.wait4).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _data  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PEERS_DIR = ROOT.parent / "shared" / "peers"
SAMPLE = ROOT / "sample_data"
FAN = {"urbanization": (0.35, 0.15), "grain_production": (0.33, 0.26), "ecological": (0.32, 0.59)}


def fine_raster(factor: int) -> Path:
    out = Path(_data.CACHE) / f"sichuan_landcover_x{factor}.tif"
    if not out.exists():
        print(f"building {out.name} with make_fine_raster.py --factor {factor}", flush=True)
        subprocess.run([sys.executable, str(PEERS_DIR / "make_fine_raster.py"), str(SAMPLE / "landcover.tif"),
                        str(out), "--factor", str(factor)], check=True)
    return out


def scenario(name: str) -> tuple[Path, Path, Path]:
    if name == "national":
        return _data.national_counties(), _data.landcover(), _data.national_dem()
    factor = {"sichuan_0.001": 50, "sichuan_30m": 167}[name]
    return SAMPLE / "counties.gpkg", fine_raster(factor), SAMPLE / "dem.tif"


def measure(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident MB of one process."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(p.pid, 0)
    secs = time.perf_counter() - t
    err = p.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{err[-3000:]}")
    return secs, usage.ru_maxrss / 1024


def commands(name: str, out: Path) -> dict[str, list[str]]:
    counties, lc, dem = scenario(name)
    return {
        "zoning": [sys.executable, "-m", "cli", "-q", "classify", str(counties), "--raster", f"landcover={lc}",
                   "--raster", f"dem={dem}", "-o", str(out / f"zoning_{name}.gpkg"), "--overwrite"],
        # without the built-in census (what 0.2.0 ran before it): its cost is the difference
        "zoning-no-census": [sys.executable, "-m", "cli", "-q", "classify", str(counties), "--raster",
                             f"landcover={lc}", "--raster", f"dem={dem}", "--no-census", "-o",
                             str(out / f"zoning_nc_{name}.gpkg"), "--overwrite"],
        "exactextract": [sys.executable, str(PEERS_DIR / "ref_zonal.py"), str(counties), str(lc), str(dem),
                         str(out / f"ref_{name}.gpkg"), "--id-field", "county_id"],
    }


def agreement(name: str, out: Path) -> str:
    import geopandas as gpd
    import numpy as np

    z = gpd.read_file(out / f"zoning_{name}.gpkg", layer="zones").set_index("county_id")
    r = gpd.read_file(out / f"ref_{name}.gpkg", layer="ref").set_index("county_id").loc[z.index]
    cols = [f"frac_{c}" for c in range(17)]
    valid = r[cols].sum(axis=1)
    built = r["frac_13"] / valid
    d = np.abs(built - z.built_up_share.fillna(0))
    return f"built-up share vs reference (plain frac, no cell-area weight): max |Δ| {d.max():.4f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenarios", nargs="+", default=["national", "sichuan_0.001", "sichuan_30m"])
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="zoning-bench-"))
    for s in a.scenarios:
        scenario(s)  # build data before timing
        for f in out.glob("*.gpkg"):
            f.unlink()
    rows = []
    for s in a.scenarios:
        reps = a.repeat if s != "sichuan_30m" else 1
        for peer, cmd in commands(s, out).items():
            res = []
            for _ in range(reps):
                (out / f"ref_{s}.gpkg").unlink(missing_ok=True)
                res.append(measure(cmd))
            rows.append((s, peer, statistics.median(r[0] for r in res), max(r[1] for r in res), reps))
            print(f"  {s:<15}{peer:<17}{rows[-1][2]:8.2f} s {rows[-1][3]:8.0f} MB", flush=True)
    print("\nClassification inputs per county (zoning: shares + terrain + classification + GeoPackage; reference: "
          "exactextract/WKB, 17 fractions + DEM mean + GeoPackage); 2 cores; ratio = zoning / reference")
    print(f"{'scenario':<16}{'peer':<17}{'median s':>10}{'peak MB':>10}{'ratio s':>9}{'ratio MB':>10}{'runs':>6}")
    for s in a.scenarios:
        ref = next(r for r in rows if r[0] == s and r[1] == "exactextract")
        for r in (r for r in rows if r[0] == s):
            print(f"{s:<16}{r[1]:<17}{r[2]:>10.2f}{r[3]:>10.0f}{r[2] / ref[2]:>9.2f}{r[3] / ref[3]:>10.2f}{r[4]:>6}")
        plain = next(r for r in rows if r[0] == s and r[1] == "zoning-no-census")
        full = next(r for r in rows if r[0] == s and r[1] == "zoning")
        print(f"  the built-in census costs {full[2] / plain[2] - 1:+.1%} time, {full[3] - plain[3]:+.0f} MB")
        print(f"  {agreement(s, out)}")
    if "national" in a.scenarios:
        import geopandas as gpd

        census = gpd.read_file(out / "zoning_national.gpkg", layer="zones")
        plain = gpd.read_file(out / "zoning_nc_national.gpkg", layer="zones")
        for title, z in (("MODIS + DEM + the built-in 2020 census", census), ("MODIS + DEM only, --no-census", plain)):
            tot = z.area_km2.sum()
            print(f"\nNational distribution of zones (default model, {title}) vs Fan (2015):")
            print(f"{'zone':<18}{'counties':>9}{'share':>8}{'Fan':>6}{'land':>8}{'Fan':>6}")
            for zone, (fu, fl) in FAN.items():
                sel = z[z.zone == zone]
                print(f"{zone:<18}{len(sel):>9}{len(sel) / len(z):>8.0%}{fu:>6.0%}{sel.area_km2.sum() / tot:>8.0%}"
                      f"{fl:>6.0%}")


if __name__ == "__main__":
    main()
