"""Interactive web map (folium/Leaflet) that works offline: Leaflet is inlined, no CDN, no network at all."""
from __future__ import annotations

import html
import json
import logging
import time
from importlib import resources
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element

from zoning import outputs

from .files import GENERATOR

log = logging.getLogger("zoning")
WARN_BYTES = 25 * 1024 * 1024
ALBERS = "+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +ellps=GRS80 +units=m +no_defs"
BASEMAPS = ("none", "osm", "tianditu")

# layer name → (display name, tooltip fields, popup fields, initially shown)
LAYERS = {
    "zones": ("主体功能区 Zones", ["name", "zone_zh"],
              ["county_id", "name", "zone_zh", "zone", "zone_unconstrained", "moved_by_quota", "score_urbanization",
               "score_grain_production", "score_ecological", "margin", "rule", "review", "reason"], True),
    "red_line": ("生态保护红线 Red line", ["id", "name"], ["id", "code", "name", "county_name"], False),
    "farmland": ("永久基本农田 Farmland", ["id", "name"], ["id", "code", "name", "county_name"], False),
    "urban_boundary": ("城镇开发边界 Urban boundary", ["id", "name"], ["id", "code", "name", "county_name"], False),
    "comparison": ("与规划对比 Comparison", ["name", "zone", "reference_zone"],
                   ["county_id", "name", "zone", "reference_zone", "agrees", "margin", "top_factors"], False),
    "conflicts": ("控制线冲突 Conflicts", ["check_zh", "area_mu"],
                  ["violation_id", "check_zh", "severity_zh", "layer", "control_id", "other_layer",
                   "other_control_id", "county_name", "area_mu", "area_ha"], True),
    "violations": ("建设占用问题图斑 Construction findings", ["violation_id", "severity_zh", "check_zh"],
                   ["violation_id", "check_zh", "severity_zh", "parcel_id", "control_id", "control_name", "county_name",
                    "area_mu", "area_ha", "centroid_lon", "centroid_lat", "detected_on", "first_detected_on",
                    "change_zh", "new_area_mu", "note"], True),
    "rectified": ("已整改问题图斑 Rectified findings", ["violation_id", "check_zh"],
                  ["violation_id", "check_zh", "severity_zh", "parcel_id", "control_id", "county_name", "area_mu",
                   "detected_on", "verdict", "status", "checked_by", "checked_on", "remark"], False),
    "rectification_failed": ("整改不到位 Marked rectified, still found", ["parcel_id", "status"],
                             ["parcel_id", "county_name", "area_mu", "worst_severity", "violation_ids", "verdict",
                              "status", "checked_by", "checked_on", "remark", "previous_parcel_ids"], True),
    "compensation": ("生态系统服务价值 Ecosystem service value", ["name", "esv_per_km2_yuan", "priority_class"],
                     ["county_id", "name", "zone_zh", "priority_rank", "priority_class", "priority_score", "esv_yuan",
                      *(f"esv_{v.key}_yuan" for v in outputs.ESV.services), "esv_market_yuan",
                      "esv_nonmarket_yuan", "esv_without_water_yuan", "esv_per_km2_yuan", "esv_per_capita_yuan",
                      "red_line_share", "reason"], False),
}
ESV_COLOURS = ("#edf8e9", "#bae4b3", "#74c476", "#31a354", "#006d2c")  # value per km², quintiles of the run
FAILED_COLOUR = "#c51b7d"
# on screen and on paper, above the scale bar: the map is north-up (Web Mercator)
NORTH_ARROW = ('<div id="zoning-north" style="position:absolute; left:12px; bottom:48px; z-index:1000; '
               'font:bold 13px sans-serif; text-align:center; line-height:1; background:rgba(255,255,255,0.85); '
               'padding:3px 5px; border-radius:3px; box-shadow:0 1px 3px rgba(0,0,0,0.3)">▲<br>N 北</div>')
MAX_FINDINGS = 50_000  # beyond this the map keeps the most severe (the page would pass ~25 MB and slow down)
FINDINGS_BYTES = 18 * 1024 * 1024  # and fewer when their GeoJSON would pass this
MARKER_BELOW_ZOOM = 12
CHECK_COLOURS = {c.id: c.colour for c in outputs.CHECKS.values()}
LINE_COLOURS = {k: c.colour for k, c in outputs.LINES.items()}


def _alias(field: str) -> str:
    return outputs.zh(field)


def _vendor(name: str) -> str:
    return resources.files("layers.vendor").joinpath(name).read_text(encoding="utf-8")


