"""Control-line checks as a registry, content-derived violation ids, and never-double-counted tallies.

Pure: shapely arrays in China Albers (metres) in, GeoDataFrames and tables out. Adding a check is one entry in
:data:`zoning.outputs.CHECKS` plus one function registered here with :func:`conflict_check` or
:func:`construction_check`.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import areas, controllines as cl, outputs

NO_COUNTY = cl.NO_COUNTY
_PLAIN_ID = re.compile(r"[0-9A-Za-z_.]{1,32}")


@dataclass
class Lines:
    """The three control lines in China Albers: geometries and ids per line."""

    geoms: dict[str, np.ndarray]
    ids: dict[str, np.ndarray]
    index: dict[str, cl.ControlIndex] = field(default_factory=dict)
    labels: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # line → (names, codes)
    window: tuple[float, float, float, float] | None = None  # conflicts: only the pairs of this tile

    def prepare(self, tile: float) -> "Lines":
        self.index = {k: cl.prepare_control(g, self.ids[k], tile) for k, g in self.geoms.items()}
        return self


@dataclass
class Counties:
    """County ids, names and geometries (China Albers) used to place each finding."""

    ids: np.ndarray
    names: np.ndarray
    geoms: np.ndarray
    extra: pd.DataFrame | None = None  # other attributes (e.g. existing construction land)

    def locate(self, geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ci = cl.assign_county(geoms, self.geoms)
        found = ci >= 0
        cid = np.where(found, self.ids[np.maximum(ci, 0)], NO_COUNTY) if len(self.ids) else \
            np.full(len(ci), NO_COUNTY, dtype=object)
        cname = np.where(found, self.names[np.maximum(ci, 0)], "") if len(self.ids) else \
            np.full(len(ci), "", dtype=object)
        return cid.astype(object), cname.astype(object)


def _locate(counties: Counties | None, geoms: np.ndarray):
    if counties is None:
        return np.full(len(geoms), NO_COUNTY, dtype=object), np.full(len(geoms), "", dtype=object)
    return counties.locate(geoms)


# ---------------------------------------------------------------------------------------------------------------
# registry
CONFLICT_CHECKS: dict[str, Callable] = {}
CONSTRUCTION_CHECKS: dict[str, tuple[Callable, str, bool]] = {}


def conflict_check(check_id: str):
    """Register ``fn(lines) -> [(layer, other_layer, DataFrame(a, b, area, geometry))]``."""
    def deco(fn):
        assert check_id in outputs.CHECKS, f"{check_id} missing from zoning.outputs.CHECKS"
        CONFLICT_CHECKS[check_id] = fn
        return fn
    return deco


def construction_check(check_id: str, layer: str, per_feature: bool = True):
    """Register ``fn(parcels, index, rule) -> DataFrame(parcel, control, area, geometry, whole[, severity])``.

    ``per_feature``: one row per (parcel, control feature) with the feature's id; else one row per parcel.
    """
    def deco(fn):
        assert check_id in outputs.CHECKS, f"{check_id} missing from zoning.outputs.CHECKS"
        CONSTRUCTION_CHECKS[check_id] = (fn, layer, per_feature)
        return fn
    return deco


def _pair(a: str, b: str):
    return lambda lines: [(a, b, cl.line_overlaps(lines.geoms[a], lines.geoms[b], window=lines.window))]


CONFLICT_CHECKS.update({
    "red_line_farmland_overlap": _pair("red_line", "farmland"),
    "red_line_urban_overlap": _pair("red_line", "urban_boundary"),
    "farmland_urban_overlap": _pair("farmland", "urban_boundary"),
})


@conflict_check("self_overlap")
def _self_overlap(lines: Lines):
    out = []
    for k in lines.geoms:
        ov = cl.line_overlaps(lines.geoms[k], lines.geoms[k], same=True, window=lines.window)
        # order each pair by id, not by feature order, so ids do not depend on the input order
        a, b = lines.ids[k][ov["a"].to_numpy(int)].astype(str), lines.ids[k][ov["b"].to_numpy(int)].astype(str)
        swap = a > b
        ov.loc[swap, ["a", "b"]] = ov.loc[swap, ["b", "a"]].to_numpy()
        out.append((k, k, ov))
    return out


@construction_check("construction_in_red_line", "red_line")
def _in_red_line(parcels, index, rule):
    return cl.overlay_parts(parcels, index["red_line"])


@construction_check("construction_on_farmland", "farmland")
def _on_farmland(parcels, index, rule):
    part = cl.overlay_parts(parcels, index["farmland"])
    total = union_area(part["parcel"].to_numpy(), part["geometry"].to_numpy())
    threshold = rule["critical_mu"] * areas.SQM_PER_MU
    part["severity"] = np.where(total >= threshold, rule["critical_severity"], rule["severity"])
    return part


@construction_check("construction_outside_urban_boundary", "urban_boundary", per_feature=False)
def _outside_boundary(parcels, index, rule):
    return cl.outside_parts(parcels, index["urban_boundary"])


# ---------------------------------------------------------------------------------------------------------------
# ids, geometry, areas
def _id_parts(values: np.ndarray) -> np.ndarray:
    """Ids as they are when short and plain; otherwise ``h`` + a 10-hex BLAKE2b digest (documented)."""
    s = pd.Series(values, dtype=object).fillna("")
    s = s.where(s.map(type) == str, s.map(str))  # ids are text already (the readers make them so)
    plain = s.str.fullmatch(_PLAIN_ID.pattern).fillna(False).astype(bool) | (s == "")
    if not plain.all():
        odd = s[~plain].unique()
        digest = {v: "h" + hashlib.blake2b(v.encode("utf-8"), digest_size=5).hexdigest() for v in odd}
        s = s.where(plain, s.map(digest))
    return s.to_numpy(dtype=object)


def violation_ids(county: np.ndarray, code: np.ndarray, first: np.ndarray, second: np.ndarray | None = None):
    """``<county>-<code>-<first>[-<second>]``: a function of content only (order, chunking do not matter)."""
    ids = pd.Series(np.asarray(county, dtype=object), dtype=object) + "-" + pd.Series(code, dtype=object) + "-" + \
        pd.Series(_id_parts(first), dtype=object)
    if second is not None:
        sec = pd.Series(_id_parts(second), dtype=object)
        ids = ids + np.where(sec == "", "", "-" + sec)
    return ids.to_numpy(dtype=object)


def valid_polygonal(geoms: np.ndarray) -> np.ndarray:
    """Valid (Multi)Polygons: invalid ones repaired, lines and points that set operations leave dropped."""
    g = np.asarray(geoms, dtype=object).copy()
    bad = ~shapely.is_valid(g) & ~shapely.is_missing(g)
    if bad.any():
        g[bad] = shapely.make_valid(g[bad])
    g = cl.polygonal(g)
    return g


def area(geoms: np.ndarray, method: str) -> np.ndarray:
    """Areas (m²) of China-Albers geometries: planar (``albers``) or ellipsoidal (``geodesic``)."""
    if method == "geodesic":
        return areas.geodesic_area(geoms, areas.CHINA_ALBERS)
    return shapely.area(geoms)


def union_area(keys: np.ndarray, geoms: np.ndarray, method: str = "albers",
               row_area: np.ndarray | None = None) -> np.ndarray:
    """Per row: the area of the union of all geometries sharing its key (counted once, overlaps or not).

    ``row_area``: the rows' own areas, reused where a key has a single row (only shared keys are unioned).
    """
    keys = np.asarray(keys)
    if len(keys) == 0:
        return np.array([], dtype=float)
    if row_area is None:
        uniq, merged = cl.group_reduce(keys, geoms)
        a = area(cl.polygonal(merged), method)
        return a[np.searchsorted(uniq, keys)]
    out = np.asarray(row_area, dtype=float).copy()
    shared = pd.Series(keys).duplicated(keep=False).to_numpy()
    if shared.any():
        out[shared] = union_area(keys[shared], np.asarray(geoms, dtype=object)[shared], method)
    return out


def finish_rows(df: pd.DataFrame, geoms: np.ndarray, out_crs, counties: Counties | None, method: str,
                known: np.ndarray | None = None) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Valid geometry in ``out_crs``, areas in m²/ha/亩 computed on it, centroid lon/lat, county.

    ``known``: output-CRS geometries already at hand (a parcel wholly inside a line), reused as they are.
    Returns the rows and their (repaired) China-Albers geometries.
    """
    # parcels reused whole were repaired on reading; only cut or reprojected geometry needs checking
    todo = np.ones(len(geoms), dtype=bool) if known is None else shapely.is_missing(np.asarray(known, dtype=object))
    geoms = np.asarray(geoms, dtype=object).copy()
    out = np.asarray(known, dtype=object).copy() if known is not None else np.empty(len(geoms), dtype=object)
    if todo.any():
        geoms[todo] = valid_polygonal(geoms[todo])
        # reprojection can make a thin ring self-intersect
        out[todo] = valid_polygonal(areas.to_crs(geoms[todo], areas.CHINA_ALBERS, out_crs))
    keep = ~shapely.is_empty(out) & ~shapely.is_missing(out)
    df, geoms, out = df[keep].reset_index(drop=True), geoms[keep], out[keep]
    for k, v in areas.units(area(geoms, method)).items():
        df[k] = v
    cen = areas.to_crs(shapely.centroid(geoms), areas.CHINA_ALBERS, areas.CGCS2000)
    df["centroid_lon"] = np.round(shapely.get_x(cen), 7)
    df["centroid_lat"] = np.round(shapely.get_y(cen), 7)
    df["county_id"], df["county_name"] = _locate(counties, geoms)
    df["check_zh"] = outputs.check_zh(df["check_id"])
    df["severity_zh"] = outputs.severity_zh(df["severity"])
    return gpd.GeoDataFrame(df, geometry=list(out) if len(out) else [], crs=out_crs), geoms


