"""QGIS styles (QML) for the output layers, derived from :mod:`zoning.outputs`: colours, legends, one Chinese
alias per field, value maps for coded fields, and severe findings drawn on top."""
from __future__ import annotations

from types import SimpleNamespace
from xml.sax.saxutils import quoteattr

import pandas as pd

from zoning import outputs
from zoning.ledger import FOLLOW_UP


def _rgb(colour: str) -> str:
    return ",".join(str(int(colour[i:i + 2], 16)) for i in (1, 3, 5))


def _fill_symbol(name: str, colour: str, outline: str = "#333333", alpha: float = 0.7, width: float = 0.2,
                 level: int = 0) -> str:
    return (f'<symbol type="fill" name="{name}" alpha="{alpha}" clip_to_extent="1" force_rhr="0">'
            f'<layer class="SimpleFill" enabled="1" locked="0" pass="{level}">'
            f'<prop k="color" v="{_rgb(colour)},255"/><prop k="outline_color" v="{_rgb(outline)},255"/>'
            f'<prop k="outline_style" v="solid"/><prop k="outline_width" v="{width}"/>'
            f'<prop k="outline_width_unit" v="MM"/><prop k="style" v="solid"/></layer></symbol>')


def _categorized(field: str, categories, levels: bool = False) -> str:
    """``categories``: objects with code, colour, label (and rank); with ``levels`` higher ranks draw on top."""
    cats, syms = [], []
    for i, c in enumerate(categories):
        cats.append(f'<category render="true" symbol="{i}" value={quoteattr(c.code if hasattr(c, "code") else c.id)}'
                    f' label={quoteattr(c.label)}/>')
        syms.append(_fill_symbol(str(i), c.colour, level=getattr(c, "rank", 0) if levels else 0))
    return (f'<renderer-v2 type="categorizedSymbol" attr={quoteattr(field)} symbollevels="{1 if levels else 0}" '
            f'enableorderby="0" forceraster="0"><categories>{"".join(cats)}</categories>'
            f'<symbols>{"".join(syms)}</symbols></renderer-v2>')


def _single(colour: str, alpha: float = 0.45) -> str:
    return (f'<renderer-v2 type="singleSymbol" symbollevels="0" enableorderby="0" forceraster="0"><symbols>'
            f'{_fill_symbol("0", colour, outline=colour, alpha=alpha, width=0.4)}</symbols></renderer-v2>')


def _labels(field: str) -> str:
    return (f'<labeling type="simple"><settings calloutType="simple"><text-style fieldName={quoteattr(field)} '
            f'fontSize="8" textColor="0,0,0,255" isExpression="0"/><text-buffer bufferDraw="1" bufferSize="0.8" '
            f'bufferColor="255,255,255,255"/><placement placement="0"/><rendering scaleVisibility="1" '
            f'scaleMin="1" scaleMax="2000000"/></settings></labeling>')


def _aliases(columns) -> str:
    rows = [f'<alias field={quoteattr(c)} index="{i}" name={quoteattr(outputs.zh(c))}/>'
            for i, c in enumerate(columns) if c in outputs.FIELDS]
    return "<aliases>" + "".join(rows) + "</aliases>"


DATE_FIELDS = ("checked_on",)  # follow-up dates the auditor enters: a calendar, stored as YYYY-MM-DD text


def _value_maps(columns) -> str:
    """Coded fields (zone, severity, check_id, layer) show their Chinese label in the attribute table (an empty
    value shows empty, not as "()"); follow-up dates get a calendar."""
    fields = []
    for c in columns:
        cats = outputs.VALUE_MAPS.get(c)
        if c in DATE_FIELDS:
            fields.append(f'<field name={quoteattr(c)} configurationFlags="None"><editWidget type="DateTime"><config>'
                          '<Option type="Map"><Option type="bool" name="allow_null" value="true"/>'
                          '<Option type="bool" name="calendar_popup" value="true"/>'
                          '<Option type="QString" name="display_format" value="yyyy-MM-dd"/>'
                          '<Option type="QString" name="field_format" value="yyyy-MM-dd"/>'
                          '<Option type="bool" name="field_iso_format" value="false"/></Option></config>'
                          '</editWidget></field>')
        if not cats:
            continue
        opts = "".join(f'<Option type="Map"><Option type="QString" name={quoteattr(v.label)} value={quoteattr(k)}/>'
                       f'</Option>' for k, v in {**cats, "": _BLANK}.items())
        fields.append(f'<field name={quoteattr(c)} configurationFlags="None"><editWidget type="ValueMap"><config>'
                      f'<Option type="Map"><Option type="List" name="map">{opts}</Option></Option></config>'
                      f'</editWidget></field>')
    return "<fieldConfiguration>" + "".join(fields) + "</fieldConfiguration>"


_BLANK = SimpleNamespace(label="")  # an empty value's entry in a value map: shown empty, not as "()"


def _read_only(columns, editable) -> str:
    """Fields the tool computes are read-only in QGIS's forms and table; only ``editable`` ones take input."""
    rows = "".join(f'<field name={quoteattr(c)} editable="{1 if c in editable else 0}"/>' for c in columns)
    return f"<editable>{rows}</editable>"


def qml_for(layer: str, df: pd.DataFrame) -> str | None:
    """A complete QML document for one output layer, or None if the layer has no default style."""
    cols = [c for c in df.columns if c != getattr(df, "_geometry_column_name", "geometry")]
    labeling = ""
    if layer == "zones":
        renderer = _categorized("zone", outputs.ZONES.values())
        labeling = _labels("name")
    elif layer == "violations":
        # symbol levels: critical above high above medium, as in the map
        renderer = _categorized("severity", outputs.SEVERITIES.values(), levels=True)
    elif layer == "conflicts":
        renderer = _categorized("check_id", [c for c in outputs.CHECKS.values() if c.kind == "conflict"])
    elif layer == "parcels":
        none = outputs.Category("", "无问题", "no finding", "#d9d9d9", 0)
        renderer = _categorized("worst_severity", [none, *outputs.SEVERITIES.values()], levels=True)
    elif layer == "comparison":
        renderer = _categorized("agrees", outputs.AGREEMENT.values())
        labeling = _labels("name")
    elif layer == "compensation":  # the counties to compensate first darkest; those without a score grey
        none = outputs.Category("", "无优先级", "no score", "#d9d9d9", 0)
        renderer = _categorized("priority_class", [*outputs.PRIORITIES.values(), none])
        labeling = _labels("name")
    elif layer in outputs.LINES:
        renderer = _single(outputs.LINES[layer].colour)
    elif layer == "rectified":  # 已整改: earlier findings gone from the ground, grey as on the map
        renderer = _single("#969696", alpha=0.35)
    elif layer == "county_summary":  # a table: aliases and labels only
        renderer = ""
    else:
        return None
    editable = _read_only(cols, set(FOLLOW_UP)) if layer == "parcels" else ""
    geometry_type = 4 if layer == "county_summary" else 2  # 4: no geometry
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            f'<qgis version="3.22.0" styleCategories="Symbology|Labeling|Fields|Forms" '
            f'labelsEnabled="{1 if labeling else 0}">{renderer}{labeling}{_value_maps(cols)}{_aliases(cols)}'
            f"{editable}<layerGeometryType>{geometry_type}</layerGeometryType></qgis>\n")


def qml_for_layers(layers: dict) -> dict[str, str]:
    """QML documents for every styled layer among ``layers`` (name → frame)."""
    out = {}
    for name, df in layers.items():
        if hasattr(df, "geometry") or name == "county_summary":
            q = qml_for(name, df)
            if q:
                out[name] = q
    return out
