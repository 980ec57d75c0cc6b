"""Audit tables: county summary with reconciled totals, bilingual headers, top violations (pure, no I/O)."""
from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd
import shapely

from . import areas, outputs
from .areas import SQM_PER_HA, SQM_PER_MU, largest_remainder
from .controllines import polygonal



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
    rank = np.asarray(outputs.severity_rank(rows["severity"]), dtype=float)
    # positions first (a stable sort of two numeric keys), rows after: a chunk's frame is only indexed, not copied
    order = np.lexsort((-rows["area_m2"].to_numpy(dtype=float), -rank))[:n]
    return rows.iloc[order]


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


def display_width(text: str) -> int:
    """Columns a terminal gives ``text``: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in str(text))


def pad(text, width: int, right: bool = False) -> str:
    """``text`` padded to ``width`` terminal columns (right-aligned with ``right``)."""
    fill = " " * max(0, width - display_width(str(text)))
    return fill + str(text) if right else str(text) + fill


def zone_lines(zones: pd.DataFrame) -> list[str]:
    """The zone table as the terminal and zoning.log show it, with the review line."""
    lines = [pad("zone", 18) + pad("类型", 16) + "".join(pad(h, 9, True) for h in ("counties", "share", "land",
                                                                                 "review"))]
    for r in zone_summary(zones).itertuples():
        lines.append(pad(r.zone, 18) + pad(r.zone_zh, 16) + pad(f"{r.counties:,}", 9, True) +
                     pad(f"{r.share:.0%}", 9, True) + pad(f"{r.land:.0%}", 9, True) + pad(f"{int(r.review):,}", 9, True))
    why = review_reasons(zones)
    if len(why):
        lines.append(f"to review 需复核: {int(zones['review'].sum())} counties — " +
                     ", ".join(f"{k} {v}" for k, v in why.items()) + " (field review_reasons)")
    return lines


def check_lines(summary: pd.DataFrame) -> list[str]:
    """The check totals as the terminal and zoning.log show them."""
    totals = summary[summary["county_id"] == "TOTAL"]
    if totals.empty or not totals["count"].any():
        return ["no conflicts and no violations"]
    new = "new_count" in totals.columns
    lines = [f"{'check':<38}{'count':>11}{'slivers':>9}{'ha':>16}" + pad("亩", 17, True) +
             (f"{'new':>11}" + pad("new 亩", 17, True) if new else "") + "   (areas: union per parcel)"]
    for _, r in totals.iterrows():
        line = f"{r['check_id']:<38}{r['count']:>11,}{r['slivers']:>9,}{r['area_ha']:>16,.2f}{r['area_mu']:>17,.2f}"
        if new and r["new_count"] == r["new_count"]:  # NaN for checks without a baseline figure
            line += f"{int(r['new_count']):>11,}{r['new_area_mu']:>17,.2f}"
        lines.append(line)
    return lines


def review_reasons(zones: pd.DataFrame) -> pd.Series:
    """How many counties go to review for each kind of reason (a county may have several), most frequent first:
    the reason without its figure ("得分接近 small margin")."""
    if "review_reasons" not in zones or not zones["review"].any():
        return pd.Series(dtype="int64")
    kinds = zones.loc[zones["review"], "review_reasons"].fillna("").str.split("; ").explode().str.strip()
    kinds = kinds[kinds != ""].str.replace(r"\s*(\([^()]*\)|[-\d.,%]+)$", "", regex=True)
    return kinds.value_counts()


TOTALS_NOTE = ("面积口径：县名后的“占地”是该县全部建设占用问题图斑所占土地（各检查项合并，同一块地只计一次）；其后各检查项"
               "的面积各自按并集计，彼此不相加——同一图斑可能同时占用红线和永久基本农田。Areas: after the county's name, "
               "the ground all its construction findings cover, counted once across checks; then each check's own "
               "area, also counted once; checks are not added together, since one parcel may break several lines. "
               "A list's rows may add up to more than its total where findings overlap (column 重叠 overlap).")


def ground_by_county(batches, crs) -> dict:
    """Per county, the ground its construction findings cover, counted once across checks and features (亩):
    ``batches`` yield (county ids, geometries in ``crs``) in county order, as the report reads them."""
    from .controllines import group_reduce

    merged: dict = {}
    for county, geoms in batches:
        if not len(county):
            continue
        alb = areas.to_crs(np.asarray(geoms, dtype=object), crs, areas.CHINA_ALBERS)
        keys, parts = group_reduce(np.asarray(county, dtype=object), polygonal(alb))
        for k, g in zip(keys, parts):  # a county split between two batches is united across them
            merged[k] = g if k not in merged else shapely.union(merged[k], g)
    return {k: float(shapely.area(polygonal(g))) / SQM_PER_MU for k, g in merged.items()}


def check_areas_by_county(summary: pd.DataFrame) -> dict:
    """Per county, each construction check with findings: (Chinese name, count, area in 亩 counted once)."""
    rows = summary[(summary["county_id"] != "TOTAL") & (summary["count"] > 0) &
                   summary["check_id"].isin(check_order(("construction",)))]
    out: dict = {}
    for cid, name, n, mu in zip(rows["county_id"].astype(str), rows["check_zh"], rows["count"], rows["area_mu"]):
        out.setdefault(cid, []).append((name, int(n), float(mu)))
    return out


def provenance_table(prov: dict | None, survey: str = "") -> pd.DataFrame:
    """What a filed report was made from, one row per item (bilingual labels): project, survey period, run date,
    tool, model, rules, then each input's file, modification date, size and SHA-256."""
    if not prov:
        return pd.DataFrame(columns=["项目 item", "值 value"])
    rows = [("项目/区域 project", prov.get("project") or "—"), ("调查期 survey period", survey or "—"),
            ("运行时间 run date", prov.get("run_date", "")), ("工具 tool", prov.get("tool", "")),
            ("模型 model", prov.get("model") or "—"), ("规则 rules", prov.get("rules") or "—")]
    for f in prov.get("inputs", []):
        if "sha256" in f:
            rows.append((f"输入 input: {f['role']}", f"{f['file']} · 修改 {f['modified']} · {f['bytes']:,} bytes · "
                         f"SHA-256 {f['sha256']}"))
        else:
            rows.append((f"输入 input: {f['role']}", f["file"]))
    return pd.DataFrame(rows, columns=["项目 item", "值 value"])


