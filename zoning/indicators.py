"""County indicators from rasters (coverage-weighted, true cell areas) and from officer-supplied attributes."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import shapely
from affine import Affine

from . import areas, legends
from .areas import cell_sizes_m
from .coverage import Coverage
from .legends import GROUPS

# land-cover groups (see zoning.legends: every legend's codes are mapped to these before use)
BUILT_UP, CROPLAND, MOSAIC = GROUPS["built_up"], GROUPS["cropland"], GROUPS["mosaic"]
NATURAL, WATER, BARREN = (GROUPS["natural"],), (GROUPS["water"],), GROUPS["barren"]
# Below this share of a county's area with valid raster cells, its raster indicators are treated as missing.
MIN_VALID_SHARE = 0.5

ADMIN_TYPES = ("DISTRICT", "CITY", "COUNTY", "FOREST")


def _wsum(cov: Coverage, weights: np.ndarray) -> np.ndarray:
    return np.bincount(cov.feature, weights=weights, minlength=cov.n)


def _valid_weights(cov: Coverage, grid: np.ndarray):
    """Values under each entry, their weights with nodata set to 0, and per-polygon valid and total weight."""
    v = cov.values(grid)
    valid = ~np.isnan(v)
    w = cov.weight
    wv = np.where(valid, w, 0.0)
    return v, valid, wv, _wsum(cov, wv), _wsum(cov, w)


def _group_shares(wsum, grp: np.ndarray, valid: np.ndarray, total: np.ndarray, cells: np.ndarray) -> pd.DataFrame:
    """The land-cover share table from a weighted-sum function over entries whose group codes are ``grp``."""
    denom = wsum(valid)
    with np.errstate(invalid="ignore", divide="ignore"):
        def share(mask):
            return wsum(mask) / denom

        out = pd.DataFrame({
            "built_up_share": share(grp == BUILT_UP),
            "cropland_share": share((grp == CROPLAND) + 0.5 * (grp == MOSAIC)),
            "ecological_share": share(np.isin(grp, NATURAL + WATER) + 0.5 * (grp == MOSAIC)),
            "barren_share": share(grp == BARREN),
            "water_share": share(np.isin(grp, WATER)),
            "landcover_valid_share": denom / total,
        })
    out["landcover_cells"] = cells
    low = ~(out["landcover_valid_share"] >= MIN_VALID_SHARE)
    out.loc[low, ["built_up_share", "cropland_share", "ecological_share", "barren_share", "water_share"]] = np.nan
    return out


def landcover_shares(cov: Coverage, classes: np.ndarray) -> pd.DataFrame:
    """Area shares of land-cover groups per polygon (``classes`` holds :data:`zoning.legends.GROUPS` codes).

    Shares are fractions of the polygon's area that falls on valid (non-nodata) cells, each cell weighted by its
    covered fraction and its true area. Mosaic (IGBP 14) counts half as cropland and half as ecological land, so
    ``built_up + cropland + ecological + barren = 1``.

    Returns
    -------
    DataFrame with ``built_up_share``, ``cropland_share``, ``ecological_share``, ``barren_share``,
    ``water_share``, ``landcover_valid_share`` (valid area ÷ covered area) and ``landcover_cells``.
    """
    v, valid, wv, denom, total = _valid_weights(cov, classes)
    return _group_shares(lambda mask: _wsum(cov, wv * mask), v, valid, total, cov.cells_covered())


def shares_from_fractions(codes: list[np.ndarray], fracs: list[np.ndarray], cells: np.ndarray,
                          legend: legends.Legend) -> pd.DataFrame:
    """Land-cover shares per polygon from its codes and their true-area fractions (as exactextract's
    ``unique`` + ``weighted_frac`` give them, nodata included as the raster's nodata code).

    The same indicator as :func:`landcover_shares`, computed from per-polygon class fractions instead of cells.
    """
    n = len(codes)
    feat = np.repeat(np.arange(n), [len(c) for c in codes]).astype(np.int64)
    frac = np.concatenate(fracs) if n else np.zeros(0)
    grp = legends.group_of(np.concatenate(codes) if n else np.zeros(0), legend)

    def wsum(mask):
        return np.bincount(feat, weights=frac * mask, minlength=n)

    return _group_shares(wsum, grp, ~np.isnan(grp), np.maximum(wsum(np.ones(len(frac))), 1e-300), cells)


def terrain_from_blocks(geoms: np.ndarray, blocks, crs, steep_relief_m: float = 500.0,
                        on_block=None) -> tuple[pd.DataFrame, str]:
    """Terrain indicators per polygon from DEM blocks that carry a halo (never the whole grid at once).

    Parameters
    ----------
    geoms : polygons in the DEM's CRS
    blocks : iterable of (elevation in metres with NaN for nodata, transform of the block's top-left cell incl.
        halo, halo cells); relief and slope use the halo, statistics only the block's own cells
    crs : the DEM's pyproj CRS
    on_block : called after each block (progress)

    Returns
    -------
    the same table as :func:`terrain`, and the method used for ``steep_share``
    """
    from shapely import STRtree, box

    n, geographic = len(geoms), crs.is_geographic
    sums = np.zeros((5, n))  # valid weight, elevation, relief, steep, total weight
    cells = np.zeros(n)
    tree = STRtree(geoms)
    method = None
    for data, tr, halo in blocks:
        h, w = data.shape[0] - 2 * halo, data.shape[1] - 2 * halo
        inner = tr @ Affine.translation(halo, halo)
        bb = box(inner.c, inner.f + inner.e * h, inner.c + inner.a * w, inner.f)
        sel = tree.query(bb, predicate="intersects")
        if on_block:
            on_block()
        if len(sel) == 0 or not np.isfinite(data).any():
            continue
        cell_m = abs(tr.a) * 111_320.0 if geographic else abs(tr.a)
        if geographic:
            dx, dy = cell_sizes_m(tr.f, abs(tr.e), data.shape[0], tr.a)
            dy = float(np.mean(dy))
        else:
            dx, dy = abs(tr.a), abs(tr.e)
        rel = _window_relief(data)
        if cell_m <= 100:
            steep = _slope_deg(data, dx if np.ndim(dx) == 0 else np.asarray(dx)[:, None], dy) > 25
            method = "slope>25°"
        else:
            steep = rel > steep_relief_m
            method = f"relief>{steep_relief_m:g}m"
        crop = (slice(halo, halo + h), slice(halo, halo + w))
        dem, rel, steep = data[crop], rel[crop], steep[crop]
        valid = np.isfinite(dem)
        layers = {"valid": valid.astype(float), "elev": np.where(valid, dem, 0.0),
                  "relief": np.where(valid, np.nan_to_num(rel), 0.0), "steep": (valid & steep).astype(float),
                  "all": np.ones((h, w))}
        r = block_sums(geoms[sel], layers, inner, (h, w), crs, geographic)
        for k, name in enumerate(["valid", "elev", "relief", "steep", "all"]):
            sums[k, sel] += r[name]
        cells[sel] += r["cells"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = pd.DataFrame({"elevation_mean": sums[1] / sums[0], "relief": sums[2] / sums[0],
                            "steep_share": sums[3] / sums[0], "dem_valid_share": sums[0] / sums[4]})
    out["dem_cells"] = cells
    low = ~(out["dem_valid_share"] >= MIN_VALID_SHARE)
    out.loc[low, ["elevation_mean", "relief", "steep_share"]] = np.nan
    return out, method or f"relief>{steep_relief_m:g}m"


def block_sums(geoms: np.ndarray, layers: dict[str, np.ndarray], transform: Affine, shape, crs,
               geographic: bool) -> dict[str, np.ndarray]:
    """Per polygon, Σ coverage × true cell area × value over one block, for each array in ``layers`` (exactextract's
    native ``weighted_sum``; the weights are one column of row areas), and the coverage-weighted cell count."""
    from exactextract import exact_extract
    from exactextract.raster import NumPyRasterSource
    from shapely import to_wkb

    from .areas import geodesic_cell_areas
    from .coverage import WkbSource

    h, w = shape
    xmin, ymax = transform.c, transform.f
    xmax, ymin = xmin + transform.a * w, ymax + transform.e * h
    wkt = crs.to_wkt()
    rows = geodesic_cell_areas(ymax, abs(transform.e), h, transform.a) if geographic else \
        np.full(h, abs(transform.a * transform.e))
    srcs = [NumPyRasterSource(np.ascontiguousarray(a, dtype=float), xmin, ymin, xmax, ymax, name=n, srs_wkt=wkt)
            for n, a in layers.items()]
    wts = NumPyRasterSource(rows[:, None].astype(float), xmin, ymin, xmax, ymax, name="w", srs_wkt=wkt)
    r = exact_extract(srcs, WkbSource(to_wkb(np.asarray(geoms)).tolist(), wkt), ["weighted_sum", "count"],
                      weights=wts, include_cols=["idx"], output="pandas").sort_values("idx")
    out = {n: r[f"{n}_w_weighted_sum"].to_numpy(dtype=float) for n in layers}
    out["cells"] = r[f"{next(iter(layers))}_count"].to_numpy(dtype=float)
    return out


def _window_relief(dem: np.ndarray) -> np.ndarray:
    """Max − min elevation in each cell's 3×3 neighbourhood (NaN-aware)."""
    padded = np.pad(dem, 1, constant_values=np.nan)
    h, w = dem.shape
    stack = np.stack([padded[i:i + h, j:j + w] for i in range(3) for j in range(3)])
    with warnings.catch_warnings():  # windows of nodata only stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        rel = np.nanmax(stack, axis=0) - np.nanmin(stack, axis=0)
    return np.where(np.isnan(dem), np.nan, rel)


def _slope_deg(dem: np.ndarray, dx: np.ndarray | float, dy: float) -> np.ndarray:
    gy, gx = np.gradient(dem, dy, axis=0), np.gradient(dem, axis=1) / dx
    return np.degrees(np.arctan(np.hypot(gx, gy)))


def terrain(cov: Coverage, dem: np.ndarray, cell_size_m: float, dx_m: np.ndarray | float | None = None,
            dy_m: float | None = None, steep_relief_m: float = 500.0) -> tuple[pd.DataFrame, str]:
    """Elevation and relief indicators per polygon.

    Parameters
    ----------
    cov : coverage of the polygons over the DEM grid
    dem : elevation in metres, NaN for nodata
    cell_size_m : nominal cell size; above 100 m slope is meaningless and the coarse-DEM fallback is used
    dx_m, dy_m : cell width per row (array) and height in metres, for slope on fine DEMs
    steep_relief_m : coarse fallback: a cell counts as steep when its 3×3 relief exceeds this

    Returns
    -------
    (DataFrame with ``elevation_mean``, ``relief``, ``steep_share``, ``dem_valid_share``, ``dem_cells``;
     the method used for ``steep_share``: ``"slope>25°"`` or ``"relief>500m"``)
    """
    v, valid, wv, denom, total = _valid_weights(cov, dem)
    rel = _window_relief(dem)
    if cell_size_m <= 100 and dx_m is not None and dy_m is not None:
        # padded with nodata like a block's halo beyond the raster: edge cells get no one-sided slope
        pad = np.pad(dem, 1, constant_values=np.nan)
        dxp = dx_m if np.ndim(dx_m) == 0 else np.pad(np.asarray(dx_m, dtype=float), 1, mode="edge")[:, None]
        steep = (_slope_deg(pad, dxp, dy_m) > 25)[1:-1, 1:-1]
        method = "slope>25°"
    else:
        steep = rel > steep_relief_m
        method = f"relief>{steep_relief_m:g}m"
    with np.errstate(invalid="ignore", divide="ignore"):
        out = pd.DataFrame({
            "elevation_mean": _wsum(cov, np.where(valid, v, 0.0) * wv) / denom,
            "relief": _wsum(cov, np.nan_to_num(cov.values(rel)) * wv) / denom,
            "steep_share": _wsum(cov, cov.values(steep).astype(float) * wv) / denom,
            "dem_valid_share": denom / total,
        })
    out["dem_cells"] = cov.cells_covered()
    low = ~(out["dem_valid_share"] >= MIN_VALID_SHARE)
    out.loc[low, ["elevation_mean", "relief", "steep_share"]] = np.nan
    return out, method


def admin_type(names: pd.Series) -> pd.Series:
    """Administrative type from the Chinese name suffix.

    区 → DISTRICT (but 林区 → FOREST, 特区 → COUNTY); 市 → CITY; 县, 自治县, 旗, 自治旗 → COUNTY; else COUNTY.
    """
    s = names.fillna("").astype(str).str.strip()
    out = pd.Series("COUNTY", index=names.index, dtype=object)
    out[s.str.endswith("区")] = "DISTRICT"
    out[s.str.endswith("林区")] = "FOREST"
    out[s.str.endswith("特区")] = "COUNTY"
    out[s.str.endswith("市")] = "CITY"
    return out


def city_distance_km(points: np.ndarray, cities: np.ndarray) -> np.ndarray:
    """Geodesic distance (km) from each county to the nearest central-city polygon (区位 location).

    ``points``: each county's representative point, ``cities``: the central-city polygons (a county inside one
    gets 0), both in China Albers; NaN for every county when there is no central city in the study area.
    """
    from pyproj import Geod

    points = np.asarray(points, dtype=object)
    out = np.full(len(points), np.nan)
    cities = np.asarray(cities, dtype=object)
    if len(cities) == 0 or len(points) == 0:
        return out
    tree = shapely.STRtree(cities)
    ip, ic = tree.query_nearest(points, all_matches=False)
    line = shapely.shortest_line(points[ip], cities[ic])
    ends = areas.to_crs(np.concatenate([shapely.get_point(line, 0), shapely.get_point(line, 1)]),
                        areas.CHINA_ALBERS, areas.CGCS2000)
    a, b = ends[: len(ip)], ends[len(ip):]
    _, _, dist = Geod(ellps="GRS80").inv(shapely.get_x(a), shapely.get_y(a), shapely.get_x(b), shapely.get_y(b))
    out[ip] = dist / 1000.0
    return out


ATTRIBUTE_COLUMNS = {
    "pop_density": "persons per km²",
    "population": "persons (pop_density is derived from it and the county area)",
    "gdp_per_capita": "yuan per person",
    "gdp": "yuan (gdp_per_capita is derived from it and population)",
    "grain_output": "tonnes per year",
    "urbanization_rate": "percent of residents in towns",
    "agri_employment_share": "percent of the employed working in farming, forestry, animal husbandry and fishery",
    "ageing_share": "percent of residents aged 65 and over",
    "paddy_share": "percent of cultivated land that is paddy (水田): zoning compensate",
    "fiscal_gap": "yuan, the standard fiscal gap (标准财政收支缺口, negative for a surplus): zoning compensate",
}


PERCENT_COLUMNS = ("urbanization_rate", "agri_employment_share", "ageing_share", "paddy_share")
SIGNED_COLUMNS = ("fiscal_gap",)


def out_of_range(table: pd.DataFrame) -> list[str]:
    """Statistics no county can have, one line each naming the row (``_row``, its number in the file), the column
    and the value: counts and densities below 0, percentages outside 0–100, and a percentage column whose values
    are all fractions (0.45 for 45 %: read as 0.45 % they would be silently wrong)."""
    bad = []
    for col in ATTRIBUTE_COLUMNS:
        if col not in table.columns:
            continue
        v = pd.to_numeric(table[col], errors="coerce")
        hi = 100.0 if col in PERCENT_COLUMNS else np.inf
        wrong = ((v < 0) & (col not in SIGNED_COLUMNS)) | (v > hi)
        rows = table["_row"][wrong] if "_row" in table.columns else table.index[wrong]
        bad += [f"row {r}: {col} = {x:g} ({'a percentage, 0 to 100' if col in PERCENT_COLUMNS else 'must be ≥ 0'})"
                for r, x in zip(rows, v[wrong])]
        if col in PERCENT_COLUMNS and v.notna().sum() >= 3 and v.max() <= 1.0:
            bad.append(f"column {col}: every value is between 0 and 1 (fractions?); write percentages, 45 for 45 %")
    return bad


def attribute_indicators(table: pd.DataFrame, area_km2: pd.Series, national_gdp_per_capita: float) -> pd.DataFrame:
    """Indicators from an officer-supplied table aligned to the counties (NaN where not given).

    Returns ``pop_density``, ``gdp_per_capita_ratio`` (÷ national mean), ``grain_ratio`` (grain output per km² ÷ the
    median over the counties given, a relative measure), ``urbanization_rate``, ``agri_employment_share`` and
    ``ageing_share`` (percent).
    """
    def num(col):
        if col not in table.columns:
            return pd.Series(np.nan, index=table.index)
        return pd.to_numeric(table[col], errors="coerce")

    popd = num("pop_density")
    popd = popd.fillna(num("population") / area_km2)
    gdppc = num("gdp_per_capita").fillna(num("gdp") / num("population"))
    grain_density = num("grain_output") / area_km2
    med = grain_density.median()
    return pd.DataFrame({
        "pop_density": popd,
        "gdp_per_capita_ratio": gdppc / national_gdp_per_capita,
        "grain_ratio": grain_density / med if med and np.isfinite(med) else grain_density * np.nan,
        "urbanization_rate": num("urbanization_rate"),
        "agri_employment_share": num("agri_employment_share"),
        "ageing_share": num("ageing_share"),
    }, index=table.index)


def per_km2(total: np.ndarray, area_km2: np.ndarray) -> np.ndarray:
    """A county total (people, summed radiance) per km²; NaN where the county has no data, so the model
    renormalises and records it as missing."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(total, dtype=float) / np.asarray(area_km2, dtype=float)


def combine_sources(sources: list[tuple[str, pd.Series]]) -> tuple[pd.Series, pd.Series]:
    """The first source with a value, per county, and which source it was (statistics before rasters before
    points: the officer's own table is the authority)."""
    value = pd.Series(np.nan, index=sources[0][1].index) if sources else pd.Series(dtype=float)
    origin = pd.Series("", index=value.index, dtype=object)
    for name, s in sources:
        take = value.isna() & s.notna()
        value[take] = s[take]
        origin[take] = name
    return value, origin


def sum_points(polygons: np.ndarray, points: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Sum of ``values`` of the points inside each polygon (a point on a shared border counts once)."""
    from shapely import STRtree

    out = np.zeros(len(polygons))
    if len(points) == 0:
        return out
    ip, ic = STRtree(polygons).query(points, predicate="intersects")
    first = np.unique(ip, return_index=True)[1]
    v = np.nan_to_num(np.asarray(values, dtype=float)[ip[first]])
    np.add.at(out, ic[first], v)
    return out
