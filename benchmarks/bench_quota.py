"""Quota mode benchmark: the national classification (2,875 counties, MODIS MCD12C1 + the national DEM + the
built-in census) without and with a quota file, each a whole process, side by side; the solver's own time from
the run record.

    python benchmarks/bench_quota.py [--repeat 3]

The quota: in every province, key ecological function areas hold at least 40 % of the land and urbanization
areas at most 20 % of it; no county alone of its zone among its neighbours; the 118 key ecological function
counties of benchmarks/reference/national_key_ecological_counties.csv locked as ecological.
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _data  # noqa: E402
import bench_classify  # noqa: E402

HERE = Path(__file__).resolve().parent
QUOTA = """lock = "locks.csv"
isolated = false

[[constraint]]
name = "ecological land ≥ 40 % in each province"
zone = "ecological"
measure = "land"
min = 0.40
group = "province"

[[constraint]]
name = "urbanization land ≤ 20 % in each province"
zone = "urbanization"
measure = "land"
max = 0.20
group = "province"
"""


def quota_file(out: Path, isolation: bool) -> Path:
    keys = pd.read_csv(HERE / "reference" / "national_key_ecological_counties.csv", dtype=str)
    pd.DataFrame({"county_id": keys["county_id"], "zone": "ecological"}).to_csv(out / "locks.csv", index=False)
    path = out / f"quota{'_iso' if isolation else ''}.toml"
    path.write_text(QUOTA if isolation else QUOTA.replace("isolated = false\n", ""), encoding="utf-8")
    return path


def record(gpkg: Path) -> dict:
    with sqlite3.connect(gpkg) as db:
        rows = dict(db.execute("SELECT key, value FROM zoning_run"))
    return json.loads(rows["quota"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="zoning-bench-"))
    counties, lc, dem = _data.national_counties(), _data.landcover(), _data.national_dem()
    base = [sys.executable, "-m", "cli", "-q", "classify", str(counties), "--raster", f"landcover={lc}", "--raster",
            f"dem={dem}", "--overwrite"]
    cmds = {"classify": base + ["-o", str(out / "plain.gpkg")],
            "--quota": base + ["--quota", str(quota_file(out, False)), "-o", str(out / "quota.gpkg")],
            "--quota, no lone county": base + ["--quota", str(quota_file(out, True)), "-o",
                                               str(out / "quota_iso.gpkg")]}
    rows = {}
    for name, cmd in cmds.items():
        res = [bench_classify.measure(cmd) for _ in range(a.repeat)]
        rows[name] = (statistics.median(r[0] for r in res), max(r[1] for r in res))
        print(f"  {name:<18}{rows[name][0]:8.2f} s {rows[name][1]:8.0f} MB", flush=True)
    print("\nNational classification without and with quotas (whole processes, medians, 2 cores)")
    print(f"{'command':<26}{'median s':>10}{'peak MB':>10}{'ratio s':>9}")
    for name, (s, mb) in rows.items():
        print(f"{name:<26}{s:>10.2f}{mb:>10.0f}{s / rows['classify'][0]:>9.2f}")
    for name, f in (("--quota", "quota.gpkg"), ("--quota, no lone county", "quota_iso.gpkg")):
        q = record(out / f)
        print(f"\n{name}: {q['solver']} {q['status']} in {q['seconds']:.2f} s (gap {q['gap']:g}); {q['moves']} moves, "
              f"total score difference {q['total_cost']:.2f}; {q['locked']} counties locked")
        for c in q["constraints"]:
            worst = min(c["achieved"].values()) if c["min"] is not None else max(c["achieved"].values())
            print(f"  {c['label']}: {'lowest' if c['min'] is not None else 'highest'} province {worst:.1%}")


if __name__ == "__main__":
    main()
