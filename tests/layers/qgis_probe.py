"""Run with Debian's /usr/bin/python3 (python3-qgis): open each layer of a GeoPackage in real QGIS, print JSON.

Usage: QT_QPA_PLATFORM=offscreen /usr/bin/python3 qgis_probe.py OUT.gpkg layer [layer ...]
       (or postgres:CONNINFO:SCHEMA instead of OUT.gpkg: the tables of a PostGIS schema, with their default styles
       from public.layer_styles, through QGIS's postgres provider)
"""
import json
import os
import sys

from qgis.core import QgsApplication, QgsVectorLayer

app = QgsApplication([], False)
app.initQgis()
path, names = sys.argv[1], sys.argv[2:]
out = {}
for name in names:
    if path.startswith("postgres:"):
        conninfo, schema = path[len("postgres:"):].rsplit(":", 1)
        lyr = QgsVectorLayer(f"{conninfo} key='fid' table=\"{schema}\".\"{name}\" (geom)", name, "postgres")
    else:
        lyr = QgsVectorLayer(f"{path}|layername={name}", name, "ogr")
    info = {"valid": lyr.isValid()}
    if lyr.isValid():
        r = lyr.renderer()
        info.update({
            "count": lyr.featureCount(),
            "crs": lyr.crs().authid(),
            "renderer": r.type() if r else None,
            "attr": r.classAttribute() if r and hasattr(r, "classAttribute") else None,
            "categories": [c.value() for c in r.categories()] if r and hasattr(r, "categories") else [],
            "aliases": {f.name(): lyr.attributeAlias(i) for i, f in enumerate(lyr.fields()) if lyr.attributeAlias(i)},
            "labels": lyr.labelsEnabled(),
            "symbol_levels": bool(r.usingSymbolLevels()) if r else False,
            "levels": {c.value(): c.symbol().symbolLayer(0).renderingPass() for c in r.categories()}
            if r and hasattr(r, "categories") else {},
            "value_maps": {f.name(): lyr.editorWidgetSetup(i).type() for i, f in enumerate(lyr.fields())
                           if lyr.editorWidgetSetup(i).type() == "ValueMap"},
            "widgets": {f.name(): lyr.editorWidgetSetup(i).type() for i, f in enumerate(lyr.fields())},
            "read_only": [f.name() for i, f in enumerate(lyr.fields()) if lyr.editFormConfig().readOnly(i)],
            "blank_shown": {f.name(): lyr.editorWidgetSetup(i).config().get("map") and
                            any(d.get(next(iter(d))) == "" and next(iter(d)) == "" for d in
                                lyr.editorWidgetSetup(i).config()["map"])
                            for i, f in enumerate(lyr.fields()) if lyr.editorWidgetSetup(i).type() == "ValueMap"},
        })
    out[name] = info
print(json.dumps(out, ensure_ascii=False), flush=True)
# QGIS 3.22 can crash while tearing down offscreen; the answer is already printed.
os._exit(0)
