"""Year-on-year supervision (卫片执法): what is new since a baseline survey, and the built-up change between two
land covers (what an earlier run becomes is :mod:`zoning.continuity`). Pure: arrays and tables in, arrays and tables
out."""
from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from . import controllines as cl, outputs, violations as vio
from .areas import units

def covered_area(geoms: np.ndarray, index: cl.ControlIndex, method: str) -> np.ndarray:
    """Area of each geometry (China Albers) inside the union of ``index``'s features, counted once."""
    out = np.zeros(len(geoms))
    parts = cl.overlay_parts(np.asarray(geoms, dtype=object), index)
    if len(parts):
        p = parts["parcel"].to_numpy(dtype=np.int64)
        out[p] = vio.union_area(p, parts["geometry"].to_numpy(), method)
    return out


def parcel_news(parcels: np.ndarray, baseline: cl.ControlIndex, method: str):
    """Each parcel's part outside the union of the baseline parcels.

    Returns (that part, None where nothing is left; whether the parcel touches no baseline parcel at all; the
    area the parcel shares with the baseline, m²; the part's area, m²; the parcels).
    """
    parcels = np.asarray(parcels, dtype=object)
    new = np.full(len(parcels), None, dtype=object)
    untouched = np.zeros(len(parcels), dtype=bool)
    parts = cl.outside_parts(parcels, baseline)
    p = parts["parcel"].to_numpy(dtype=np.int64)
    new[p] = parts["geometry"].to_numpy()
    untouched[p] = parts["whole"].to_numpy(dtype=bool)
    has = ~shapely.is_missing(new)
    new_m2 = np.zeros(len(parcels))
    new_m2[has & ~untouched] = vio.area(new[has & ~untouched], method)
    shared = np.where(untouched, 0.0, np.maximum(vio.area(parcels, method) - new_m2, 0.0))
    return new, untouched, shared, new_m2, parcels


def change(shared_m2: np.ndarray, new_m2: np.ndarray, sliver_m2: float) -> np.ndarray:
    """``new`` where the parcel shares at most ``sliver_m2`` with the baseline, ``existing`` where the violating
    part's new area is at most ``sliver_m2``, ``expanded`` otherwise."""
    return np.where(np.asarray(shared_m2) <= sliver_m2, "new",
                    np.where(np.asarray(new_m2) <= sliver_m2, "existing", "expanded")).astype(object)


def change_columns(rows: pd.DataFrame, alb: np.ndarray, parcel_pos: np.ndarray, news: tuple, sliver_m2: float,
                   method: str) -> tuple[pd.DataFrame, np.ndarray]:
    """``change``, ``change_zh`` and ``new_area_m2/ha/mu`` for violation rows.

    ``alb``: the rows' China-Albers geometries; ``parcel_pos``: each row's parcel (index into the chunk);
    ``news``: :func:`parcel_news` of the chunk. A row's new part is its geometry where the parcel touches no
    baseline parcel, nothing where the parcel is wholly covered, else its intersection with the parcel's new part.
    Returns the rows and the rows' new parts.
    """
    parcel_new, untouched, shared, parcel_new_m2, parcels = news
    alb = np.asarray(alb, dtype=object)
    new = np.full(len(rows), None, dtype=object)
    new_m2 = np.zeros(len(rows))
    whole = untouched[parcel_pos]
    new[whole] = alb[whole]
    new_m2[whole] = rows["area_m2"].to_numpy(dtype=float)[whole]
    part = ~whole & ~shapely.is_missing(parcel_new[parcel_pos])
    # a finding that is the whole parcel (a parcel wholly inside the line): its new part is the parcel's
    same = np.zeros(len(rows), dtype=bool)
    same[part] = shapely.equals_exact(alb[part], parcels[parcel_pos[part]], tolerance=0.0)
    new[same] = parcel_new[parcel_pos[same]]
    new_m2[same] = parcel_new_m2[parcel_pos[same]]
    part &= ~same
    if part.any():
        cut = cl.polygonal(shapely.intersection(alb[part], parcel_new[parcel_pos[part]]))
        area = np.nan_to_num(vio.area(cut, method), nan=0.0)
        new[part] = np.where(area > 0, cut, None)
        new_m2[part] = area
    rows = rows.copy()
    rows["change"] = change(shared[parcel_pos], new_m2, sliver_m2)
    rows["change_zh"] = outputs.change_zh(rows["change"])
    for k, v in units(new_m2).items():
        rows["new_" + k] = v
    return rows, new