def _safe_json_script(text: str) -> str:
    # JSON inside <script>: a value holding "</script>" must not close the block.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _display_frame(gdf: gpd.GeoDataFrame, fields: list[str], simplify_m: float) -> gpd.GeoDataFrame:
    """Only the fields shown, text HTML-escaped, geometry simplified in metres and rounded (display only)."""
    keep = [f for f in fields if f in gdf.columns]
    out = gdf[keep + [gdf.geometry.name]].copy()
    for f in keep:
        col = out[f]
        if col.dtype.kind == "f":
            out[f] = col.round(6 if f.startswith("centroid_") else 3)
        elif col.dtype.kind in "biu":
            out[f] = col
        else:
            out[f] = col.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else html.escape(str(v)))
    geo = out.to_crs(ALBERS)
    if simplify_m > 0:
        geo = geo.set_geometry(shapely.simplify(geo.geometry.values, simplify_m, preserve_topology=True))
    out = geo.to_crs(4326)
    # ~1 m precision keeps the file small; validity does not matter for drawing
    out = out.set_geometry(shapely.transform(out.geometry.values, lambda c: np.round(c, 5)))
    return out[~out.geometry.is_empty]


def esv_breaks(values) -> np.ndarray:
    """Upper bounds of the value-per-km² classes: the run's quintiles (the top class open)."""
    v = pd.to_numeric(pd.Series(values), errors="coerce").dropna().to_numpy()
    return np.quantile(v, [0.2, 0.4, 0.6, 0.8]) if len(v) else np.zeros(0)


def _style(layer: str, breaks=None):
    if layer == "compensation":
        def esv(f):
            v = f["properties"].get("esv_per_km2_yuan")
            c = "#bbbbbb" if v is None or v == "" else ESV_COLOURS[int(np.searchsorted(breaks, float(v), "right"))]
            return {"fillColor": c, "color": "#444444", "weight": 0.6, "fillOpacity": 0.75}
        return esv
    if layer == "zones":
        colours = {k: z.colour for k, z in outputs.ZONES.items()}
        return lambda f: {"fillColor": colours.get(f["properties"].get("zone"), "#999999"), "color": "#444444",
                          "weight": 0.6, "fillOpacity": 0.65}
    if layer == "comparison":
        agree = {True: outputs.AGREEMENT["true"].colour, False: outputs.AGREEMENT["false"].colour}
        return lambda f: {"fillColor": agree.get(f["properties"].get("agrees"), "#bbbbbb"), "color": "#444444",
                          "weight": 0.6, "fillOpacity": 0.65}
    if layer == "violations":
        sev = {k: c.colour for k, c in outputs.SEVERITIES.items()}
        return lambda f: {"fillColor": sev.get(f["properties"].get("severity"), "#999999"),
                          "color": sev.get(f["properties"].get("severity"), "#999999"), "weight": 1.5,
                          "fillOpacity": 0.8}
    if layer == "rectified":
        return lambda f: {"fillColor": "#969696", "color": "#525252", "weight": 1, "fillOpacity": 0.5,
                          "dashArray": "4 3"}
    if layer == "rectification_failed":
        return lambda f: {"fillColor": FAILED_COLOUR, "color": FAILED_COLOUR, "weight": 3, "fillOpacity": 0.25}
    if layer == "conflicts":
        return lambda f: {"fillColor": CHECK_COLOURS.get(f["properties"].get("check_id"), "#999999"),
                          "color": "#000000", "weight": 1, "fillOpacity": 0.8}
    colour = LINE_COLOURS[layer]
    return lambda f: {"fillColor": colour, "color": colour, "weight": 1, "fillOpacity": 0.35}


