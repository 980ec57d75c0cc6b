"""Year-on-year supervision (卫片执法): what is new since a baseline survey, which findings of an earlier run are
gone (rectified), and the auditor's follow-up carried forward. Pure: arrays and tables in, arrays and tables out."""
from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from . import controllines as cl, outputs, violations as vio
from .areas import units

# the earlier run's layers and the fields this module needs from them (a --previous file must have them)
PREVIOUS_FIELDS = {"violations": ("violation_id", "check_id", "parcel_id", "control_id", "detected_on"),
                   "parcels": ("parcel_id", "verdict", "status", "checked_by", "checked_on", "remark")}
FOLLOW_UP = PREVIOUS_FIELDS["parcels"][1:]


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


def finding_keys(df: pd.DataFrame) -> pd.Series:
    """What identifies a finding across runs: (check, parcel, control feature)."""
    control = df["control_id"].astype(object).where(df["control_id"].notna(), "").astype(str)
    return df["check_id"].astype(str) + "\x1f" + df["parcel_id"].astype(str) + "\x1f" + control


def previous_lookup(previous: pd.DataFrame, earlier_date: str) -> pd.DataFrame:
    """The earlier run's findings by key: their id and when they were first detected (``earlier_date``, the
    earlier run's date, where a row has no date of its own)."""
    first = previous["first_detected_on"] if "first_detected_on" in previous else \
        pd.Series(None, index=previous.index, dtype=object)
    first = first.where(_filled(first), previous["detected_on"])
    first = first.where(_filled(first), earlier_date)
    return pd.DataFrame({"violation_id": previous["violation_id"].to_numpy(), "first_detected_on": first.to_numpy()},
                        index=finding_keys(previous).to_numpy())


def _filled(s: pd.Series) -> pd.Series:
    return s.notna() & (s.astype(str).str.strip() != "") & (s.astype(str) != "None")


def carry_ids(rows: pd.DataFrame, lookup: pd.DataFrame | None, run_date: str) -> pd.DataFrame:
    """Findings seen in the earlier run keep its ``violation_id`` and ``first_detected_on``; new ones are first
    detected on their detection date, else on ``run_date``."""
    rows = rows.copy()
    own = rows["detected_on"].where(_filled(rows["detected_on"]), run_date) if "detected_on" in rows else run_date
    rows["first_detected_on"] = own
    if lookup is not None and len(rows) and len(lookup):
        hit = lookup.reindex(finding_keys(rows).to_numpy())
        found = hit["violation_id"].notna().to_numpy()
        rows.loc[found, "violation_id"] = hit["violation_id"].to_numpy()[found]
        rows.loc[found, "first_detected_on"] = hit["first_detected_on"].to_numpy()[found]
    return rows


def rectified(previous: pd.DataFrame, current_keys: pd.Series) -> np.ndarray:
    """Mask of the earlier findings whose (check, parcel, control feature) no longer occurs."""
    return ~finding_keys(previous).isin(pd.Index(current_keys)).to_numpy()


def carry_follow_up(ledger: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """The follow-up fields an auditor filled in the earlier ledger, carried to the same parcels."""
    if previous is None or len(previous) == 0 or len(ledger) == 0:
        return ledger
    prev = previous.drop_duplicates("parcel_id").set_index(previous["parcel_id"].astype(str).to_numpy())
    hit = prev.reindex(ledger["parcel_id"].astype(str).to_numpy())
    found = hit["parcel_id"].notna().to_numpy()
    ledger = ledger.copy()
    for f in FOLLOW_UP:
        if f in hit:
            vals = hit[f].to_numpy(dtype=object)
            keep = found & pd.notna(vals)
            col = ledger[f].to_numpy(dtype=object).copy()
            col[keep] = vals[keep]
            ledger[f] = col
    return ledger


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


def builtup_change(counties: vio.Counties, check_id: str, idx: np.ndarray, area_m2: np.ndarray,
                   before: np.ndarray, after: np.ndarray) -> pd.DataFrame:
    """``county_summary`` rows: the built-up area of each county's part of a line in two land covers and the
    gain (``area_m2`` = after − before; negative where built-up land went back), every county listed."""
    n = len(counties.ids)
    b0, b1 = np.zeros(n), np.zeros(n)
    b0[idx] = np.nan_to_num(np.asarray(before, dtype=float)) * area_m2
    b1[idx] = np.nan_to_num(np.asarray(after, dtype=float)) * area_m2
    gain = b1 - b0
    u = units(gain)
    rows = pd.DataFrame({"county_id": counties.ids, "county_name": counties.names, "check_id": check_id,
                         "check_zh": outputs.CHECKS[check_id].zh, "count": (gain > 0).astype(int), "parcels": 0,
                         "slivers": 0, "area_m2": np.round(gain, 2), "area_ha": np.round(u["area_ha"], 2),
                         "area_mu": np.round(u["area_mu"], 2), "builtup_before_m2": np.round(b0, 2),
                         "builtup_after_m2": np.round(b1, 2)})
    total = rows.drop(columns=["county_id", "county_name", "check_id", "check_zh"]).sum().to_frame().T
    total = total.assign(county_id="TOTAL", county_name="合计 total", check_id=check_id,
                         check_zh=outputs.CHECKS[check_id].zh)
    out = pd.concat([rows, total[rows.columns]], ignore_index=True)
    return out.astype({"count": "int64", "parcels": "int64", "slivers": "int64"})