OUTSIDE = "县界外 outside the counties"


def totals_by_check(summary: pd.DataFrame) -> pd.DataFrame:
    """The ``TOTAL`` row of every check, most severe first, bilingual headers (and new figures with a baseline)."""
    t = summary[summary["county_id"] == "TOTAL"].set_index("check_id")
    t = t.reindex([c for c in check_order() if c in t.index]).reset_index()
    cols = ["check_zh", "count", "parcels", "area_ha", "area_mu"] + \
        (["new_count", "new_area_mu"] if "new_count" in t and t["new_count"].notna().any() else [])
    out = t[cols].copy()
    for c in ("count", "parcels", "new_count"):
        if c in out:
            out[c] = out[c].fillna(0).astype("int64")
    return with_chinese_headers(out)


def check_order(kinds: tuple[str, ...] = ("construction", "conflict")) -> list[str]:
    """Check ids most severe first (construction before conflicts at equal severity): the filing order."""
    specs = [c for c in outputs.CHECKS.values() if c.kind in kinds]
    return [c.id for c in sorted(specs, key=lambda c: (-outputs.SEVERITIES[c.severity].rank, kinds.index(c.kind)))]


def wide_summary(summary: pd.DataFrame, areas: bool = True, counts: bool = True) -> pd.DataFrame:
    """One row per county (zeros included), a count and an area (亩) column per check in severity order, new counts
    and areas where a baseline was given, and the ``TOTAL`` row last; headers bilingual, for filing.
    ``areas=False``: counts only, ``counts=False``: areas only (each a summary that prints legibly)."""
    s = summary[summary["check_id"].isin(check_order())]
    if len(s) == 0:
        return pd.DataFrame({"县代码 county id": [], "县名称 county": []})
    checks = [c for c in check_order() if c in set(s["check_id"])]
    new = "new_count" in s and s["new_count"].notna().any()
    values = ["count", "area_mu"] + (["new_count", "new_area_mu"] if new else [])
    if not areas:
        values = ["count"] + (["new_count"] if new else [])
    elif not counts:
        values = ["area_mu"] + (["new_area_mu"] if new else [])
    wide = s.pivot_table(index=["county_id", "county_name"], columns="check_id", values=values, aggfunc="first",
                         sort=False)
    counties = wide.index.get_level_values("county_id")
    wide = pd.concat([wide[counties != "TOTAL"].sort_index(level="county_id"), wide[counties == "TOTAL"]])
    names = pd.Series(wide.index.get_level_values(1), dtype=object).replace("", OUTSIDE)
    out = pd.DataFrame({"县代码 county id": wide.index.get_level_values(0), "县名称 county": names.to_numpy()})
    unit = {"count": "数量 count", "area_mu": "面积(亩) mu", "new_count": "新增数量 new", "new_area_mu": "新增面积(亩) new mu"}
    for c in checks:
        for v in values:
            if (v, c) in wide.columns:
                col = wide[(v, c)].to_numpy()
                out[f"{outputs.CHECKS[c].zh} {unit[v]}"] = col.astype(float).round(0).astype("int64") \
                    if v.endswith("count") and not pd.isna(col).any() else col
    return out


