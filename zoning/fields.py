"""The field catalogue of the output contract: one bilingual label, type, unit and description per field name,
whatever layer holds it (:mod:`zoning.outputs` declares the layers, their field order and the coded values)."""
from __future__ import annotations

from dataclasses import dataclass

from .compensation import load_factors
from .model import INDICATORS


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str  # "text", "int", "real", "bool", "date"
    en: str
    zh: str
    unit: str = ""
    description: str = ""

    @property
    def label(self) -> str:
        """Bilingual header: ``面积(亩) area (mu)``."""
        return f"{self.zh} {self.en}"


_F = FieldSpec
_FIELDS = [
    # identification
    _F("county_id", "text", "county code", "县级行政区代码", description="6-digit county-level division code"),
    _F("county_name", "text", "county", "县级行政区名称"),
    _F("name", "text", "name", "名称"),
    # classification
    _F("zone", "text", "zone (code)", "主体功能区类型代码",
       description="urbanization, grain_production or ecological"),
    _F("zone_zh", "text", "zone", "主体功能区类型"),
    _F("score_urbanization", "real", "urbanization score", "城镇化得分", "1-5"),
    _F("score_grain_production", "real", "grain production score", "农业得分", "1-5"),
    _F("score_ecological", "real", "ecological score", "生态得分", "1-5"),
    _F("margin", "real", "score margin", "得分差", description="best score minus second best"),
    _F("rule", "text", "rule", "判定规则",
       description="the deciding rule's Chinese name and id, '强城镇化 | strong_urban' (highest_score, tie_break or no_data "
                   "when no rule fired); scripts take the part after ' | '"),
    _F("review", "bool", "needs review", "需复核"),
    _F("review_reasons", "text", "review reasons", "复核原因"),
    _F("reason", "text", "reason", "判定理由"),
    _F("top_factors", "text", "top factors", "主导因子"),
    _F("missing", "text", "missing indicators", "缺失指标"),
    _F("low_confidence", "bool", "low confidence", "低置信度", description="fewer than 3 land-cover cells"),
    _F("stability", "real", "stability", "稳定性", description="share of sensitivity runs with the same zone"),
    _F("alt_zone", "text", "alternative zone", "备选类型"),
    _F("admin_type", "text", "administrative type", "行政区类型"),
    _F("pop_density_source", "text", "population source", "人口数据来源",
       description="the statistics table's name, census 2020, population raster or populated places: the first "
                   "that has a figure"),
    _F("statistics_source", "text", "statistics source", "统计数据来源",
       description="per figure, where it came from: 'population: stats.csv; urbanization_rate, …: census 2020 "
                   "(leiii)'"),
    _F("landcover_cells", "real", "land-cover cells", "土地覆被像元数", "cells"),
    _F("dem_cells", "real", "DEM cells", "高程像元数", "cells"),
    # control-line checks
    _F("violation_id", "text", "violation id", "问题图斑编号",
       description="<county>-<check code>-<parcel or control id>[-<control id>], derived from content only"),
    _F("check_id", "text", "check (code)", "检查项代码"),
    _F("check_zh", "text", "check", "检查项"),
    _F("severity", "text", "severity (code)", "严重程度代码"),
    _F("severity_zh", "text", "severity", "严重程度"),
    _F("parcel_id", "text", "parcel id", "建设图斑编号"),
    _F("control_id", "text", "control feature id", "管控要素编号"),
    _F("control_name", "text", "control feature name", "管控要素名称"),
    _F("control_code", "text", "control feature code", "管控要素代码"),
    _F("layer", "text", "control line", "控制线图层"),
    _F("other_layer", "text", "other control line", "另一控制线图层"),
    _F("other_control_id", "text", "other control feature id", "另一管控要素编号"),
    _F("overlap", "bool", "overlaps another feature of the line", "与同层其他要素重叠",
       description="the part is also inside another feature of the same line (totals count it once)"),
    _F("area_m2", "real", "area (m²)", "面积(平方米)", "m²"),
    _F("area_ha", "real", "area (ha)", "面积(公顷)", "ha"),
    _F("area_mu", "real", "area (mu)", "面积(亩)", "亩", "1 亩 = 10000/15 m²"),
    _F("centroid_lon", "real", "centroid longitude", "中心经度", "°"),
    _F("centroid_lat", "real", "centroid latitude", "中心纬度", "°"),
    _F("detected_on", "text", "detected on", "发现日期"),
    _F("note", "text", "note", "说明"),
    _F("change", "text", "change since the baseline (code)", "变化类型代码",
       description="new: the parcel was not in the baseline survey; expanded: it grew; existing: already there"),
    _F("change_zh", "text", "change since the baseline", "变化类型"),
    _F("first_detected_on", "text", "first detected on", "首次发现日期",
       description="carried from the earlier run (--previous), else the detection date, else the run date"),
    _F("new_count", "int", "new or expanded rows", "新增数量"),
    _F("continues_ids", "text", "continues earlier findings", "延续上期问题图斑编号",
       description="the earlier run's findings (--previous) this one continues on the ground, '; '-separated; "
                   "empty: found for the first time"),
    _F("previous_count", "int", "earlier findings", "上期问题数",
       description="findings of the earlier run (--previous) placed in this county by their ground"),
    _F("rectified_count", "int", "rectified", "已整改数",
       description="earlier findings that no current finding of the same check and control feature continues"),
    _F("rectification_rate", "real", "rectification rate", "整改率",
       description="rectified_count ÷ previous_count (null where there were no earlier findings)"),
    _F("previous_parcel_ids", "text", "earlier parcels on its ground", "上期图斑编号",
       description="the earlier run's parcels on this parcel's ground that held an auditor's record (verdict, "
                   "status, checker, date or remark), whose follow-up it carries, '; '-separated"),
    _F("follow_up_note", "text", "follow-up note", "核查信息说明",
       description="where merged earlier parcels carried different verdicts: each, and that the strictest was kept"),
    _F("rectification_failed", "bool", "marked rectified, still found", "整改不到位",
       description="the earlier ledger says 已整改 but the parcel still has findings"),
    _F("reference_zone", "text", "official zone (code)", "规划主体功能区类型代码",
       description="the zone of the reference (official) scheme"),
    _F("agrees", "bool", "agrees with the reference", "与规划一致", description="null where the county is not in the reference"),
    _F("in_red_line", "bool", "in the red line", "占用生态保护红线"),
    _F("on_farmland", "bool", "on permanent farmland", "占用永久基本农田"),
    _F("worst_severity", "text", "worst severity", "最高严重程度", description="the most severe finding on the parcel"),
    _F("violation_ids", "text", "finding ids", "问题编号", description="the parcel's rows in violations, '; '-separated"),
    _F("verdict", "text", "verdict", "核查结论", description="待核实 (to verify), 合法 (lawful) or 违法 (unlawful)"),
    _F("status", "text", "rectification", "整改情况", description="未整改, 整改中 or 已整改"),
    _F("checked_by", "text", "checked by", "核查人"),
    _F("checked_on", "date", "checked on", "核查日期"),
    _F("remark", "text", "remark", "备注"),
    _F("count", "int", "rows", "数量"),
    _F("parcels", "int", "parcels", "图斑数"),
    _F("slivers", "int", "slivers (not listed)", "碎片数(未列出)"),
    _F("expansion_factor", "real", "expansion factor", "扩展倍数"),
    _F("expansion_cap", "real", "expansion cap", "扩展倍数上限"),
    _F("builtup_before_m2", "real", "built-up, earlier land cover (m²)", "前期建设用地面积(平方米)", "m²",
       "built-up area of the county's part of the line in the earlier land cover (coverage-weighted, true area)"),
    _F("builtup_after_m2", "real", "built-up, current land cover (m²)", "本期建设用地面积(平方米)", "m²",
       "built-up area of the county's part of the line in the current land cover"),
]
_FIELDS += [_F(k, "real", en, zh) for k, (en, zh) in INDICATORS.items()]
_FIELDS += [_F(f"{line}_{u}", "real", f"{en} ({unit_en})", f"{zh}面积({unit_zh})", unit_en)
            for line, en, zh in (("red_line", "in the red line", "占用红线"), ("farmland", "on farmland", "占用农田"),
                                 ("outside_boundary", "outside the urban boundary", "城镇开发边界外"),
                                 ("cropland", "on cultivated land", "占用耕地"),
                                 ("new_area", "new since the baseline", "新增"))
            for u, unit_en, unit_zh in (("m2", "m²", "平方米"), ("ha", "ha", "公顷"), ("mu", "亩", "亩"))]
