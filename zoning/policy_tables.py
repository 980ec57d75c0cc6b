"""Tables and terminal lines of the policy features — ecological compensation and quota mode — as the terminal,
zoning.log and the reports show them (pure, no I/O)."""
from __future__ import annotations

import pandas as pd

from . import compensation as comp
from .report import pad


def ranked_lines(layer: pd.DataFrame, n: int = 10) -> list[str]:
    """The ranked table as the terminal and zoning.log show it: the first ``n`` counties and the totals
    (values in 亿元, 10⁸ yuan, as officers report them)."""
    cols = [("rank", 4), ("county 县", 24), ("class 等级", 12), ("ESV 亿元", 12), ("non-market", 12),
            ("w/o water", 12), ("yuan/km²", 14)]
    lines = [" ".join(pad(h, w, i not in (1, 2)) for i, (h, w) in enumerate(cols))]
    cls = {c: zh for c, zh, _en, _ in comp.PRIORITY_CLASSES}
    top = layer.sort_values(["priority_rank", "county_id"], na_position="last").head(n)
    for r in top.itertuples():
        rank = "" if pd.isna(r.priority_rank) else f"{int(r.priority_rank)}"
        vals = [rank, f"{r.name} {r.county_id}".strip(), f"{cls.get(r.priority_class, '')} {r.priority_class}",
                f"{r.esv_yuan / 1e8:,.2f}", f"{r.esv_nonmarket_yuan / 1e8:,.2f}", f"{r.esv_without_water_yuan / 1e8:,.2f}",
                f"{r.esv_per_km2_yuan:,.0f}"]
        lines.append(" ".join(pad(v, w, i not in (1, 2)) for i, (v, (_, w)) in enumerate(zip(vals, cols))))
    t = layer[["esv_yuan", "esv_nonmarket_yuan", "esv_without_water_yuan"]].sum()
    lines.append(f"total 合计 ({len(layer)} counties): ESV {t['esv_yuan'] / 1e8:,.2f} 亿元 a year, non-market "
                 f"{t['esv_nonmarket_yuan'] / 1e8:,.2f}, without water {t['esv_without_water_yuan'] / 1e8:,.2f}")
    return lines

def method_lines(factors: comp.Factors, types: comp.TypeMap, d: float, d_source: str) -> list[str]:
    """The factor table and the legend's mapping, for ``zoning compensate --show``."""
    lines = [f"# {factors.name}; one standard equivalent D = {d:,.2f} yuan/hm²·a ({d_source})",
             "# market services: " + ", ".join(s.key for s in factors.services if s.market),
             pad("type", 18) + pad("类型", 10) + "".join(pad(s.key[:9], 10, True) for s in factors.services)]
    for (k, t), row in zip(factors.types.items(), factors.matrix):
        lines.append(pad(k, 18) + pad(t["zh"], 10) + "".join(pad(f"{x:.2f}", 10, True) for x in row))
    lines += ["", f"# {types.legend} ({types.source}): land-cover code → ecosystem type"]
    for c in sorted(types.shares):
        s = types.shares[c]
        lines.append(f"{c:>5} → " + " + ".join((f"{x:g}·" if x != 1 else "") + f"{k} {factors.types[k]['zh']}"
                                               for k, x in s.items()))
    lines += [f"{c:>5} → no value (valueless)" for c in sorted(types.valueless)]
    return lines

def compensation_method(info: dict | None) -> list[tuple[str, str]]:
    """How the compensation figures were made, as (label, text) rows for the reports' method statement."""
    if not info:
        return []
    d = info.get("equivalent_value_yuan_per_ha")
    return [
        ("生态系统服务价值 ESV method", "当量因子法 equivalent factors: ESV_f = Σ_k A_k · e_kf · D, A_k 生态系统类型面积"
         "(公顷, 椭球面积) area of type k, e_kf 谢高地等 2015 表2 Xie et al. 2015 Table 2 (自然资源学报 30(8):"
         "1243–1254), 14 types × 11 services"),
        ("标准当量价值 D", f"{d:,.2f} 元/公顷·年 yuan/hm²·a ({info.get('equivalent_value_source', '')})"
         if d is not None else ""),
        ("地类对应 land cover → types", f"{info.get('legend', '')}: {info.get('types', '')}"),
        ("优先级 priority", f"{info.get('priority_basis', '')}; 排序第一为最优先 rank 1 first; 一级 first fifth, "
         "二级 next three tenths, 三级 the rest (王女杰等 2010 生态补偿优先级 ECPS, 生态学报 30(23))"),
        ("转移支付 transfer", "重点生态功能区转移支付系数未公开，不作复算 the central formula's coefficients are not "
         "published; the table gives its terms (红线面积, 生态用地, 人口, 主体功能区)"),
    ]

