"""Three-control-line checks: overlaps between and within the lines, and construction encroachment.

Everything here works on shapely arrays in one equal-area CRS (metres). The pattern follows
``geopandas.tools.overlay``: one bulk STRtree query, then array-wise predicates and intersections. Two things make it
faster than a plain overlay: large control polygons are cut into tiles (like PostGIS ``ST_Subdivide``) so each
intersection touches few vertices, and a parcel lying wholly inside a tile skips the intersection (its area is its
own area).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

NO_COUNTY = "000000"


@dataclass
class ControlIndex:
    """A control layer cut into pieces, with an STRtree over the pieces.

    ``owner[i]`` is the index of the feature that piece ``i`` came from.
    """

    ids: np.ndarray
    pieces: np.ndarray
    owner: np.ndarray
    tree: shapely.STRtree

    @property
    def n(self) -> int:
        return len(self.ids)


def subdivide(geoms: np.ndarray, tile: float, max_vertices: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Cut polygons that are larger than ``tile`` or have more than ``max_vertices`` into grid tiles.

    Returns (pieces, owner index). Pieces of one polygon do not overlap, so their areas add up to its area.
    """
    geoms = np.asarray(geoms)
    b = shapely.bounds(geoms)
    big = ((b[:, 2] - b[:, 0] > tile) | (b[:, 3] - b[:, 1] > tile)) & \
          (shapely.get_num_coordinates(geoms) > max_vertices)
    pieces = [geoms[~big]]
    owner = [np.nonzero(~big)[0]]
    for i in np.nonzero(big)[0]:
        x0, y0, x1, y1 = b[i]
        xs = np.arange(x0, x1, tile)
        ys = np.arange(y0, y1, tile)
        gx, gy = np.meshgrid(xs, ys)
        boxes = shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + tile, gy.ravel() + tile)
        cut = shapely.intersection(geoms[i], boxes)
        cut = cut[~shapely.is_empty(cut) & (shapely.area(cut) > 0)]
        cut = np.array([_polygonal(g) for g in cut], dtype=object)
        pieces.append(cut)
        owner.append(np.full(len(cut), i))
    return np.concatenate(pieces), np.concatenate(owner).astype(np.int64)


def prepare_control(geoms: np.ndarray, ids, tile: float) -> ControlIndex:
    pieces, owner = subdivide(np.asarray(geoms), tile)
    shapely.prepare(pieces)
    return ControlIndex(ids=np.asarray(ids, dtype=object), pieces=pieces, owner=owner, tree=shapely.STRtree(pieces))


