"""Validate and repair polygon layers before any computation (pure: GeoDataFrame in, GeoDataFrame out)."""
from __future__ import annotations

import difflib
import logging
from concurrent.futures import ThreadPoolExecutor

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from .errors import DataError

log = logging.getLogger("zoning")
POLYGONAL = ("Polygon", "MultiPolygon")


def _src(gdf: gpd.GeoDataFrame, role: str) -> str:
    return f"{role} layer {gdf.attrs.get('source', '')}".rstrip()


def _ids_text(ids, limit: int = 10) -> str:
    ids = [str(i) for i in ids]
    more = f" … and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


def require_field(gdf: pd.DataFrame, field: str, role: str, flag: str = "--id-field") -> None:
    """Raise a DataError naming the missing field, the fields that exist and the nearest name."""
    if field in gdf.columns:
        return
    fields = [c for c in gdf.columns if c != getattr(gdf, "_geometry_column_name", "geometry")]
    near = difflib.get_close_matches(field, fields, n=1, cutoff=0.5)
    hint = f" Did you mean {near[0]!r}?" if near else ""
    raise DataError(f"{_src(gdf, role)}: no field {field!r}. Fields present: {', '.join(map(str, fields)) or '(none)'}."
                    f"{hint} Name the right one with {flag}.")


def pick_field(gdf: pd.DataFrame, explicit: str | None, candidates: tuple[str, ...], role: str,
               flag: str) -> str | None:
    """The explicit field (which must exist) or the first candidate present, else None."""
    if explicit:
        require_field(gdf, explicit, role, flag)
        return explicit
    for c in candidates:
        if c in gdf.columns:
            return c
    return None


def ensure_crs(gdf: gpd.GeoDataFrame, role: str, assume_crs: str | None = None) -> gpd.GeoDataFrame:
    """Give the layer a CRS (error if it has none and none is assumed) and check lon/lat plausibility."""
    if gdf.crs is None:
        if not assume_crs:
            raise DataError(f"{_src(gdf, role)} has no CRS (no .prj or SRS). Set it with --crs, e.g. --crs EPSG:4490 "
                            "for CGCS2000 longitude/latitude.")
        gdf = gdf.set_crs(CRS.from_user_input(assume_crs))
        log.info("%s: no CRS in the file, using %s (--crs)", _src(gdf, role), assume_crs)
    coords = shapely.get_coordinates(gdf.geometry.values)
    if not len(coords):
        return gdf
    # the extremes only (NaN and infinity carry into them): two passes, no array the size of the coordinates
    (x0, y0), (x1, y1) = coords.min(axis=0), coords.max(axis=0)
    if not np.isfinite([x0, y0, x1, y1]).all():
        bad = np.unique(shapely.get_coordinates(gdf.geometry.values, return_index=True)[1][
            ~np.isfinite(coords).all(axis=1)])
        raise DataError(f"{_src(gdf, role)}: features {_ids_text(gdf.index[bad])} have NaN or infinite coordinates. "
                        "Fix or delete them in the source data.")
    if gdf.crs.is_geographic:
        if max(abs(y0), abs(y1)) > 90 and max(abs(x0), abs(x1)) <= 90:
            raise DataError(f"{_src(gdf, role)}: coordinates look like latitude and longitude swapped "
                            f"(x spans {x0:.2f}…{x1:.2f}, y spans {y0:.2f}…{y1:.2f}). "
                            "Write the layer with longitude as x (e.g. ogr2ogr -oo … or swap the columns).")
        if max(abs(x0), abs(x1)) > 360 or max(abs(y0), abs(y1)) > 90:
            raise DataError(f"{_src(gdf, role)}: coordinates out of range for {gdf.crs.to_string()} "
                            f"(x {x0:.6g}…{x1:.6g}, y {y0:.6g}…{y1:.6g}). The file's CRS is "
                            "probably wrong: projected metres labelled as degrees? Set the right one with --crs.")
    return gdf


_VALIDITY = ThreadPoolExecutor(max_workers=2, thread_name_prefix="zoning-valid")


def is_valid(geoms: np.ndarray) -> np.ndarray:
    """``shapely.is_valid``, in two halves on two threads when there are many vertices (GEOS releases the GIL):
    the validity of 2,875 county outlines is a tenth of a national classification."""
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) < 2 or shapely.get_num_coordinates(geoms).sum() < 1_000_000:
        return shapely.is_valid(geoms)
    half = len(geoms) // 2
    first = _VALIDITY.submit(shapely.is_valid, geoms[:half])
    second = shapely.is_valid(geoms[half:])
    return np.concatenate([first.result(), second])


def _polygonal_part(g):
    if g is None or g.is_empty:
        return g
    if g.geom_type in POLYGONAL:
        return g
    parts = [p for p in shapely.get_parts(g) if p.geom_type in POLYGONAL]
    if not parts:
        return shapely.Polygon()
    return shapely.union_all(parts)