@dataclass
class Tally:
    """Per (check, county) counts and union areas, kept instead of rows so memory follows the chunk size."""

    rows: list[pd.DataFrame] = field(default_factory=list)
    slivers: list[pd.DataFrame] = field(default_factory=list)
    # a tile of a grid: areas of the parts inside it only, so that tiles' areas add up to the union's
    clip: tuple[float, float, float, float] | None = None
    # distinct parcels per check (a parcel across a county border counts in each county, once in the total)
    distinct: dict = field(default_factory=dict)

    def add(self, check_id: str, county: np.ndarray, key: np.ndarray, geoms: np.ndarray, method: str,
            parcels: bool, row_area: np.ndarray | None = None) -> None:
        """Add rows of one check; ``key`` groups rows whose union is counted once (parcel, or pair layer).

        ``row_area``: the rows' own areas, reused where a key has a single row (only shared keys are unioned).
        """
        if len(county) == 0:
            return
        county = np.asarray(county, dtype=object)
        if parcels:  # a parcel lies in one chunk (or task): distinct counts add up across them
            self.distinct[check_id] = self.distinct.get(check_id, 0) + len(pd.unique(np.asarray(key, dtype=object)))
        if self.clip is not None:
            box = np.clip(np.asarray(self.clip, dtype=float), -1e15, 1e15)
            geoms, row_area = cl.polygonal(shapely.clip_by_rect(np.asarray(geoms, dtype=object), *box)), None
        k = pd.Series(county, dtype=object) + "\x1f" + pd.Series(np.asarray(key, dtype=object), dtype=object)
        shared = k.duplicated(keep=False).to_numpy()
        per_row = np.asarray(row_area, dtype=float).copy() if row_area is not None else area(geoms, method)
        first = ~k.duplicated().to_numpy()
        if shared.any():
            uniq, merged = cl.group_reduce(k.to_numpy(dtype=object)[shared], np.asarray(geoms, dtype=object)[shared])
            union = pd.Series(area(cl.polygonal(merged), method), index=uniq)
            per_row[shared] = union.reindex(k[shared]).to_numpy()
        per_key = pd.DataFrame({"county_id": county[first], "area_m2": per_row[first]})
        g = per_key.groupby("county_id").agg(area_m2=("area_m2", "sum"), parcels=("area_m2", "size"))
        g["count"] = pd.Series(county, dtype=object).value_counts()
        if not parcels:
            g["parcels"] = 0
        self.rows.append(g.reset_index().assign(check_id=check_id))

    def add_slivers(self, check_id: str, county: np.ndarray) -> None:
        if len(county):
            self.slivers.append(pd.DataFrame({"county_id": county, "check_id": check_id, "slivers": 1}))