def _polygonal(g):
    if g is None or g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    parts = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygonal part of each geometry (intersections may add touching lines and points)."""
    geoms = np.asarray(geoms, dtype=object).copy()
    mixed = shapely.get_type_id(geoms) == 7
    if mixed.any():
        geoms[mixed] = [_polygonal(g) for g in geoms[mixed]]
    return geoms


BIG_GROUP = 32  # groups larger than this are unioned each at once (cascaded), not one geometry after another


def group_reduce(keys: np.ndarray, geoms: np.ndarray, op=shapely.union) -> tuple[np.ndarray, np.ndarray]:
    """Combine geometries that share a key with ``op`` (vectorised across groups; loops only over group rank).

    With the default union, a group of more than :data:`BIG_GROUP` geometries is merged by one ``union_all``
    (GEOS's cascaded union): adding them one by one grows one polygon n times, quadratic in the group's size.
    """
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    g = np.asarray(geoms, dtype=object)[order]
    uniq, start, counts = np.unique(k, return_index=True, return_counts=True)
    out = g[start].copy()
    rank = np.arange(len(k)) - np.repeat(start, counts)
    big = counts > BIG_GROUP if op is shapely.union else np.zeros(len(counts), dtype=bool)
    for i in np.nonzero(big)[0]:
        out[i] = shapely.union_all(g[start[i]:start[i] + counts[i]])
    small_max = int(counts[~big].max()) if (~big).any() else 0
    in_small = ~np.repeat(big, counts)
    for r in range(1, small_max):
        sel = (rank == r) & in_small
        tgt = np.searchsorted(uniq, k[sel])
        out[tgt] = op(out[tgt], g[sel])
    return uniq, out


def overlay_parts(parcels: np.ndarray, ctrl: ControlIndex) -> pd.DataFrame:
    """Intersection of each parcel with each control feature it overlaps.

    Returns a DataFrame with ``parcel`` (index into ``parcels``), ``control`` (index into ``ctrl.ids``),
    ``area`` (planar m²), ``geometry`` (the intersection) and ``whole`` (the parcel lies wholly inside, so the
    geometry is the parcel itself), one row per (parcel, feature) pair with area > 0.
    """
    pi, ci = ctrl.tree.query(parcels, predicate="intersects")
    if len(pi) == 0:
        return pd.DataFrame({"parcel": [], "control": [], "area": [], "geometry": [], "whole": []})
    inside = shapely.contains_properly(ctrl.pieces[ci], parcels[pi])
    geom = np.empty(len(pi), dtype=object)
    geom[inside] = parcels[pi[inside]]
    cross = ~inside
    geom[cross] = shapely.intersection(parcels[pi[cross]], ctrl.pieces[ci[cross]])
    owner = ctrl.owner[ci]
    key = pi.astype(np.int64) * ctrl.n + owner
    uniq, merged = group_reduce(key, geom)
    merged = polygonal(merged)
    area = shapely.area(merged)
    keep = area > 0
    # inside one tile's interior means no other tile of that feature touches it: the group is just the parcel
    whole = np.isin(uniq, key[inside])
    return pd.DataFrame({"parcel": (uniq // ctrl.n)[keep], "control": (uniq % ctrl.n)[keep], "area": area[keep],
                         "geometry": merged[keep], "whole": whole[keep]})


def outside_parts(parcels: np.ndarray, ctrl: ControlIndex) -> pd.DataFrame:
    """The part of each parcel outside the union of a control layer (one row per parcel with area > 0).

    ``whole`` marks parcels that touch no control feature (the geometry is the parcel itself).
    """
    pi, ci = ctrl.tree.query(parcels, predicate="intersects")
    n = len(parcels)
    result = np.asarray(parcels, dtype=object).copy()
    if len(pi):
        # covers, not contains_properly: a parcel that is also a control feature (an identical earlier survey
        # parcel) has nothing outside either, and skips the set operations
        inside = shapely.covers(ctrl.pieces[ci], parcels[pi])
        covered = np.zeros(n, dtype=bool)
        covered[pi[inside]] = True
        cross = ~inside & ~covered[pi]
        if cross.any():
            # a parcel crossing a single piece: one difference; crossing several: the union of what it has in
            # each (intersections keep that union small), then one difference
            alone = cross & (np.bincount(pi[cross], minlength=n)[pi] == 1)
            if alone.any():
                result[pi[alone]] = shapely.difference(parcels[pi[alone]], ctrl.pieces[ci[alone]])
            many = cross & ~alone
            if many.any():
                keys, cover = group_reduce(pi[many], shapely.intersection(parcels[pi[many]], ctrl.pieces[ci[many]]))
                result[keys] = shapely.difference(parcels[keys], cover)
        result[covered] = None
    untouched = np.ones(n, dtype=bool)
    untouched[pi] = False
    result = polygonal(result)
    area = np.nan_to_num(shapely.area(result), nan=0.0)
    keep = area > 0
    return pd.DataFrame({"parcel": np.nonzero(keep)[0], "area": area[keep], "geometry": result[keep],
                         "whole": untouched[keep]})


def line_overlaps(a: np.ndarray, b: np.ndarray, same: bool = False, window=None) -> pd.DataFrame:
    """Overlaps between the features of two control layers (or within one, ``same=True``, each pair once).

    ``window`` (x0, y0, x1, y1): only the pairs whose extents' intersection has its lower-left corner in
    [x0, x1) × [y0, y1), so that tiles of a grid each find a pair exactly once.
    """
    tree = shapely.STRtree(b)
    ia, ib = tree.query(a, predicate="intersects")
    if same:
        keep = ia < ib
        ia, ib = ia[keep], ib[keep]
    if window is not None and len(ia):
        ba, bb = shapely.bounds(a[ia]), shapely.bounds(b[ib])
        x, y = np.maximum(ba[:, 0], bb[:, 0]), np.maximum(ba[:, 1], bb[:, 1])
        keep = (x >= window[0]) & (x < window[2]) & (y >= window[1]) & (y < window[3])
        ia, ib = ia[keep], ib[keep]
    geom = polygonal(shapely.intersection(a[ia], b[ib])) if len(ia) else np.array([], dtype=object)
    area = shapely.area(geom) if len(ia) else np.array([])
    keep = area > 0
    return pd.DataFrame({"a": ia[keep], "b": ib[keep], "area": area[keep], "geometry": geom[keep]})


def assign_county(geoms: np.ndarray, counties: np.ndarray | None) -> np.ndarray:
    """Index of the county holding each geometry's representative point (-1 where none)."""
    out = np.full(len(geoms), -1, dtype=np.int64)
    if counties is None or len(geoms) == 0:
        return out
    pts = shapely.point_on_surface(geoms)
    tree = shapely.STRtree(counties)
    ip, ic = tree.query(pts, predicate="within")
    # a point on a shared border: keep the first county
    first = np.unique(ip, return_index=True)[1]
    out[ip[first]] = ic[first]
    return out


def split_by_areas(parts: pd.DataFrame, areas: np.ndarray, min_area: float) -> pd.DataFrame:
    """Parts (rows with a China-Albers ``geometry`` and its ``area``) cut along the borders of ``areas`` (the
    counties): a part lying in one area is kept whole (same row); a part across borders becomes one row per area
    it covers by at least ``min_area`` (``whole`` false, ``area`` its own), so per-county totals add up to the
    ground on both sides. Pieces outside every area stay with the part's largest piece."""
    geoms = parts["geometry"].to_numpy()
    tree = shapely.STRtree(areas)
    ig, ia = tree.query(geoms)  # extents meet: a cheap first cut
    many = np.bincount(ig, minlength=len(geoms)) > 1
    if not many.any():
        return parts
    sel = many[ig]
    ig, ia = ig[sel], ia[sel]
    if not shapely.is_prepared(areas).all():  # prepared once where the counties are made (threads share them)
        shapely.prepare(areas)
    inside = shapely.contains_properly(areas[ia], geoms[ig])
    held = np.zeros(len(geoms), dtype=bool)
    held[ig[inside]] = True  # wholly inside one county: nothing to cut
    cut = ~held[ig]
    ig, ia = ig[cut], ia[cut]
    if len(ig) == 0:
        return parts
    pieces = polygonal(shapely.intersection(geoms[ig], areas[ia]))
    area = shapely.area(pieces)
    keep = area >= max(min_area, 1e-6)
    ig, pieces, area = ig[keep], pieces[keep], area[keep]
    n = np.bincount(ig, minlength=len(geoms))
    split = np.nonzero(n > 1)[0]  # parts with two real pieces or more (a shared border alone cuts nothing)
    if len(split) == 0:
        return parts
    take = np.isin(ig, split)
    ig, pieces, area = ig[take], pieces[take], area[take]
    # what lies beyond every area (a parcel over the province's edge) joins the part's largest piece
    rest = shapely.difference(geoms[split], group_reduce(ig, pieces)[1])
    rest_area = np.nan_to_num(shapely.area(rest))
    if (rest_area >= max(min_area, 1e-6)).any():
        order = np.lexsort((-area, ig))
        first = order[np.r_[0, np.nonzero(np.diff(ig[order]))[0] + 1]]
        has = rest_area >= max(min_area, 1e-6)
        pieces[first[has]] = polygonal(shapely.union(pieces[first[has]], rest[has]))
        area[first[has]] = shapely.area(pieces[first[has]])
    out = parts.iloc[np.r_[np.setdiff1d(np.arange(len(parts)), split), ig]].copy()
    tail = len(out) - len(ig)
    geom = out["geometry"].to_numpy(dtype=object).copy()
    geom[tail:] = pieces
    out["geometry"] = geom
    ar = out["area"].to_numpy(dtype=float).copy()
    ar[tail:] = area
    out["area"] = ar
    if "whole" in out:
        w = out["whole"].to_numpy(dtype=bool).copy()
        w[tail:] = False
        out["whole"] = w
    return out.reset_index(drop=True)