def feature_ids(gdf: pd.DataFrame, role: str, id_field: str | None, require_id: bool = False) -> pd.Series:
    """Each feature's id as text: ``id_field`` (present, never empty, unique), else the feature index."""
    if id_field is not None:
        require_field(gdf, id_field, role)
        raw = gdf[id_field]
        missing = raw.isna() | (raw.astype(str).str.strip() == "")
        if missing.any():
            # the index is the feature's position in the layer (also for a chunk or a part of it)
            rows = list((gdf.index.to_numpy()[missing.to_numpy()] + 1) if gdf.index.dtype.kind in "iu"
                        else np.nonzero(missing.to_numpy())[0] + 1)
            raise DataError(f"{_src(gdf, role)}: field {id_field!r} is empty in {missing.sum()} feature(s) "
                            f"(rows {_ids_text(rows)}). Every feature needs an id.")
        # 510104.0 from a numeric column must become "510104", not "510104.0"
        ids = raw.map(_id_text) if raw.dtype.kind == "f" else raw.astype(str).str.strip()
    elif require_id:
        raise DataError(f"{_src(gdf, role)}: no id field. Name one with --id-field.")
    else:
        ids = pd.Series([str(i) for i in gdf.index], index=gdf.index)
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        raise DataError(f"{_src(gdf, role)}: duplicate ids in field {id_field or '(feature index)'!r}: "
                        f"{_ids_text(sorted(set(dup)))}. Ids must be unique.")
    return ids


def clean_polygons(gdf: gpd.GeoDataFrame, role: str, id_field: str | None,
                   require_id: bool = False) -> tuple[gpd.GeoDataFrame, dict]:
    """Repair, filter and identify polygon features.

    - geometries that are not polygonal (points, lines) are refused with the type found;
    - invalid geometries are repaired with ``make_valid``, keeping their polygonal part, and counted;
    - empty geometries are dropped and counted;
    - ids must be present and unique (``id_field``); without one the feature index is used.

    Returns
    -------
    (cleaned GeoDataFrame with a string column ``_id``, report dict with counts and repaired ids)
    """
    report = {"features_in": int(len(gdf)), "repaired": 0, "repaired_ids": [], "dropped_empty": 0}
    ids = feature_ids(gdf, role, id_field, require_id)
    gdf = gdf.copy()
    gdf["_id"] = ids.to_numpy()
    geoms = gdf.geometry.values
    none = shapely.is_missing(geoms)
    types = shapely.get_type_id(geoms)
    # 3 Polygon, 6 MultiPolygon, 7 GeometryCollection (may hold polygons); -1 missing
    bad_type = ~none & ~np.isin(types, (3, 6, 7))
    if bad_type.any():
        found = sorted(set(shapely.get_type_id(geoms[bad_type]).tolist()))
        names = {0: "Point", 1: "LineString", 2: "LinearRing", 4: "MultiPoint", 5: "MultiLineString"}
        raise DataError(f"{_src(gdf, role)}: {bad_type.sum()} feature(s) are "
                        f"{', '.join(names.get(t, str(t)) for t in found)}, not polygons (ids "
                        f"{_ids_text(gdf['_id'][bad_type])}). This layer must hold polygons.")
    invalid = ~none & ~is_valid(geoms)
    if invalid.any():
        fixed = shapely.make_valid(geoms[invalid])
        geoms = geoms.copy()
        geoms[invalid] = fixed
        report["repaired"] = int(invalid.sum())
        report["repaired_ids"] = gdf["_id"][invalid].tolist()
        log.info("%s: repaired %d invalid geometries (ids %s)", _src(gdf, role), invalid.sum(),
                 _ids_text(report["repaired_ids"]))
    collections = shapely.get_type_id(geoms) == 7
    if collections.any():
        geoms = geoms.copy()
        geoms[collections] = [_polygonal_part(g) for g in geoms[collections]]
    empty = none | shapely.is_empty(geoms)
    gdf = gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs))
    if empty.any():
        report["dropped_empty"] = int(empty.sum())
        log.warning("%s: dropped %d empty geometries (ids %s)", _src(gdf, role), empty.sum(),
                    _ids_text(gdf["_id"][empty]))
        gdf = gdf[~empty]
    report["features_out"] = int(len(gdf))
    return gdf, report


def _id_text(v) -> str:
    # 510104.0 from a numeric column must become "510104", not "510104.0"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def check_overlap(bounds_a, bounds_b, name_a: str, name_b: str, margin: float = 0.0) -> None:
    """Raise when two extents (same CRS) do not intersect, even widened by ``margin``: almost always a CRS mix-up.

    Layers of one study area can sit apart (an urban boundary in one corner, farmland in another), hence the margin;
    a wrong CRS puts them hundreds or thousands of kilometres apart.
    """
    ax0, ay0, ax1, ay1 = (float(v) for v in bounds_a)
    bx0, by0, bx1, by1 = (float(v) for v in bounds_b)
    if ax1 + margin < bx0 or bx1 + margin < ax0 or ay1 + margin < by0 or by1 + margin < ay0:
        raise DataError(f"{name_a} and {name_b} do not overlap (extents {tuple(round(v, 4) for v in (ax0, ay0, ax1, ay1))}"
                        f" vs {tuple(round(v, 4) for v in (bx0, by0, bx1, by1))}). One of them probably has the wrong "
                        "CRS (e.g. "
                        "projected metres labelled as degrees, or a different datum); check both with ogrinfo/gdalinfo.")
