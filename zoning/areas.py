"""CRS choice and exact areas: the one module that decides how area is measured.

Areas are either ellipsoidal (geodesic, ``pyproj.Geod`` on the GRS80 ellipsoid that CGCS2000 uses — the official
convention for survey parcels) or planar in an equal-area projection (China Albers by default). Never in degrees.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import shapely
from pyproj import CRS, Geod, Transformer

SQM_PER_MU = 10000.0 / 15.0  # 1 亩 = 666.67 m²
SQM_PER_HA = 10000.0
CGCS2000 = CRS.from_epsg(4490)
CHINA_ALBERS = CRS.from_proj4("+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +lat_0=0 +ellps=GRS80 +units=m +no_defs")
GEOD = Geod(ellps="GRS80")
AREA_METHODS = ("geodesic", "albers")


def gk_zone_crs(lon: float) -> CRS:
    """The CGCS2000 3-degree Gauss-Krüger zone CRS (EPSG:4534-4554, no zone prefix) for a longitude.

    Zone *n* has central meridian 3·n; China spans zones 25 (75°E) to 45 (135°E).
    """
    zone = int(round(lon / 3.0))
    if not 25 <= zone <= 45:
        raise ValueError(f"longitude {lon:.3f} lies outside China's 3-degree GK zones (75°E-135°E)")
    return CRS.from_epsg(4534 + zone - 25)


def transformer(src, dst) -> Transformer:
    """A lon/lat-ordered transformer (``always_xy=True``) between two CRSs (cached: building one costs ~10 ms)."""
    return _transformer(CRS.from_user_input(src).to_wkt(), CRS.from_user_input(dst).to_wkt())


@functools.lru_cache(maxsize=64)
def _transformer(src_wkt: str, dst_wkt: str) -> Transformer:
    return Transformer.from_crs(CRS.from_wkt(src_wkt), CRS.from_wkt(dst_wkt), always_xy=True)


def to_crs(geoms: np.ndarray, src, dst) -> np.ndarray:
    """Transform a shapely geometry array between CRSs (vectorised)."""
    src, dst = CRS.from_user_input(src), CRS.from_user_input(dst)
    if src == dst:
        return np.asarray(geoms)
    t = transformer(src, dst)
    if t.definition.split()[0] == "proj=noop":  # e.g. CGCS2000 → WGS84 lon/lat: the same numbers
        return np.asarray(geoms)
    return shapely.transform(np.asarray(geoms), lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def geodesic_area(geoms: np.ndarray, crs) -> np.ndarray:
    """Ellipsoidal area in m² of each geometry (GRS80), whatever the input CRS.

    Geodesic edges between vertices; holes subtract; empty or missing geometries give 0.
    """
    geoms = to_crs(np.asarray(geoms, dtype=object), crs, CGCS2000)
    out = np.zeros(len(geoms))
    # Geod works ring by ring; the loop is over rings via pyproj's C code per geometry.
    for i, g in enumerate(geoms):
        if g is not None and not g.is_empty:
            out[i] = abs(GEOD.geometry_area_perimeter(g)[0])
    return out


def planar_area(geoms: np.ndarray, crs, area_crs=CHINA_ALBERS) -> np.ndarray:
    """Planar area in m² after projecting to an equal-area CRS (China Albers by default), vectorised."""
    projected = to_crs(np.asarray(geoms, dtype=object), crs, area_crs)
    return np.nan_to_num(shapely.area(projected), nan=0.0)


def equal_area_crs(geoms: np.ndarray, crs) -> CRS:
    """An Albers equal-area CRS on GRS80 fitted to the geometries' extent (standard parallels at 1/6 and 5/6)."""
    lon0, lat0, lon1, lat1 = shapely.total_bounds(to_crs(np.asarray(geoms, dtype=object), crs, CGCS2000))
    if not np.isfinite([lon0, lat0, lon1, lat1]).all():
        return CHINA_ALBERS
    d = (lat1 - lat0) / 6.0
    return CRS.from_proj4(f"+proj=aea +lat_1={lat0 + d:.6f} +lat_2={lat1 - d:.6f} +lat_0={(lat0 + lat1) / 2:.6f} "
                          f"+lon_0={(lon0 + lon1) / 2:.6f} +ellps=GRS80 +units=m +no_defs")