# ---------------------------------------------------------------------------------------------------------------
# the checks
def line_conflicts(lines: Lines, counties: Counties | None, rules: dict, out_crs, tally: Tally) -> gpd.GeoDataFrame:
    """Every enabled conflict check: overlaps between and within the lines, one row per feature pair."""
    checks, sliver, method = rules["checks"], rules["rules"]["sliver_m2"], rules["rules"]["area_method"]
    frames = []
    for check, fn in CONFLICT_CHECKS.items():
        if not checks.get(check, {}).get("enabled", True):
            continue
        spec = outputs.CHECKS[check]
        for a, b, ov in fn(lines):
            small = ov["area"].to_numpy() < sliver
            tally.add_slivers(check, _locate(counties, ov["geometry"].to_numpy()[small])[0])
            ov = ov[~small]
            ia, ib = ov["a"].to_numpy(dtype=int), ov["b"].to_numpy(dtype=int)
            df = pd.DataFrame({"check_id": check, "severity": checks.get(check, {}).get("severity", spec.severity),
                               "layer": a, "control_id": lines.ids[a][ia], "other_layer": b,
                               "other_control_id": lines.ids[b][ib], "note": checks.get(check, {}).get("note", "")})
            rows, alb = finish_rows(df, ov["geometry"].to_numpy(), out_crs, counties, method)
            code = spec.code + (f"-{outputs.LINE_CODES[a]}" if a == b else "")
            rows["violation_id"] = violation_ids(rows["county_id"].to_numpy(), np.full(len(rows), code),
                                                 rows["control_id"].to_numpy(), rows["other_control_id"].to_numpy())
            tally.add(check, rows["county_id"].to_numpy(), np.full(len(rows), a), alb, method, parcels=False,
                      row_area=rows["area_m2"].to_numpy())
            frames.append(rows)
    cols = outputs.columns("conflicts") + ["geometry"]
    if not frames:
        return gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in cols[:-1]}, geometry=[], crs=out_crs)
    res = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=out_crs)
    return res[cols]


