"""The output contract, declared once: layers, fields, checks, severities and zones.

Everything a user sees is derived from these tables: column order, GeoPackage titles and ``gpkg_data_columns``,
QGIS aliases, value maps and legends, map legends and tooltips, CSV/XLSX/HTML headers and the README's field
tables (a test keeps the README in step). One label per field, everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .fields import ESV, FIELDS, FieldSpec  # noqa: F401 - FieldSpec is part of the contract
from .model import INDICATORS


@dataclass(frozen=True)
class LayerSpec:
    name: str
    en: str
    zh: str
    geometry: str | None  # "MultiPolygon" or None for attribute tables
    fields: tuple[str, ...]
    description: str = ""
    passthrough: bool = False  # also keeps the input's own fields (the control lines)

    @property
    def title(self) -> str:
        return f"{self.en} {self.zh}"


@dataclass(frozen=True)
class CheckSpec:
    id: str
    code: str  # short code used in violation ids
    zh: str
    en: str
    kind: str  # "conflict" (between/within lines), "construction" (parcels), "county" (per-county figure)
    severity: str  # default; the rules file may override it
    colour: str

    @property
    def label(self) -> str:
        return f"{self.zh} {self.en}"


@dataclass(frozen=True)
class Category:
    code: str
    zh: str
    en: str
    colour: str
    rank: int = 0  # drawing order: higher is drawn on top

    @property
    def label(self) -> str:
        return f"{self.zh} {self.en}"



_CONFLICT_FIELDS = ("violation_id", "check_id", "check_zh", "severity", "severity_zh", "layer", "control_id",
                    "other_layer", "other_control_id", "county_id", "county_name", "area_m2", "area_ha", "area_mu",
                    "centroid_lon", "centroid_lat", "note")
_VIOLATION_FIELDS = ("violation_id", "check_id", "check_zh", "severity", "severity_zh", "parcel_id", "control_id",
                     "control_name", "control_code", "overlap", "county_id", "county_name", "area_m2", "area_ha",
                     "area_mu", "centroid_lon",
                     "centroid_lat", "detected_on", "first_detected_on", "change", "change_zh", "new_area_m2",
                     "new_area_ha", "new_area_mu", "continues_ids", "note")
# added by the year-on-year check (zoning.epochs), not by the checks themselves
EPOCH_FIELDS = ("first_detected_on", "change", "change_zh", "new_area_m2", "new_area_ha", "new_area_mu",
                "continues_ids")
_SUMMARY_FIELDS = ("county_id", "county_name", "check_id", "check_zh", "count", "parcels", "slivers", "area_m2",
                   "area_ha", "area_mu", "new_count", "new_area_m2", "new_area_ha", "new_area_mu",
                   "previous_count", "rectified_count", "rectification_rate", "expansion_factor", "expansion_cap",
                   "builtup_before_m2", "builtup_after_m2", "note")
_LINE_FIELDS: tuple[str, ...] = ()

LAYERS: dict[str, LayerSpec] = {s.name: s for s in [
    LayerSpec("zones", "Main function zones", "主体功能区", "MultiPolygon", (),
              "County classification: one row per county with its zone, scores, rule, reason and indicators."),
    LayerSpec("red_line", "Ecological protection red line", "生态保护红线", "MultiPolygon", _LINE_FIELDS,
              "The red line as checked (repaired, in the output CRS).", passthrough=True),
    LayerSpec("farmland", "Permanent basic farmland", "永久基本农田", "MultiPolygon", _LINE_FIELDS,
              "Permanent basic farmland as checked.", passthrough=True),
    LayerSpec("urban_boundary", "Urban development boundary", "城镇开发边界", "MultiPolygon", _LINE_FIELDS,
              "The urban development boundary as checked.", passthrough=True),
    LayerSpec("conflicts", "Control-line conflicts", "三线冲突", "MultiPolygon", _CONFLICT_FIELDS,
              "Overlaps between the three lines and within one line."),
    LayerSpec("violations", "Construction findings", "建设占用问题图斑", "MultiPolygon", _VIOLATION_FIELDS,
              "Construction in the red line, on permanent farmland or outside the urban development boundary; one "
              "row per (check, parcel, control feature). Severity medium means 待核实 (to be verified)."),
    LayerSpec("parcels", "Parcel ledger", "图斑台账", "MultiPolygon",
              ("parcel_id", "county_id", "county_name", "zone", "area_m2", "area_ha", "area_mu", "red_line_m2",
               "red_line_ha", "red_line_mu", "farmland_m2", "farmland_ha", "farmland_mu", "outside_boundary_m2",
               "outside_boundary_ha", "outside_boundary_mu", "cropland_m2", "cropland_ha", "cropland_mu", "in_red_line",
               "on_farmland", "worst_severity",
               "violation_ids", "verdict", "status", "checked_by", "checked_on", "remark", "rectification_failed",
               "previous_parcel_ids", "follow_up_note"),
              "One row per construction parcel: its area in each line counted once, its findings, and follow-up "
              "fields for the auditor; the parcel's own fields follow.", passthrough=True),
    LayerSpec("rectified", "Rectified findings", "已整改问题图斑", "MultiPolygon",
              _VIOLATION_FIELDS + ("verdict", "status", "checked_by", "checked_on", "remark"),
              "Findings of the earlier run (--previous) gone from the ground: no current finding of the same check "
              "and control feature overlaps them. Their earlier attributes and geometry, with the follow-up the "
              "earlier ledger held for their parcel."),
    LayerSpec("comparison", "Comparison with the official scheme", "与规划方案对比", "MultiPolygon",
              ("county_id", "name", "zone", "reference_zone", "agrees", "margin", "top_factors", "reason"),
              "One row per county: the classified zone beside the reference zone (zoning compare)."),
    LayerSpec("compensation", "Ecological compensation", "生态补偿", "MultiPolygon", (
        "county_id", "name", "zone", "zone_zh", "priority_rank", "priority_class", "priority_score", "priority_basis",
        "esv_yuan", *(f"esv_{v.key}_yuan" for v in ESV.services), "esv_market_yuan", "esv_nonmarket_yuan",
        "esv_without_water_yuan", "esv_per_km2_yuan", "esv_per_capita_yuan", "area_km2", "population", "gdp",
        "red_line_km2", "red_line_share", "ecological_land_km2", "fiscal_gap", "transfer_estimate_yuan", "reason",
        *(f"{k}_ha" for k in ESV.types)),
        "One row per county: ecosystem service value by service (Xie et al. 2015), its market and non-market parts, "
        "the compensation priority and the terms of the transfer the tool can supply (zoning compensate)."),
    LayerSpec("county_summary", "County summary", "县级汇总", None, _SUMMARY_FIELDS,
              "Per county and check: rows, parcels, slivers and area; every county listed, a TOTAL row per check. "
              "Areas count each parcel's area inside a line once (union), whatever the overlaps of its features."),
]}

ZONE_FIELDS = ("county_id", "name", "zone", "zone_zh", "zone_unconstrained", "moved_by_quota", "quota_cost",
               "score_urbanization", "score_grain_production",
               "score_ecological", "margin", "rule", "review", "review_reasons", "reason", "top_factors", "missing",
               "low_confidence", "stability", "alt_zone", "admin_type", *INDICATORS, "pop_density_source",
               "statistics_source", "landcover_cells", "dem_cells")

_C = CheckSpec
CHECKS: dict[str, CheckSpec] = {c.id: c for c in [
    _C("red_line_farmland_overlap", "ERLxPBF", "生态保护红线与永久基本农田重叠", "red line × farmland", "conflict", "high",
       "#984ea3"),
    _C("red_line_urban_overlap", "ERLxUDB", "生态保护红线与城镇开发边界重叠", "red line × urban boundary", "conflict",
       "high", "#ff7f00"),
    _C("farmland_urban_overlap", "PBFxUDB", "永久基本农田与城镇开发边界重叠", "farmland × urban boundary", "conflict",
       "high", "#a65628"),
    _C("self_overlap", "SELF", "同一控制线内部重叠", "overlap within one line", "conflict", "medium", "#377eb8"),
    _C("construction_in_red_line", "CON-ERL", "建设占用生态保护红线", "construction in the red line", "construction",
       "critical", "#7f0000"),
    _C("construction_on_farmland", "CON-PBF", "建设占用永久基本农田", "construction on permanent farmland",
       "construction", "high", "#e34a33"),
    _C("construction_outside_urban_boundary", "CON-OUT", "城镇开发边界外建设", "construction outside the urban boundary",
       "construction", "medium", "#fdbb84"),
    _C("builtup_gain_red_line", "LCC-ERL", "生态保护红线内建设用地增加", "built-up gain in the red line", "county",
       "high", "#67000d"),
    _C("builtup_gain_farmland", "LCC-PBF", "永久基本农田上建设用地增加", "built-up gain on permanent farmland", "county",
       "high", "#b30000"),
    _C("urban_expansion", "UEX", "城镇开发边界扩展倍数超限", "urban boundary expansion above the cap", "county", "high",
       "#6a51a3"),
]}

SEVERITIES: dict[str, Category] = {c.code: c for c in [
    Category("critical", "严重", "critical", "#7f0000", 3),
    Category("high", "较重", "high", "#e34a33", 2),
    Category("medium", "待核实", "medium (to verify)", "#fdbb84", 1),
    Category("low", "轻微", "low", "#fee8c8", 0),
]}

ZONES: dict[str, Category] = {c.code: c for c in [
    Category("urbanization", "城镇化地区", "Urbanization", "#e31a1c"),
    Category("grain_production", "农产品主产区", "Grain production", "#f2c14e"),
    Category("ecological", "重点生态功能区", "Ecological", "#2e8b57"),
]}

LINES: dict[str, Category] = {c.code: c for c in [
    Category("red_line", "生态保护红线", "red line", "#d7191c"),
    Category("farmland", "永久基本农田", "permanent farmland", "#ffd700"),
    Category("urban_boundary", "城镇开发边界", "urban boundary", "#7b3294"),
]}
LINE_CODES = {"red_line": "ERL", "farmland": "PBF", "urban_boundary": "UDB"}

# coded fields shown through a value map (QGIS) or a label column (tables)
VALUE_MAPS: dict[str, dict[str, Category | CheckSpec]] = {
    "zone": ZONES, "severity": SEVERITIES, "check_id": CHECKS, "layer": LINES, "other_layer": LINES,
    "alt_zone": ZONES, "reference_zone": ZONES, "zone_unconstrained": ZONES, "worst_severity": SEVERITIES,
}
VERDICTS: dict[str, Category] = {c.code: c for c in [
    Category("待核实", "待核实", "to verify", "#fdbb84"), Category("合法", "合法", "lawful", "#1a9850"),
    Category("违法", "违法", "unlawful", "#d73027"),
]}
STATUSES: dict[str, Category] = {c.code: c for c in [
    Category("未整改", "未整改", "not rectified", "#d73027"), Category("整改中", "整改中", "being rectified", "#fdbb84"),
    Category("已整改", "已整改", "rectified", "#1a9850"),
]}
CHANGES: dict[str, Category] = {c.code: c for c in [
    Category("new", "新增", "new", "#d7301f"), Category("expanded", "扩建", "expanded", "#fc8d59"),
    Category("existing", "原有", "existing", "#bdbdbd"),
]}
PRIORITIES: dict[str, Category] = {c.code: c for c in [
    Category("first", "一级", "first", "#08519c", 2), Category("second", "二级", "second", "#6baed6", 1),
    Category("third", "三级", "third", "#deebf7", 0),
]}
VALUE_MAPS.update({"verdict": VERDICTS, "status": STATUSES, "change": CHANGES, "priority_class": PRIORITIES})
AGREEMENT: dict[str, Category] = {c.code: c for c in [
    # a palette of its own: the zones' red and green would read as zones
    Category("true", "一致", "agrees", "#67a9cf"), Category("false", "不一致", "disagrees", "#762a83"),
]}


def columns(layer: str, present=None) -> list[str]:
    """The declared column order of ``layer``, limited to ``present`` columns when given (extras keep order)."""
    spec = LAYERS[layer]
    names = list(ZONE_FIELDS if layer == "zones" else spec.fields)
    if present is None:
        return names
    present = list(present)
    return [c for c in names if c in present] + [c for c in present if c not in names and c != "geometry"]


def label(name: str) -> str:
    """The one bilingual label of a field (the name itself for undeclared fields)."""
    f = FIELDS.get(name)
    return f.label if f else name


def zh(name: str) -> str:
    f = FIELDS.get(name)
    return f.zh if f else name


def _lookup(codes, table: dict, default=None):
    # a handful of distinct codes in many rows: look each up once
    s = codes if isinstance(codes, pd.Series) else pd.Series(np.asarray(codes, dtype=object))
    idx, uniq = pd.factorize(s, use_na_sentinel=False)
    u = pd.Series(np.asarray(uniq, dtype=object))
    out = u.map(table)
    out = out.fillna(u.astype(str)) if default is None else out.fillna(default)
    return out.to_numpy()[idx]


def check_zh(check_ids):
    return _lookup(check_ids, {k: c.zh for k, c in CHECKS.items()})


def severity_zh(codes):
    return _lookup(codes, {k: c.zh for k, c in SEVERITIES.items()})


def severity_rank(codes):
    return _lookup(codes, {k: c.rank for k, c in SEVERITIES.items()}, -1).astype(int)


def field_table(layer: str) -> str:
    """A Markdown table of a layer's fields (the README embeds these; a test keeps them equal)."""
    rows = ["| field | 中文 | type | unit | meaning |", "|---|---|---|---|---|"]
    for c in columns(layer):
        f = FIELDS[c]
        rows.append(f"| `{f.name}` | {f.zh} | {f.type} | {f.unit} | {f.description or f.en} |")
    return "\n".join(rows)


def change_zh(codes):
    return _lookup(codes, {k: c.zh for k, c in CHANGES.items()})


def fields_by_label() -> dict[str, str]:
    """Bilingual header → field name, to read violations.csv or report.xlsx back by field name
    (``pd.read_csv(p).rename(columns=fields_by_label())``)."""
    return {f.label: f.name for f in FIELDS.values()}
