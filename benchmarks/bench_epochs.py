"""What the year-on-year check (issue 14) costs: `zoning check --baseline` against the single-epoch check.

Usage: python benchmarks/bench_epochs.py [--n 200000] [--repeat 1]
The baseline survey is derived from the benchmark's synthetic parcels (``_data.parcels``): a third absent (new),
a third shrunk to 70 % of their width (expanded), a third as they are (existing); it is cached beside them. Each run
is a separate `zoning check` process; prints both side by side with the ratio (target ≤ 1.3, memory flat).
"""
from __future__ import annotations

import sys
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


def main() -> None:
    _data.compare_main(("zoning check", []), ("zoning check --baseline", lambda n: ["--baseline", str(baseline(n))]),
                       "with the baseline / without (target ≤ 1.30)", repeat=1)


if __name__ == "__main__":
    main()