def _legend(layers: dict) -> str:
    """Legend rows for the classes that occur in the map, nothing else."""
    def present(name, field):
        g = layers.get(name)
        return set() if g is None or field not in g.columns else set(g[field].dropna().astype(str))

    def rows_for(title, cats, codes):
        if not codes:
            return []
        return [f"<b>{html.escape(title)}</b>"] + [
            f'<div><i style="background:{c.colour}"></i>{html.escape(c.label)}</div>'
            for k, c in cats.items() if k in codes]

    rows = rows_for("主体功能区 Zones", outputs.ZONES, present("zones", "zone"))
    rows += rows_for("与规划对比 Comparison", outputs.AGREEMENT, {v.lower() for v in present("comparison", "agrees")})
    comp = layers.get("compensation")
    if comp is not None and len(comp):
        edges = [comp["esv_per_km2_yuan"].min(), *esv_breaks(comp["esv_per_km2_yuan"]), comp["esv_per_km2_yuan"].max()]
        rows += ["<b>生态系统服务价值 ESV (万元/km²·a)</b>"] + [
            f'<div><i style="background:{c}"></i>{lo / 1e4:,.0f}–{hi / 1e4:,.0f}</div>'
            for c, lo, hi in zip(ESV_COLOURS, edges[:-1], edges[1:])]
    rows += rows_for("三条控制线 Control lines", outputs.LINES, {k for k in outputs.LINES if k in layers})
    rows += rows_for("建设占用问题图斑 Construction findings", outputs.SEVERITIES, present("violations", "severity"))
    rows += rows_for("控制线冲突 Conflicts", outputs.CHECKS, present("conflicts", "check_id"))
    if layers.get("rectified") is not None and len(layers["rectified"]):
        rows += ["<b>已整改 Rectified</b>", '<div><i style="background:#969696;border-style:dashed"></i>'
                 '已整改问题图斑 rectified findings</div>']
    if layers.get("rectification_failed") is not None and len(layers["rectification_failed"]):
        rows += ["<b>整改核验 Rectification check</b>", f'<div><i style="background:{FAILED_COLOUR}"></i>'
                 '整改不到位 marked rectified, still found</div>']
    # folded by a click (its summary stays), so it never has to cover the south-east of the region
    return ('<details id="zoning-legend" open style="position:absolute; bottom:30px; right:10px; z-index:1000; '
            'background:rgba(255,255,255,0.92); padding:6px 10px; font:12px sans-serif; border-radius:4px; '
            'box-shadow:0 1px 4px rgba(0,0,0,0.3); max-height:60%; overflow:auto">'
            '<summary style="cursor:pointer;font-weight:bold">图例 Legend</summary>'
            '<style>#zoning-legend i{display:inline-block;width:14px;height:10px;margin-right:6px;'
            'border:1px solid #555}</style>' + "".join(rows) + "</details>")


def build_map(layers: dict[str, gpd.GeoDataFrame], basemap: str = "none", tianditu_key: str | None = None,
              simplify_m: float = 100.0, title: str | None = None, max_findings: int = MAX_FINDINGS,
              provenance: dict | None = None) -> folium.Map:
    """A folium map of the given output layers (any of ``zones``, the three lines, ``conflicts``, ``violations``,
    ``rectified``, ``comparison``, ``compensation``); construction findings get the auditor's panel (search, filters, list, print)."""
    if basemap not in BASEMAPS:
        raise ValueError(f"basemap must be one of {', '.join(BASEMAPS)}")
    allb = [g.to_crs(4326).total_bounds for g in layers.values() if len(g)]
    b = np.array(allb) if allb else np.array([[73.0, 18.0, 135.0, 54.0]])
    bounds = [[float(b[:, 1].min()), float(b[:, 0].min())], [float(b[:, 3].max()), float(b[:, 2].max())]]
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=False)
    # Nothing from a CDN: inline Leaflet, drop folium's jQuery/Bootstrap/awesome-markers (not needed here).
    m.default_js = []
    m.default_css = []
    m.get_root().header.add_child(Element(f"<style>{_vendor('leaflet.css')}</style>"), name="leaflet_css_inline")
    m.get_root().header.add_child(Element(f"<script>{_vendor('leaflet.js')}</script>"), name="leaflet_js_inline")
    if basemap == "osm":
        folium.TileLayer("OpenStreetMap", name="OpenStreetMap").add_to(m)
    elif basemap == "tianditu":
        if not tianditu_key:
            raise ValueError("--basemap tianditu needs --tianditu-key")
        folium.TileLayer(f"https://t{{s}}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                         f"&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}"
                         f"&TILECOL={{x}}&tk={tianditu_key}", attr="天地图 Tianditu", name="天地图",
                         subdomains="01234567").add_to(m)
    for name, gdf in layers.items():
        if name not in LAYERS or gdf is None or name == "violations":
            continue
        layer_title, tips, pops, show = LAYERS[name]
        disp = _display_frame(gdf, list(dict.fromkeys(tips + pops + ["zone", "severity", "check_id"])), simplify_m)
        data = json.loads(disp.to_json(drop_id=True))
        # folium checks tooltip fields against the features: an empty layer gets none (and is still listed)
        tips = [f for f in tips if f in disp.columns] if len(disp) else []
        pops = [f for f in pops if f in disp.columns] if len(disp) else []
        fg = folium.FeatureGroup(name=f"{layer_title} ({len(disp)})", show=show)
        style = _style(name, esv_breaks(gdf["esv_per_km2_yuan"])) if name == "compensation" else _style(name)
        folium.GeoJson(data, name=layer_title, style_function=style,
                       tooltip=folium.GeoJsonTooltip(tips, aliases=[_alias(f) for f in tips]) if tips
                       else None,
                       popup=folium.GeoJsonPopup(pops, aliases=[_alias(f) for f in pops]) if pops
                       else None).add_to(fg)
        fg.add_to(m)
    control = folium.LayerControl(collapsed=False).add_to(m)
    if layers.get("violations") is not None:
        _audit_panel(m, control, layers["violations"], title or "三条控制线监管图 Control-line audit map", simplify_m,
                     max_findings, provenance, bounds, layers.get("rectified"))
    m.get_root().html.add_child(Element(_legend(layers)))
    m.get_root().html.add_child(Element(NORTH_ARROW))
    m.get_root().header.add_child(Element(GENERATOR), name="zoning_generator", index=0)
    # the auditor's panel covers the top left: keep the data clear of it
    m.fit_bounds(bounds, padding_top_left=(400, 10) if layers.get("violations") is not None else None)
    return m


