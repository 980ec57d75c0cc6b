"""Build ``baseline.gpkg``: a SYNTHETIC earlier survey (2023) of the sample's construction parcels, for the
year-on-year check (``zoning check --baseline``, ``baseline =`` in project.toml).

Seeded and derived from ``construction.gpkg`` only: of the 2024 parcels, 45 % were already there in 2023 as they
are (→ ``existing`` findings), 25 % were smaller (scaled to 60 % of their width around the centroid, → ``expanded``),
30 % did not exist (→ ``new``); 150 parcels of 2023 were demolished since (absent in 2024). Run from the repository:
``python sample_data/make_baseline.py``.
"""
from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

HERE = Path(__file__).parent
ALBERS = "+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +ellps=GRS80 +units=m +no_defs"
SEED = 2023


def main() -> None:
    rng = np.random.default_rng(SEED)
    cur = gpd.read_file(HERE / "construction.gpkg")
    alb = cur.to_crs(ALBERS)
    kind = rng.choice(["existing", "smaller", "absent"], size=len(cur), p=[0.45, 0.25, 0.30])
    geoms = alb.geometry.values.copy()
    small = kind == "smaller"
    cen = shapely.centroid(geoms[small])
    geoms[small] = [shapely.affinity.scale(g, 0.6, 0.6, origin=c) for g, c in zip(geoms[small], cen)]
    keep = kind != "absent"
    base = gpd.GeoDataFrame({"id": np.char.replace(cur["id"].to_numpy(dtype=str)[keep], "WP2024", "WP2023"),
                             "detected_on": "2023-06-30", "seed_kind": kind[keep]},
                            geometry=geoms[keep], crs=ALBERS)
    # demolished since: copies of parcels of 2023 moved 3 km east, where 2024 has nothing
    gone = rng.choice(np.nonzero(keep)[0], 150, replace=False)
    moved = shapely.affinity.translate  # noqa: E731 - one call per parcel is fine for 150 sample parcels
    demo = gpd.GeoDataFrame({"id": [f"WP2023D{i:05d}" for i in range(len(gone))], "detected_on": "2023-06-30",
                             "seed_kind": "demolished"},
                            geometry=[moved(g, 3000.0, 0.0) for g in alb.geometry.values[gone]], crs=ALBERS)
    out = gpd.GeoDataFrame(gpd.pd.concat([base, demo], ignore_index=True), crs=ALBERS).to_crs(cur.crs)
    path = HERE / "baseline.gpkg"
    path.unlink(missing_ok=True)
    out.to_file(path, layer="baseline", driver="GPKG")
    print(f"wrote {path}: {len(out)} parcels ({', '.join(f'{k} {v}' for k, v in out['seed_kind'].value_counts().items())})")


if __name__ == "__main__":
    main()
