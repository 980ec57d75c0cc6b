"""What the year-on-year check costs: `zoning check --baseline B --previous P` against the single-epoch check, with
the earlier survey numbered afresh (as 卫片 batches are), so every earlier finding is recognised on the ground.

Usage: python benchmarks/bench_epochs.py [--n 200000] [--repeat 1]
The earlier survey is derived from the benchmark's synthetic parcels (``_data.parcels``): a third absent (new), a
third shrunk to 70 % of their width (expanded), a third as they are (existing), every id renumbered (``Y…``) and the
rows shuffled; the earlier run ``P`` is `zoning check` of that survey, with a verdict recorded in its ledger for
every parcel that had a finding. Both are cached beside the parcels. Each run
is a separate `zoning check` process; prints both side by side with the ratio (target ≤ 1.3, memory flat).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _data  # noqa: E402


def baseline(n: int) -> Path:
    """The earlier survey: renumbered, reordered, a third gone, a third smaller."""
    out = _data.CACHE / f"bench_baseline_renumbered_{n}.gpkg"
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
    keep = np.nonzero(kind != 0)[0]
    keep = np.random.default_rng(2023).permutation(keep)
    base = gpd.GeoDataFrame({"id": [f"Y{i:08d}" for i in range(len(keep))], "detected_on": "2023-06-30"},
                            geometry=geoms[keep], crs=cur.crs)
    base.to_file(out, layer="baseline", engine="pyogrio", use_arrow=True)
    return out


def previous(n: int) -> Path:
    """The earlier run: `zoning check` of the earlier survey against the same lines, with the auditor's verdict
    recorded on every parcel that had a finding (as a year of 卫片 follow-up leaves the ledger)."""
    out = _data.CACHE / f"bench_previous_recorded_{n}.gpkg"
    if out.exists():
        return out
    import geopandas as gpd
    import pyogrio

    lines = _data.control_lines()
    tmp = out.with_suffix(".tmp.gpkg")
    tmp.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "cli", "-q", "check", "--red-line", str(lines["red_line"]), "--farmland",
                    str(lines["farmland"]), "--urban-boundary", str(lines["urban_boundary"]), "--construction",
                    str(baseline(n)), "-o", str(tmp)], check=True, cwd=Path(__file__).resolve().parents[1])
    led = gpd.read_file(tmp, layer="parcels", engine="pyogrio", use_arrow=True)
    found = (led["worst_severity"] != "").to_numpy()
    kind = np.arange(len(led)) % 4
    led.loc[found, "verdict"] = np.where(kind[found] == 0, "合法", "违法")
    led.loc[found, "status"] = np.where(kind[found] == 3, "已整改", "整改中")
    led.loc[found, ["checked_by", "checked_on"]] = ["核查组", "2024-03-01"]
    pyogrio.write_dataframe(led, tmp, layer="parcels", use_arrow=True, layer_options={"OVERWRITE": "YES"})
    tmp.rename(out)
    return out


def main() -> None:
    _data.compare_main(("zoning check", []),
                       ("zoning check --baseline --previous",
                        lambda n: ["--baseline", str(baseline(n)), "--previous", str(previous(n))]),
                       "year-on-year / single epoch (target ≤ 1.30)", repeat=1)


if __name__ == "__main__":
    main()
