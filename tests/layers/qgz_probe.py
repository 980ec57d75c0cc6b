"""Run with Debian's /usr/bin/python3 (python3-qgis): open a .qgz project in real QGIS, print its layers as JSON.

Usage: QT_QPA_PLATFORM=offscreen /usr/bin/python3 qgz_probe.py PROJECT.qgz
"""
import json, os, sys
from qgis.core import QgsApplication, QgsProject
app = QgsApplication([], False); app.initQgis()
prj = QgsProject.instance()
ok = prj.read(sys.argv[1])
root = prj.layerTreeRoot()
order = [n.layerId() for n in root.findLayers()]
info = {"read": ok, "order": order, "layers": {}}
for lid, lyr in prj.mapLayers().items():
    r = lyr.renderer() if hasattr(lyr, "renderer") else None
    info["layers"][lid] = {"valid": lyr.isValid(), "count": lyr.featureCount(), "renderer": r.type() if r else None,
                           "visible": root.findLayer(lid).isVisible() if root.findLayer(lid) else None,
                           "alias": {f.name(): lyr.attributeAlias(i) for i, f in enumerate(lyr.fields()) if lyr.attributeAlias(i)}.get("area_mu")}
print(json.dumps(info, ensure_ascii=False), flush=True)
os._exit(0)