ESV = load_factors()  # the services and ecosystem types name the compensation layer's fields
_FIELDS += [_F("esv_yuan", "real", "ecosystem service value (yuan/a)", "生态系统服务价值(元/年)", "yuan/a")]
_FIELDS += [_F(f"esv_{v.key}_yuan", "real", f"{v.en} (yuan/a)", f"{v.zh}价值(元/年)", "yuan/a") for v in ESV.services]
_FIELDS += [_F(f"{k}_ha", "real", f"{t['en']} (ha)", f"{t['zh']}面积(公顷)", "ha") for k, t in ESV.types.items()]
_FIELDS += [
    _F("esv_market_yuan", "real", "market services (yuan/a)", "市场价值(元/年)", "yuan/a",
       "food, raw materials and water supply"),
    _F("esv_nonmarket_yuan", "real", "non-market services (yuan/a)", "非市场价值(元/年)", "yuan/a",
       "the eight regulating, supporting and cultural services"),
    _F("esv_without_water_yuan", "real", "value without water bodies (yuan/a)", "不含水系价值(元/年)", "yuan/a",
       "water's hydrological regulation makes one hm² of water worth 5.5 hm² of broadleaf forest"),
    _F("esv_per_km2_yuan", "real", "value per km² (yuan/a)", "地均价值(元/平方公里·年)", "yuan/km²·a"),
    _F("esv_per_capita_yuan", "real", "value per resident (yuan/a)", "人均价值(元/人·年)", "yuan/person·a",
       "null where the county has no population figure (the reason says so)"),
    _F("population", "real", "residents", "常住人口", "persons", "--attributes, else the 2020 census"),
    _F("gdp", "real", "GDP (yuan)", "地区生产总值(元)", "yuan", "--attributes: gdp, or gdp_per_capita × population"),
    _F("priority_score", "real", "priority score", "补偿优先级指数",
       description="non-market value per yuan of GDP where GDP is given, else per resident"),
    _F("priority_basis", "text", "score basis", "优先级依据", description="gdp or population"),
    _F("priority_rank", "int", "priority rank", "补偿优先次序", description="1 = compensated first"),
    _F("priority_class", "text", "priority class", "补偿优先等级",
       description="first (一级): the first fifth by rank; second (二级): the next three tenths; third (三级)"),
    _F("red_line_km2", "real", "red line (km²)", "生态保护红线面积(平方公里)", "km²"),
    _F("red_line_share", "real", "red line share", "生态保护红线占比"),
    _F("ecological_land_km2", "real", "ecological land (km²)", "生态用地面积(平方公里)", "km²",
       "forest, shrub, grass, wetland, water, glacier and snow"),
    _F("zone_unconstrained", "text", "zone without the quotas", "无配额约束的主体功能区",
       description="the model's own zone (classify --quota)"),
    _F("moved_by_quota", "bool", "moved by the quotas", "因配额调整"),
    _F("quota_cost", "real", "quota cost (score difference)", "配额调整代价(得分差)",
       description="score of the unconstrained zone minus score of the zone given; 0 when not moved"),
    _F("fiscal_gap", "real", "standard fiscal gap (yuan)", "标准财政收支缺口(元)", "yuan"),
    _F("transfer_estimate_yuan", "real", "transfer estimate (yuan)", "转移支付估算(元)", "yuan",
       "fiscal gap × the coefficient given: an estimate, the central formula's coefficients are not published"),
]
FIELDS: dict[str, FieldSpec] = {f.name: f for f in _FIELDS}