def compensation_table(layer: pd.DataFrame, services: bool = True) -> pd.DataFrame:
    """The ranked compensation table with bilingual headers, values in 万元 (10⁴ yuan) a year."""
    t = layer.sort_values(["priority_rank", "county_id"], na_position="last")
    cls = {c: f"{zh} {c}" for c, zh, _en, _ in comp.PRIORITY_CLASSES}
    out = pd.DataFrame({
        "排序 rank": t["priority_rank"].astype("Int64").astype(object).where(t["priority_rank"].notna(), ""),
        "代码 county_id": t["county_id"].astype(str), "名称 name": t["name"].astype(str),
        "等级 class": t["priority_class"].fillna("").map(lambda v: cls.get(v, v)),
        "指数 score": t["priority_score"].astype(float)})
    if "zone_zh" in t:
        out.insert(3, "主体功能区 zone", t["zone_zh"].fillna("").astype(str))
    w = 1e4
    out["总价值 ESV (万元/年)"] = t["esv_yuan"] / w
    out["非市场 non-market (万元/年)"] = t["esv_nonmarket_yuan"] / w
    out["不含水系 w/o water (万元/年)"] = t["esv_without_water_yuan"] / w
    out["地均 per km² (万元)"] = t["esv_per_km2_yuan"] / w
    out["人均 per resident (元)"] = t["esv_per_capita_yuan"]
    if "red_line_share" in t:
        out["红线占比 red line %"] = t["red_line_share"] * 100
    if services:
        for s in comp.load_factors().services:
            out[f"{s.zh} (万元)"] = t[f"esv_{s.key}_yuan"] / w
    # a filing shows figures, not floats: 万元 to the hundredth, yuan to the unit, shares to the hundredth of a point
    money = [c for c in out.columns if "万元" in c]
    out[money] = out[money].round(2)
    out["人均 per resident (元)"] = out["人均 per resident (元)"].round(0)
    out["指数 score"] = out["指数 score"].round(4)
    if "红线占比 red line %" in out:
        out["红线占比 red line %"] = out["红线占比 red line %"].round(2)
    out["理由 reason"] = t["reason"].astype(str)
    return out.reset_index(drop=True)

def quota_lines(info: dict | None, zones: pd.DataFrame | None = None, n: int = 15) -> list[str]:
    """The quotas with what each group reached, then the moves, as the terminal and zoning.log show them."""
    if not info:
        return []
    lines = [f"quota {info['file']}: {info['moves']} moves, total score difference {info['total_cost']:.3f} "
             f"({info['solver']}, {info['status']}, {info['seconds']:.2f} s)"]
    for c in info["constraints"]:
        got = c["achieved"]
        shown = ", ".join(f"{g} {v:.1%}" for g, v in list(got.items())[:6]) + (" …" if len(got) > 6 else "")
        lines.append(f"  {c['label']}: {shown}")
    if zones is not None and "moved_by_quota" in zones:
        moved = zones[zones["moved_by_quota"].astype(bool)].sort_values(["quota_cost", "county_id"],
                                                                       ascending=[False, True])
        if len(moved):
            lines.append(pad("moved 调整", 28) + pad("from", 18) + pad("to", 18) + pad("cost", 8, True))
            for r in moved.head(n).itertuples():
                lines.append(pad(f"{r.name} {r.county_id}", 28) + pad(r.zone_unconstrained, 18) + pad(r.zone, 18)
                             + pad(f"{r.quota_cost:.3f}", 8, True))
            if len(moved) > n:
                lines.append(f"  … and {len(moved) - n} more (field moved_by_quota)")
    return lines
