"""The parcel ledger (图斑台账): one row per construction parcel, its area in each control line counted once, the
findings that concern it, and empty follow-up fields for the auditor (pure: arrays and tables in, a table out)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import areas, outputs, violations as vio

# check → the ledger's area column (areas against the union of the line: never double counted)
LINE_COLUMNS = {"construction_in_red_line": "red_line", "construction_on_farmland": "farmland",
                "construction_outside_urban_boundary": "outside_boundary"}
VERDICTS = ("待核实", "合法", "违法")
STATUSES = ("未整改", "整改中", "已整改")
FOLLOW_UP = {"verdict": "待核实", "status": "未整改", "checked_by": "", "checked_on": "", "remark": ""}


def parcel_ledger(parcels: np.ndarray, parcel_ids: np.ndarray, findings: dict, counties: vio.Counties | None,
                  method: str, cropland_m2: np.ndarray | None = None) -> pd.DataFrame:
    """One row per parcel of a chunk (same order as ``parcels``, China Albers).

    ``findings``: check → (violation rows, their China-Albers geometries) from
    :func:`zoning.violations.construction_findings`; ``cropland_m2``: each parcel's area on cultivated land (耕地),
    when a cultivated-land layer was given.
    """
    n = len(parcels)
    out = pd.DataFrame({"parcel_id": np.asarray(parcel_ids, dtype=object)})
    out["county_id"], out["county_name"] = vio._locate(counties, parcels)
    if counties is not None and counties.extra is not None and "zone" in counties.extra:
        zone = dict(zip(counties.ids, counties.extra["zone"]))
        out["zone"] = out["county_id"].map(zone)
    for k, v in areas.units(vio.area(parcels, method)).items():
        out[k] = v
    pos = pd.Series(np.arange(n), index=out["parcel_id"])
    rank = np.full(n, -1)
    ids: list[pd.Series] = []
    for check, name in LINE_COLUMNS.items():
        inside = np.zeros(n)
        rows, alb = findings.get(check, (None, None))
        if rows is not None and len(rows):
            p = pos.reindex(rows["parcel_id"]).to_numpy()
            union = vio.union_area(p, np.asarray(alb, dtype=object), method, rows["area_m2"].to_numpy())
            inside[p] = union  # every row of a parcel carries the same union
            np.maximum.at(rank, p, outputs.severity_rank(rows["severity"]))
            ids.append(pd.Series(rows["violation_id"].to_numpy(), index=p))
        for k, v in areas.units(inside).items():
            out[f"{name}_{k.split('_', 1)[1]}"] = v
    if cropland_m2 is not None:
        for k, v in areas.units(np.asarray(cropland_m2, dtype=float)).items():
            out[f"cropland_{k.split('_', 1)[1]}"] = v
    out["in_red_line"] = out["red_line_m2"] > 0
    out["on_farmland"] = out["farmland_m2"] > 0
    codes = np.array([""] + [k for k, _ in sorted(outputs.SEVERITIES.items(), key=lambda kv: kv[1].rank)],
                     dtype=object)
    out["worst_severity"] = codes[rank + 1]
    out["violation_ids"] = _join_by(pd.concat(ids) if ids else pd.Series(dtype=object), n)
    for k, v in FOLLOW_UP.items():
        out[k] = v
    return out


def _join_by(values: pd.Series, n: int, sep: str = "; ") -> np.ndarray:
    """``sep``-joined values per integer index 0..n-1, vectorised over the rank within each group (a parcel has
    a handful of findings at most, so the loop runs a few times, not once per parcel)."""
    out = np.full(n, "", dtype=object)
    if len(values) == 0:
        return out
    idx = values.index.to_numpy()
    order = np.argsort(idx, kind="stable")
    idx, vals = idx[order], values.to_numpy(dtype=object)[order]
    start = np.r_[0, np.nonzero(np.diff(idx))[0] + 1]
    rank = np.arange(len(idx)) - np.repeat(start, np.diff(np.r_[start, len(idx)]))
    for r in range(int(rank.max()) + 1):
        sel = rank == r
        head = out[idx[sel]]
        out[idx[sel]] = np.where(head == "", vals[sel], head + sep + vals[sel].astype(str)) if r else vals[sel]
    return out


def own_names(own: list[str], taken: set[str]) -> list[str]:
    """The parcel's own fields beside the ledger's: ``input_`` before a name the ledger uses, more ``input_`` while
    the parcel has that name too (``verdict`` beside its own ``input_verdict``)."""
    out, used = [], set(taken) | set(own)
    for c in own:
        new = c
        while new in taken or (new != c and new in used):
            new = f"input_{new}"
        used.add(new)
        out.append(new)
    return out
