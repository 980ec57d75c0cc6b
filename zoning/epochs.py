"""Year-on-year supervision (卫片执法): what is new since a baseline survey, which findings of an earlier run are
gone (rectified), and the auditor's follow-up carried forward. Pure: arrays and tables in, arrays and tables out."""
from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from . import controllines as cl, outputs, violations as vio

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


def new_parts(geoms: np.ndarray, baseline: cl.ControlIndex) -> np.ndarray:
    """Each geometry's part outside the union of the baseline parcels (None where nothing is left)."""
    out = np.full(len(geoms), None, dtype=object)
    parts = cl.outside_parts(np.asarray(geoms, dtype=object), baseline)
    out[parts["parcel"].to_numpy(dtype=np.int64)] = parts["geometry"].to_numpy()
    return out


def change(shared_m2: np.ndarray, new_m2: np.ndarray, sliver_m2: float) -> np.ndarray:
    """``new`` where the parcel shares at most ``sliver_m2`` with the baseline, ``existing`` where the violating
    part's new area is at most ``sliver_m2``, ``expanded`` otherwise."""
    return np.where(np.asarray(shared_m2) <= sliver_m2, "new",
                    np.where(np.asarray(new_m2) <= sliver_m2, "existing", "expanded")).astype(object)


def change_columns(rows: pd.DataFrame, alb: np.ndarray, parcel_shared: pd.Series, baseline: cl.ControlIndex,
                   sliver_m2: float, method: str) -> tuple[pd.DataFrame, np.ndarray]:
    """``change``, ``change_zh`` and ``new_area_m2/ha/mu`` for violation rows (``alb``: their China-Albers
    geometries; ``parcel_shared``: parcel id → m² shared with the baseline). Returns the rows and the new parts."""
    new = new_parts(alb, baseline)
    has = ~shapely.is_missing(new)
    new_m2 = np.zeros(len(rows))
    if has.any():
        new_m2[has] = vio.area(new[has], method)
    shared = parcel_shared.reindex(rows["parcel_id"].to_numpy()).fillna(0.0).to_numpy()
    rows = rows.copy()
    rows["change"] = change(shared, new_m2, sliver_m2)
    rows["change_zh"] = outputs.change_zh(rows["change"])
    from .areas import units

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
