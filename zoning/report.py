"""Audit tables: county summary with reconciled totals, Chinese headers, top violations (pure, no I/O)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .areas import SQM_PER_HA, SQM_PER_MU, largest_remainder

CHECK_ZH = {
    "red_line_farmland_overlap": "生态保护红线与永久基本农田重叠",
    "red_line_urban_overlap": "生态保护红线与城镇开发边界重叠",
    "farmland_urban_overlap": "永久基本农田与城镇开发边界重叠",
    "self_overlap": "控制线图层内部重叠",
    "construction_in_red_line": "新增建设占用生态保护红线",
    "construction_on_farmland": "新增建设占用永久基本农田",
    "construction_outside_urban_boundary": "新增建设位于城镇开发边界外",
    "urban_expansion": "城镇开发边界扩展倍数",
}
SEVERITY_ZH = {"critical": "严重", "high": "高", "medium": "中", "low": "低"}
HEADERS_ZH = {
    "violation_id": "图斑编号", "check_id": "检查项", "check_zh": "检查项名称", "severity": "严重程度",
    "parcel_id": "建设图斑号", "control_id": "管控要素编号", "other_control_id": "另一管控要素编号",
    "layer": "图层", "county_id": "县级代码", "county_name": "县级名称", "area_m2": "面积(平方米)",
    "area_ha": "面积(公顷)", "area_mu": "面积(亩)", "centroid_lon": "中心经度", "centroid_lat": "中心纬度",
    "detected_on": "发现日期", "note": "说明", "count": "数量", "slivers": "碎片数(未列出)", "zone": "主体功能区",
    "value": "数值", "limit": "限值",
}


def county_summary(rows: pd.DataFrame, slivers: pd.DataFrame | None = None,
                   counties: pd.DataFrame | None = None) -> pd.DataFrame:
    """Count and area per county and check, with a ``TOTAL`` row per check.

    ``area_ha`` and ``area_mu`` are rounded to 0.01 with largest-remainder balancing, so the rounded county rows
    of each check add up exactly to that check's rounded total (which is the rounded exact sum).

    Parameters
    ----------
    rows : ``county_id``, ``check_id``, ``area_m2`` and optionally ``count``: one row per listed violation, or
        partial sums (several chunks of the same county and check add up)
    slivers : optional ``county_id``, ``check_id``, ``slivers`` counts
    counties : optional ``county_id``, ``county_name`` lookup
    """
    cols = ["county_id", "county_name", "check_id", "check_zh", "count", "slivers", "area_m2", "area_ha", "area_mu"]
    if len(rows) == 0 and (slivers is None or len(slivers) == 0):
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("county_id", "county_name", "check_id", "check_zh")
                                          else float) for c in cols})
    rows = rows if "count" in rows else rows.assign(count=1)
    g = rows.groupby(["check_id", "county_id"], sort=True).agg(count=("count", "sum"), area_m2=("area_m2", "sum"))
    g = g.reset_index()
    if slivers is not None and len(slivers):
        s = slivers.groupby(["check_id", "county_id"])["slivers"].sum().reset_index()
        g = g.merge(s, on=["check_id", "county_id"], how="outer")
    else:
        g["slivers"] = 0
    g[["count", "slivers", "area_m2"]] = g[["count", "slivers", "area_m2"]].fillna(0)
    parts = []
    for check, grp in g.groupby("check_id", sort=False):
        grp = grp.sort_values("county_id").copy()
        grp["area_ha"] = largest_remainder(grp["area_m2"].to_numpy() / SQM_PER_HA, 2)
        grp["area_mu"] = largest_remainder(grp["area_m2"].to_numpy() / SQM_PER_MU, 2)
        grp["area_m2"] = largest_remainder(grp["area_m2"].to_numpy(), 2)
        total = pd.DataFrame({"check_id": [check], "county_id": ["TOTAL"], "count": [grp["count"].sum()],
                              "slivers": [grp["slivers"].sum()], "area_m2": [round(grp["area_m2"].sum(), 2)],
                              "area_ha": [round(grp["area_ha"].sum(), 2)], "area_mu": [round(grp["area_mu"].sum(), 2)]})
        parts += [grp, total]
    out = pd.concat(parts, ignore_index=True)
    names = {} if counties is None else dict(zip(counties["county_id"], counties["county_name"]))
    out["county_name"] = out["county_id"].map(names).astype(object).fillna("")
    out.loc[out["county_id"] == "TOTAL", "county_name"] = "合计 total"
    out["check_zh"] = out["check_id"].map(CHECK_ZH).fillna("")
    out["count"] = out["count"].astype(int)
    out["slivers"] = out["slivers"].astype(int)
    return out[cols]


def with_chinese_headers(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with Chinese column headers (with the English key in brackets) and Chinese severities."""
    out = df.copy()
    if "severity" in out:
        out["severity"] = out["severity"].map(lambda s: f"{SEVERITY_ZH.get(s, s)} {s}")
    return out.rename(columns={c: f"{HEADERS_ZH[c]} ({c})" for c in out.columns if c in HEADERS_ZH})


def top_violations(rows: pd.DataFrame, n: int = 50) -> pd.DataFrame:
    """The ``n`` most serious violations: by severity, then area."""
    if len(rows) == 0:
        return rows
    rank = rows["severity"].map({"critical": 0, "high": 1, "medium": 2, "low": 3}).fillna(9)
    return rows.assign(_r=rank).sort_values(["_r", "area_m2"], ascending=[True, False]).drop(columns="_r").head(n)


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