@dataclass(frozen=True)
class ParcelChunk:
    """One group of construction parcels: geometries in China Albers, ids and detection dates, and (``source``) the
    geometries in the output CRS as read, reused where a parcel lies wholly inside or outside a line."""

    geoms: np.ndarray
    ids: np.ndarray
    dates: np.ndarray
    source: np.ndarray | None = None


def construction_findings(chunk: ParcelChunk, lines: Lines, counties: Counties | None, rules: dict, out_crs,
                          tally: Tally, map_fn=map, collect: dict | None = None) -> gpd.GeoDataFrame:
    """Every enabled construction check on one chunk of parcels (China Albers).

    ``map_fn``: how to run the independent checks (e.g. a thread pool's ``map``; shapely releases the GIL).
    ``collect``: filled with check → (rows, their China-Albers geometries), for the parcel ledger.
    """
    parcels, parcel_ids, dates, source = chunk.geoms, chunk.ids, chunk.dates, chunk.source
    checks, sliver, method = rules["checks"], rules["rules"]["sliver_m2"], rules["rules"]["area_method"]
    todo = [(c, fn, layer, per) for c, (fn, layer, per) in CONSTRUCTION_CHECKS.items()
            if checks.get(c, {}).get("enabled", True)]

    def one(task):
        # the whole per-check work runs in the pool: shapely and pyproj release the GIL
        check, fn, layer, per_feature = task
        spec, rule = outputs.CHECKS[check], checks.get(check, {})
        part = fn(parcels, lines.index, rule)
        if counties is not None and len(part):  # a part across a county border: one row per county
            part = cl.split_by_areas(part, counties.geoms, sliver)
        small = part["area"].to_numpy() < sliver
        sliver_counties = _locate(counties, part["geometry"].to_numpy()[small])[0]
        part = part[~small]
        p = part["parcel"].to_numpy(dtype=int)
        control = lines.ids[layer][part["control"].to_numpy(dtype=int)] if per_feature else \
            np.full(len(p), None, dtype=object)
        sev = part["severity"].to_numpy() if "severity" in part else rule.get("severity", spec.severity)
        df = pd.DataFrame({"check_id": check, "severity": sev, "parcel_id": parcel_ids[p], "control_id": control,
                           "detected_on": dates[p], "note": rule.get("note", "")})
        if per_feature and layer in lines.labels:  # the control feature's own name and code, when it has them
            names, codes = lines.labels[layer]
            k = part["control"].to_numpy(dtype=int)
            df["control_name"], df["control_code"] = names[k], codes[k]
        known = None
        if source is not None:
            known = np.full(len(p), None, dtype=object)
            whole = part["whole"].to_numpy(dtype=bool)
            known[whole] = source[p[whole]]
        rows, alb = finish_rows(df, part["geometry"].to_numpy(), out_crs, counties, method, known)
        rows["overlap"] = _overlaps(rows["parcel_id"].to_numpy(), alb) if per_feature else False
        rows["violation_id"] = violation_ids(rows["county_id"].to_numpy(), np.full(len(rows), spec.code),
                                             rows["parcel_id"].to_numpy(),
                                             rows["control_id"].to_numpy() if per_feature else None)
        return check, rows, alb, sliver_counties

    frames = []
    for check, rows, alb, sliver_counties in map_fn(one, todo):
        tally.add_slivers(check, sliver_counties)
        tally.add(check, rows["county_id"].to_numpy(), rows["parcel_id"].to_numpy(), alb, method, parcels=True,
                  row_area=rows["area_m2"].to_numpy())
        frames.append(rows)
        if collect is not None:
            collect[check] = (rows, alb)
    cols = [c for c in outputs.columns("violations") if c not in outputs.EPOCH_FIELDS] + ["geometry"]
    if not frames:
        return gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in cols[:-1]}, geometry=[], crs=out_crs)
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=out_crs)[cols]


def _overlaps(keys: np.ndarray, geoms: np.ndarray) -> np.ndarray:
    """True where a row's geometry overlaps (area > 0.01 m²) another row with the same key."""
    out = np.zeros(len(keys), dtype=bool)
    s = pd.Series(keys)
    multi = s.duplicated(keep=False).to_numpy()
    if not multi.any():
        return out
    idx = np.nonzero(multi)[0]
    df = pd.DataFrame({"k": keys[idx], "i": idx})
    pairs = df.merge(df, on="k")
    pairs = pairs[pairs["i_x"] < pairs["i_y"]]
    i, j = pairs["i_x"].to_numpy(), pairs["i_y"].to_numpy()
    hit = shapely.area(shapely.intersection(geoms[i], geoms[j])) > 0.01
    out[i[hit]] = True
    out[j[hit]] = True
    return out
