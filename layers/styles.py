"""QGIS styles (QML) for the output layers: the same colours as the web map, Chinese field aliases."""
from __future__ import annotations

import logging
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pandas as pd

log = logging.getLogger("zoning")

ZONE_COLOURS = {"urbanization": "#e31a1c", "grain_production": "#f2c14e", "ecological": "#2e8b57"}
ZONE_LABELS = {"urbanization": "城镇化地区 Urbanization", "grain_production": "农产品主产区 Grain production",
               "ecological": "重点生态功能区 Ecological"}
SEVERITY_COLOURS = {"critical": "#7f0000", "high": "#e34a33", "medium": "#fdbb84", "low": "#fee8c8"}
SEVERITY_LABELS = {"critical": "严重 critical", "high": "高 high", "medium": "中 medium (待核实)", "low": "低 low"}
CHECK_COLOURS = {"red_line_farmland_overlap": "#984ea3", "red_line_urban_overlap": "#ff7f00",
                 "farmland_urban_overlap": "#a65628", "self_overlap": "#377eb8"}
CHECK_LABELS = {"red_line_farmland_overlap": "红线∩农田 red line × farmland",
                "red_line_urban_overlap": "红线∩城镇边界 red line × urban boundary",
                "farmland_urban_overlap": "农田∩城镇边界 farmland × urban boundary",
                "self_overlap": "图层内重叠 self-overlap"}
# conventional colours of the three control lines
LINE_STYLES = {"red_line": ("#d7191c", "生态保护红线"), "farmland": ("#ffd700", "永久基本农田"),
               "urban_boundary": ("#7b3294", "城镇开发边界")}

ALIASES = {
    "county_id": "县级行政区代码", "name": "名称", "zone": "主体功能区类型(代码)", "zone_zh": "主体功能区类型",
    "score_urbanization": "城镇化得分", "score_grain_production": "农业得分", "score_ecological": "生态得分",
    "margin": "得分差", "rule": "判定规则", "review": "需复核", "reason": "判定理由", "area_km2": "面积(平方公里)",
    "built_up_share": "建设用地占比", "cropland_share": "耕地占比", "ecological_share": "生态用地占比",
    "barren_share": "裸地占比", "water_share": "水域占比", "elevation_mean": "平均海拔(米)", "relief": "地形起伏度(米)",
    "steep_share": "陡坡地占比", "top_factors": "主导因子", "missing": "缺失指标", "review_reasons": "复核原因",
    "admin_type": "行政区类型", "low_confidence": "低置信度", "stability": "稳定性", "alt_zone": "备选类型", "landcover_cells": "土地覆被像元数",
    "dem_cells": "高程像元数", "pop_density": "人口密度", "gdp_per_capita_ratio": "人均GDP比",
    "grain_ratio": "地均粮食产量比", "urbanization_rate": "城镇化率",
    "violation_id": "违法图斑编号", "check_id": "检查项", "severity": "严重程度", "parcel_id": "图斑编号",
    "control_id": "管控要素编号", "other_control_id": "另一管控要素编号", "county_name": "县名",
    "area_m2": "面积(平方米)", "area_ha": "面积(公顷)", "area_mu": "面积(亩)", "centroid_lon": "中心经度",
    "centroid_lat": "中心纬度", "detected_on": "发现日期", "note": "说明", "layer": "图层", "id": "编号",
    "code": "代码", "check_zh": "检查项(中文)",
}


def _fill_symbol(colour: str, outline: str = "#333333", alpha: float = 0.7, width: float = 0.2) -> str:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    ro, go, bo = (int(outline[i:i + 2], 16) for i in (1, 3, 5))
    return (f'<symbol type="fill" name="{{name}}" alpha="{alpha}" clip_to_extent="1" force_rhr="0">'
            f'<layer class="SimpleFill" enabled="1" locked="0" pass="0">'
            f'<prop k="color" v="{r},{g},{b},255"/><prop k="outline_color" v="{ro},{go},{bo},255"/>'
            f'<prop k="outline_style" v="solid"/><prop k="outline_width" v="{width}"/>'
            f'<prop k="outline_width_unit" v="MM"/><prop k="style" v="solid"/></layer></symbol>')


def _aliases(columns) -> str:
    rows = []
    for i, c in enumerate(columns):
        if c in ALIASES:
            rows.append(f'<alias field={quoteattr(c)} index="{i}" name={quoteattr(ALIASES[c])}/>')
    return "<aliases>" + "".join(rows) + "</aliases>"


def _categorized(field: str, categories: dict[str, tuple[str, str]]) -> str:
    cats, syms = [], []
    for i, (value, (colour, label)) in enumerate(categories.items()):
        cats.append(f'<category render="true" symbol="{i}" value={quoteattr(value)} label={quoteattr(label)}/>')
        syms.append(_fill_symbol(colour).replace("{name}", str(i)))
    return (f'<renderer-v2 type="categorizedSymbol" attr={quoteattr(field)} symbollevels="0" enableorderby="0" '
            f'forceraster="0"><categories>{"".join(cats)}</categories><symbols>{"".join(syms)}</symbols>'
            f'</renderer-v2>')


def _single(colour: str, alpha: float = 0.45) -> str:
    return (f'<renderer-v2 type="singleSymbol" symbollevels="0" enableorderby="0" forceraster="0"><symbols>'
            f'{_fill_symbol(colour, outline=colour, alpha=alpha, width=0.4).replace("{name}", "0")}</symbols>'
            f'</renderer-v2>')


def _labels(field: str) -> str:
    return (f'<labeling type="simple"><settings calloutType="simple"><text-style fieldName={quoteattr(field)} '
            f'fontSize="8" textColor="0,0,0,255" isExpression="0"/><text-buffer bufferDraw="1" bufferSize="0.8" '
            f'bufferColor="255,255,255,255"/><placement placement="0"/><rendering scaleVisibility="1" '
            f'scaleMin="1" scaleMax="2000000"/></settings></labeling>')


def qml_for(layer: str, df: pd.DataFrame) -> str | None:
    """A complete QML document for one output layer, or None if the layer has no default style."""
    cols = [c for c in df.columns if c != getattr(df, "_geometry_column_name", "geometry")]
    labeling = ""
    if layer == "zones":
        renderer = _categorized("zone", {z: (ZONE_COLOURS[z], ZONE_LABELS[z]) for z in ZONE_COLOURS})
        labeling = _labels("name")
    elif layer == "violations":
        renderer = _categorized("severity", {s: (SEVERITY_COLOURS[s], SEVERITY_LABELS[s]) for s in SEVERITY_COLOURS})
    elif layer == "conflicts":
        renderer = _categorized("check_id", {c: (CHECK_COLOURS[c], CHECK_LABELS[c]) for c in CHECK_COLOURS})
    elif layer in LINE_STYLES:
        renderer = _single(LINE_STYLES[layer][0])
    else:
        return None
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            f'<qgis version="3.22.0" styleCategories="Symbology|Labeling|Fields" labelsEnabled="{1 if labeling else 0}">'
            f"{renderer}{labeling}{_aliases(cols)}<layerGeometryType>2</layerGeometryType></qgis>\n")


def write_qml_files(directory: Path, qml: dict[str, str]) -> None:
    """Write ``<layer>.qml`` files for users who load the layers another way (replacing older ones)."""
    if not qml:
        return
    directory.mkdir(exist_ok=True)
    for name, text in qml.items():
        tmp = directory / f".{name}.qml.part"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(directory / f"{name}.qml")
    log.info("wrote QGIS styles to %s", directory)