def _audit_panel(m: folium.Map, control, findings: gpd.GeoDataFrame, title: str, simplify_m: float,
                 max_findings: int, provenance: dict | None = None, region=None, rectified=None) -> None:
    """The construction findings as the auditor's layer: most severe drawn last, markers at province scale, and a
    panel with the title, search by id, filters, a list that zooms to each finding and a print button."""
    total = int(findings.attrs.get("total", len(findings)))
    if len(findings) and "severity" in findings.columns:
        rank = outputs.severity_rank(findings["severity"])
        area = findings["area_m2"].to_numpy() if "area_m2" in findings else np.zeros(total)
        order = np.lexsort((area, rank))  # ascending: the most severe and largest last
        order = order[-max_findings:]
        findings = findings.iloc[order]
    _, tips, pops, _ = LAYERS["violations"]
    fields = list(dict.fromkeys(pops + ["severity", "check_id", "county_id", "county_name", "area_mu",
                                        "centroid_lon", "centroid_lat", "severity_zh", "check_zh", "change"]))
    disp = _display_frame(findings, fields, simplify_m)
    data = _safe_json_script(disp.to_json(drop_id=True))
    if len(data) > FINDINGS_BYTES:  # keep the most severe (drawn last) that fit: the page stays usable
        keep = int(len(disp) * FINDINGS_BYTES / len(data) * 0.95)
        disp = disp.iloc[len(disp) - keep:]
        data = _safe_json_script(disp.to_json(drop_id=True))
    if len(disp) < total:
        log.warning("map.html shows the %d most severe of %d findings (more would pass ~25 MB and slow the "
                    "browser); the GeoPackage and the report hold them all", len(disp), total)
    cfg = {"map": m.get_name(), "control": control.get_name(), "title_layer": f"{LAYERS['violations'][0]} ({len(disp)})",
           "severity_colours": {k: c.colour for k, c in outputs.SEVERITIES.items()},
           "labels": {f: outputs.zh(f) for f in fields}, "popup": [f for f in pops if f in disp.columns],
           "marker_below_zoom": MARKER_BELOW_ZOOM, "omitted": total > len(disp), "total": total,
           "region": region}
    e = html.escape
    change_filter = ('<div class="row"><select id="za-change"><option value="">全部变化类型 new, expanded and '
                     'existing</option></select></div>') if "change" in disp.columns else ""
    panel = f"""<div id="zoning-audit"><h1>{e(title)}</h1>
<div id="za-sub">{e(time.strftime('%Y-%m-%d'))} · {total:,} 个问题图斑 findings</div>{_provenance_html(provenance)}
<input id="za-q" type="search" placeholder="搜索问题或图斑编号 search violation / parcel id">
<div class="row"><select id="za-sev"><option value="">全部严重程度 all severities</option></select></div>
<div class="row"><select id="za-check"><option value="">全部检查项 all checks</option></select></div>
<div class="row"><select id="za-county"><option value="">全部县 all counties</option></select></div>{change_filter}
<div id="za-count"></div><ul id="za-list"></ul>
<div class="row"><button id="za-more">更多 more</button><button id="za-print">打印 print</button></div></div>"""
    root = m.get_root()
    root.header.add_child(Element(f"<style>{_static('audit_map.css')}</style>"), name="zoning_audit_css")
    root.html.add_child(Element(panel + f'<script type="application/json" id="zoning-findings">{data}</script>'
                                + _rectified_json(rectified)))
    root.html.add_child(Element(f"<script>window.ZONING_AUDIT = {_safe_json_script(json.dumps(cfg, ensure_ascii=False))};"
                                f"document.addEventListener('DOMContentLoaded', function () {{ "
                                f"{_static('audit_map.js')} }});</script>"))