def fast_area(geoms: np.ndarray, crs, band_deg: float = 3.0) -> np.ndarray:
    """Ellipsoidal area in m², vectorised: planar area in equal-area projections fitted to bands of the data.

    Albers on GRS80 preserves ellipsoidal area exactly; the only difference from :func:`geodesic_area` is the
    course of each edge (straight in the projection rather than geodesic), which grows with the distance from the
    central meridian. Geometries are therefore grouped in ``band_deg`` longitude bands, each with its own Albers:
    within 1e-4 of the geodesic area for county boundaries, a few times faster.
    """
    geoms = np.asarray(geoms, dtype=object)
    lonlat = to_crs(geoms, crs, CGCS2000)
    x = shapely.get_x(shapely.centroid(lonlat))
    band = np.floor(np.nan_to_num(x) / band_deg).astype(int)
    out = np.zeros(len(geoms))
    for b in np.unique(band):  # a dozen bands for the whole of China
        sel = band == b
        out[sel] = planar_area(lonlat[sel], CGCS2000, equal_area_crs(lonlat[sel], CGCS2000))
    return out


def area_m2(geoms: np.ndarray, crs, method: str = "geodesic") -> np.ndarray:
    """Area in m² by ``method``: ``"geodesic"`` (ellipsoidal) or ``"albers"`` (China Albers equal-area)."""
    if method == "geodesic":
        return geodesic_area(geoms, crs)
    if method == "albers":
        return planar_area(geoms, crs)
    raise ValueError(f"unknown area method {method!r}; use one of {', '.join(AREA_METHODS)}")


def units(area_m2: np.ndarray) -> dict[str, np.ndarray]:
    """The same areas in m², hectares (公顷) and mu (亩)."""
    a = np.asarray(area_m2, dtype=float)
    return {"area_m2": a, "area_ha": a / SQM_PER_HA, "area_mu": a / SQM_PER_MU}


def geodesic_cell_areas(top: float, res_y: float, nrows: int, res_x: float) -> np.ndarray:
    """Ellipsoidal area in m² of one cell of a lon/lat grid, per row (north to south).

    Exact for the GRS80 ellipsoid: the area of a band between two latitudes, times the cell's share of 360°.
    """
    lats = top - res_y * np.arange(nrows + 1)
    lats = np.clip(lats, -90.0, 90.0)
    a, f = GEOD.a, GEOD.f
    e2 = f * (2 - f)
    e = math.sqrt(e2)
    s = np.sin(np.radians(lats))
    # q(φ) from Snyder (1987) eq. 3-12: the authalic function; band area = π a² (1-e²) |Δq| / 360° × Δλ
    q = (1 - e2) * (s / (1 - e2 * s**2) - (1 / (2 * e)) * np.log((1 - e * s) / (1 + e * s)))
    band = 0.5 * math.pi * a * a * np.abs(np.diff(q))  # half: q spans 2 over the hemisphere
    return band * (abs(res_x) / 180.0)


def cell_sizes_m(top: float, res_y: float, nrows: int, res_x: float) -> tuple[np.ndarray, np.ndarray]:
    """Width and height in metres of the cells of each row of a lon/lat grid on GRS80 (row centres).

    Width = N(φ)·cos φ·Δλ, height = M(φ)·Δφ, with N and M the prime-vertical and meridional radii of curvature.
    """
    a, f = 6378137.0, 1 / 298.257222101
    e2 = f * (2 - f)
    lat = np.radians(top - (np.arange(nrows) + 0.5) * abs(res_y))
    w = np.sqrt(1 - e2 * np.sin(lat) ** 2)
    n_rad, m_rad = a / w, a * (1 - e2) / w**3
    return n_rad * np.cos(lat) * np.radians(abs(res_x)), m_rad * np.radians(abs(res_y))


def largest_remainder(values: np.ndarray, decimals: int = 2, total: float | None = None) -> np.ndarray:
    """Round ``values`` so that the rounded parts add up to the rounded total (largest-remainder method).

    Parameters
    ----------
    values : array of floats (non-negative)
    decimals : decimal places to keep
    total : the total the parts must reconcile with; default the sum of ``values``
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return v
    scale = 10.0**decimals
    target = round((v.sum() if total is None else total) * scale)
    scaled = v * scale
    floors = np.floor(scaled)
    short = int(target - floors.sum())
    order = np.argsort(-(scaled - floors), kind="stable")
    if short > 0:
        floors[order[:short]] += 1
    elif short < 0:
        floors[order[::-1][: -short]] -= 1
    return floors / scale
