"""Audit tables: county summary with reconciled totals, bilingual headers, top violations (pure, no I/O)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import outputs
from .areas import SQM_PER_HA, SQM_PER_MU, largest_remainder



def county_summary(rows: pd.DataFrame, slivers: pd.DataFrame | None = None,
                   counties: pd.DataFrame | None = None, checks: list[str] | None = None) -> pd.DataFrame:
    """Count, parcels and area per county and check, every county listed, with a ``TOTAL`` row per check.

    ``area_ha`` and ``area_mu`` are rounded to 0.01 with largest-remainder balancing, so the rounded county rows
    of each check add up exactly to that check's rounded total (which is the rounded exact sum).

    Parameters
    ----------
    rows : ``county_id``, ``check_id``, ``area_m2`` and optionally ``count`` and ``parcels``: partial sums (chunks
        of the same county and check add up); areas already counted once per parcel (union)
    slivers : optional ``county_id``, ``check_id``, ``slivers`` counts
    counties : optional ``county_id``, ``county_name``: every county gets a row per check, zeros included
    checks : the checks that ran (each gets rows even without findings)
    """
    cols = outputs.columns("county_summary")[:10]
    rows = rows if "count" in rows else rows.assign(count=1)
    rows = rows if "parcels" in rows else rows.assign(parcels=0)
    g = rows.groupby(["check_id", "county_id"], sort=True).agg(
        count=("count", "sum"), parcels=("parcels", "sum"), area_m2=("area_m2", "sum")).reset_index()
    if slivers is not None and len(slivers):
        s = slivers.groupby(["check_id", "county_id"])["slivers"].sum().reset_index()
        g = g.merge(s, on=["check_id", "county_id"], how="outer")
    else:
        g["slivers"] = 0
    check_list = list(dict.fromkeys(list(checks or []) + sorted(g["check_id"].unique())))
    county_list = sorted(set(g["county_id"]) | (set(counties["county_id"]) if counties is not None else set()))
    if check_list and county_list:
        full = pd.MultiIndex.from_product([check_list, county_list], names=["check_id", "county_id"])
        g = g.set_index(["check_id", "county_id"]).reindex(full).reset_index()
    g[["count", "parcels", "slivers", "area_m2"]] = g[["count", "parcels", "slivers", "area_m2"]].fillna(0)
    if len(g) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("county_id", "county_name", "check_id", "check_zh")
                                          else float) for c in cols})
    parts = []
    for check in check_list:
        grp = g[g["check_id"] == check].sort_values("county_id").copy()
        grp["area_ha"] = largest_remainder(grp["area_m2"].to_numpy() / SQM_PER_HA, 2)
        grp["area_mu"] = largest_remainder(grp["area_m2"].to_numpy() / SQM_PER_MU, 2)
        grp["area_m2"] = largest_remainder(grp["area_m2"].to_numpy(), 2)
        total = pd.DataFrame({"check_id": [check], "county_id": ["TOTAL"], "count": [grp["count"].sum()],
                              "parcels": [grp["parcels"].sum()], "slivers": [grp["slivers"].sum()],
                              "area_m2": [round(grp["area_m2"].sum(), 2)],
                              "area_ha": [round(grp["area_ha"].sum(), 2)], "area_mu": [round(grp["area_mu"].sum(), 2)]})
        parts += [grp, total]
    out = pd.concat(parts, ignore_index=True)
    names = {} if counties is None else dict(zip(counties["county_id"], counties["county_name"]))
    out["county_name"] = out["county_id"].map(names).astype(object).fillna("")
    out.loc[out["county_id"] == "TOTAL", "county_name"] = "合计 total"
    out["check_zh"] = outputs.check_zh(out["check_id"])
    for c in ("count", "parcels", "slivers"):
        out[c] = out[c].astype(int)
    return out[cols]


def with_chinese_headers(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with the schema's bilingual headers (``面积(亩) area (mu)``); undeclared columns keep their name."""
    return df.rename(columns={c: outputs.label(c) for c in df.columns})


def top_violations(rows: pd.DataFrame, n: int = 50) -> pd.DataFrame:
    """The ``n`` most serious violations: by severity, then area."""
    if len(rows) == 0:
        return rows
    rank = outputs.severity_rank(rows["severity"])
    return rows.assign(_r=rank).sort_values(["_r", "area_m2"], ascending=[False, False]).drop(columns="_r").head(n)


def expansion_factor(urban_area_m2: pd.Series, existing_km2: pd.Series, cap: float) -> pd.DataFrame:
    """Urban boundary area ÷ existing construction land per county, flagged above ``cap``."""
    factor = (urban_area_m2 / 1e6) / existing_km2.replace(0, np.nan)
    return pd.DataFrame({"value": factor, "limit": cap, "exceeded": factor > cap})


def zone_summary(zones: pd.DataFrame) -> pd.DataFrame:
    """Counties, their share, land share and review count per zone (for display)."""
    total = zones["area_km2"].sum()
    g = zones.groupby("zone", sort=False).agg(zone_zh=("zone_zh", "first"), counties=("zone", "size"),
                                              area_km2=("area_km2", "sum"), review=("review", "sum"))
    g["share"] = g["counties"] / len(zones)
    g["land"] = g["area_km2"] / total if total else np.nan
    return g.reset_index()