def line_in_counties(counties: vio.Counties, line: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each county's part of a control line (the union of the line's features inside it), China Albers.

    Returns (county index, polygon) for the counties the line touches.
    """
    tree = shapely.STRtree(line)
    ic, il = tree.query(counties.geoms, predicate="intersects")
    if len(ic) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object)
    inter = cl.polygonal(shapely.intersection(counties.geoms[ic], line[il]))
    uniq, merged = cl.group_reduce(ic, inter)
    merged = cl.polygonal(merged)
    keep = ~shapely.is_empty(merged) & (shapely.area(merged) > 0)
    return uniq[keep], merged[keep]


CHANGE_MIN_COVERED = 0.95  # share of a county's part of a line both land covers must hold valid data for


def share_inside(geoms: np.ndarray, box) -> np.ndarray:
    """Each geometry's share (area) inside a raster's extent (``box``, same CRS)."""
    geoms = np.asarray(geoms, dtype=object)
    a = shapely.area(geoms)
    inside = shapely.area(shapely.clip_by_rect(geoms, *box))
    return np.where(a > 0, inside / np.maximum(a, 1e-12), 0.0)


def builtup_change(counties: vio.Counties, check_id: str, idx: np.ndarray, area_m2: np.ndarray,
                   before: np.ndarray, after: np.ndarray, covered_before: np.ndarray | None = None,
                   covered_after: np.ndarray | None = None) -> pd.DataFrame:
    """``county_summary`` rows: the built-up area of each county's part of a line in two land covers and the
    gain (``area_m2`` = after − before; negative where built-up land went back), every county listed.

    Where either land cover holds valid data for less than :data:`CHANGE_MIN_COVERED` of the county's part (``covered_*``:
    shares of it), the county's figures are unknown (null) and ``note`` says why: a partial raster would otherwise
    read as change. Totals add the known counties and say how many are unknown.
    """
    n = len(counties.ids)
    idx = np.asarray(idx, dtype=np.int64)
    b0, b1 = np.zeros(n), np.zeros(n)
    b0[idx] = np.nan_to_num(np.asarray(before, dtype=float)) * area_m2
    b1[idx] = np.nan_to_num(np.asarray(after, dtype=float)) * area_m2
    note = np.full(n, "", dtype=object)
    unknown = np.zeros(n, dtype=bool)
    for name, cov in (("earlier", covered_before), ("current", covered_after)):
        if cov is None:
            continue
        short = np.asarray(cov, dtype=float) < CHANGE_MIN_COVERED
        unknown[idx[short]] = True
        note[idx[short]] = [f"{t}{name} land cover has valid data for {c:.0%} of the county's part of the line "
                            f"(below {CHANGE_MIN_COVERED:.0%}): change unknown 前后期土地覆被未完整覆盖，变化未知"
                            if not t else f"{t}; {name} land cover {c:.0%}"
                            for t, c in zip(note[idx[short]], np.asarray(cov, dtype=float)[short])]
    gain = b1 - b0
    u = units(gain)
    rows = pd.DataFrame({"county_id": counties.ids, "county_name": counties.names, "check_id": check_id,
                         "check_zh": outputs.CHECKS[check_id].zh, "count": (gain > 0).astype(int), "parcels": 0,
                         "slivers": 0, "area_m2": np.round(gain, 2), "area_ha": np.round(u["area_ha"], 2),
                         "area_mu": np.round(u["area_mu"], 2), "builtup_before_m2": np.round(b0, 2),
                         "builtup_after_m2": np.round(b1, 2)})
    rows.loc[unknown, "count"] = 0
    total = rows[~unknown].drop(columns=["county_id", "county_name", "check_id", "check_zh"]).sum().to_frame().T
    total = total.assign(county_id="TOTAL", county_name="合计 total", check_id=check_id,
                         check_zh=outputs.CHECKS[check_id].zh,
                         note=f"{int(unknown.sum())} county(ies) unknown (partial land cover), not in the total "
                              "部分县变化未知，未计入合计" if unknown.any() else "")
    values = ["area_m2", "area_ha", "area_mu", "builtup_before_m2", "builtup_after_m2"]
    rows[values] = rows[values].astype(float)
    rows.loc[unknown, values] = np.nan
    rows["note"] = note
    out = pd.concat([rows, total[rows.columns]], ignore_index=True)
    return out.astype({"count": "int64", "parcels": "int64", "slivers": "int64"})