RECTIFICATION_RULE = ("整改率 = 已整改的上期问题图斑数 ÷ 上期问题图斑数。已整改：上期问题图斑的地块上，本期同一检查项、同一管控要素已无"
                      "问题图斑（按地块位置判断，不按编号）。Rectification rate = earlier findings rectified ÷ all "
                      "earlier findings; rectified: no current finding of the same check and control feature lies on "
                      "the earlier finding's ground (matched by ground, not by number).")


def rectification_table(summary: pd.DataFrame, counties: bool = False) -> pd.DataFrame:
    """Earlier findings, rectified and the rate per construction check (``TOTAL`` rows), or per county and check
    for the counties that had earlier findings; bilingual headers. Empty without an earlier run."""
    if "previous_count" not in summary or summary["previous_count"].isna().all():
        return pd.DataFrame()
    s = summary[summary["check_id"].isin(check_order(("construction",))) & summary["previous_count"].notna()]
    if counties:
        s = s[(s["county_id"] != "TOTAL") & (s["previous_count"] > 0)].sort_values(["county_id", "check_id"])
        cols = ["county_id", "county_name", "check_zh"]
    else:
        s = s[s["county_id"] == "TOTAL"].set_index("check_id")
        s = s.reindex([c for c in check_order(("construction",)) if c in s.index]).reset_index()
        cols = ["check_zh"]
    out = s[cols + ["previous_count", "rectified_count", "rectification_rate"]].copy()
    for c in ("previous_count", "rectified_count"):
        out[c] = out[c].fillna(0).astype("int64")
    out["rectification_rate"] = out["rectification_rate"].map(lambda v: "" if pd.isna(v) else f"{v:.1%}")
    if not counties and len(out):  # all checks together
        prev, rect = int(out["previous_count"].sum()), int(out["rectified_count"].sum())
        out.loc[len(out)] = ["合计 total", prev, rect, f"{rect / prev:.1%}" if prev else ""]
    return with_chinese_headers(out)


def expansion_rows(counties, urban: np.ndarray, rule: dict) -> pd.DataFrame | None:
    """Urban boundary area ÷ existing construction land per county (where the counties carry that figure);
    ``counties``: :class:`zoning.violations.Counties`."""
    fld = rule.get("existing_field")
    if not rule.get("enabled", True) or counties is None or counties.extra is None or fld not in counties.extra:
        return None
    tree = shapely.STRtree(urban)
    ic, iu = tree.query(counties.geoms, predicate="intersects")
    inter = shapely.area(polygonal(shapely.intersection(counties.geoms[ic], urban[iu])))
    per = pd.Series(inter).groupby(ic).sum().reindex(range(len(counties.ids)), fill_value=0.0)
    existing = pd.to_numeric(counties.extra[fld], errors="coerce").reset_index(drop=True)
    ef = expansion_factor(per, existing, rule["cap"])
    u = areas.units(per.to_numpy())
    rows = pd.DataFrame({"county_id": counties.ids, "county_name": counties.names, "check_id": "urban_expansion",
                         "check_zh": outputs.CHECKS["urban_expansion"].zh,
                         "count": ef["exceeded"].astype(int).to_numpy(), "parcels": 0, "slivers": 0,
                         "area_m2": np.round(per.to_numpy(), 2), "area_ha": np.round(u["area_ha"], 2),
                         "area_mu": np.round(u["area_mu"], 2), "expansion_factor": np.round(ef["value"].to_numpy(), 4),
                         "expansion_cap": rule["cap"]})
    return rows[existing.notna().to_numpy()]