def read_findings(path, limit: int = MAX_FINDINGS) -> gpd.GeoDataFrame:
    """The ``limit`` most severe (then largest) findings of a GeoPackage's ``violations`` layer, read by SQL so a
    run with millions of findings is never loaded whole; ``attrs["total"]`` holds how many there are."""
    import pyogrio

    total = pyogrio.read_info(path, layer="violations")["features"]
    from .gpkg import severity_sql

    gdf = pyogrio.read_dataframe(path, sql=f"SELECT * FROM violations ORDER BY {severity_sql('severity')} DESC, "
                                           f"area_m2 DESC LIMIT {int(limit)}", sql_dialect="SQLITE")
    gdf.attrs["total"] = total
    return gdf


def read_failed(path) -> gpd.GeoDataFrame | None:
    """The ledger's parcels marked 已整改 in the earlier run and still found (None without an earlier run)."""
    import pyogrio

    layers = {n for n, _ in pyogrio.list_layers(path)}
    if "parcels" not in layers or "rectification_failed" not in pyogrio.read_info(path, layer="parcels")["fields"]:
        return None
    return pyogrio.read_dataframe(path, sql="SELECT * FROM parcels WHERE rectification_failed = 1",
                                  sql_dialect="SQLITE")


def _static(name: str) -> str:
    return resources.files("layers.static").joinpath(name).read_text(encoding="utf-8")


def _rectified_json(rectified) -> str:
    """The rectified findings as the panel's search finds them: ids, check, county, verdict and where they lie."""
    if rectified is None or not len(rectified):
        return ""
    pts = rectified.geometry.to_crs(4326).representative_point()
    cols = [c for c in ("violation_id", "parcel_id", "check_zh", "county_name", "area_mu", "verdict", "status",
                        "checked_on") if c in rectified.columns]
    rows = pd.DataFrame(rectified[cols]).assign(lat=pts.y.round(6).to_numpy(), lon=pts.x.round(6).to_numpy())
    text = _safe_json_script(rows.to_json(orient="records", force_ascii=False))
    return f'<script type="application/json" id="zoning-rectified">{text}</script>'


def _provenance_html(prov: dict | None) -> str:
    """The run's provenance, folded in the panel: project, run date, tool and each input (name, date, hash)."""
    if not prov:
        return ""
    e = html.escape
    items = [f"<li>{e(f['role'])}: {e(f['file'])}" + (f" · {e(f['modified'])} · SHA-256 {e(f['sha256'][:16])}…"
                                                      if "sha256" in f else "") + "</li>" for f in prov.get("inputs", [])]
    head = " · ".join(e(str(v)) for v in (prov.get("project"), prov.get("run_date"), prov.get("tool")) if v)
    return (f'<details id="za-provenance"><summary>来源 provenance</summary><div>{head}</div>'
            f'<ul>{"".join(items)}</ul></details>')


def write_map(path: Path, m: folium.Map) -> int:
    """Render and write the map (inside an output being built); returns its size in bytes, warns above 25 MB."""
    text = m.get_root().render()
    text = _escape_geojson_blocks(text)
    path = Path(path)
    path.write_text(text, encoding="utf-8")
    size = path.stat().st_size
    if size > WARN_BYTES:
        log.warning("%s is %.1f MB: browsers get slow above ~25 MB; raise --simplify", path, size / 1e6)
    return size


def _escape_geojson_blocks(text: str) -> str:
    """Escape <, > and & inside the GeoJSON data folium inlines in <script> blocks (values stay valid JSON)."""
    import re

    out, pos = [], 0
    pattern = re.compile(r"geo_json_[0-9a-f]+_add\(")
    while True:
        mt = pattern.search(text, pos)
        if mt is None:
            out.append(text[pos:])
            break
        start = mt.end()
        depth, j, in_str, esc = 0, start, False, False
        while j < len(text):
            c = text[j]
            if in_str:
                if esc:
                    esc = False
                elif c == "\\":
                    esc = True
                elif c == '"':
                    in_str = False
            elif c == '"':
                in_str = True
            elif c in "{[":
                depth += 1
            elif c in "}]":
                depth -= 1
                if depth == 0:
                    j += 1
                    break
            j += 1
        out.append(text[pos:start])
        out.append(_safe_json_script(text[start:j]))
        pos = j
    return "".join(out)
