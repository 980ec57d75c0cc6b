"""A QGIS project (.qgz) beside the tool's GeoPackage: every layer in a sensible order (the findings on top, the
zones at the bottom), each with the tool's style, paths relative to the project so the folder can be moved."""
from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from zoning import outputs

# drawn bottom to top: the zones under the lines under the findings; tables last in the list
ORDER = ("rectification_failed", "violations", "rectified", "conflicts", "red_line", "farmland", "urban_boundary",
         "parcels", "comparison", "zones", "county_summary")
SHOWN = {"violations", "conflicts", "red_line", "farmland", "urban_boundary", "zones", "rectification_failed"}


def _inner(qml: str) -> str:
    """The elements of a QML document, without its ``<qgis>`` wrapper, to embed in a project's map layer."""
    body = re.search(r"<qgis[^>]*>(.*)</qgis>", qml, re.S)
    return body.group(1) if body else ""


def layer_id(name: str) -> str:
    """A layer id in QGIS's own form (name and 32 hex digits), the same for the same layer on every run."""
    return f"{name}_{hashlib.md5(name.encode()).hexdigest()}"


def _layer_xml(name: str, gpkg_name: str, spatial: bool, qml: str | None, crs_wkt: str | None) -> str:
    spec = outputs.LAYERS.get(name)
    title = spec.title if spec else name
    source = f"./{gpkg_name}|layername={name}"
    crs = (f"<srs><spatialrefsys><wkt>{escape(crs_wkt)}</wkt></spatialrefsys></srs>" if crs_wkt else "")
    geometry = ' geometry="Polygon"' if spatial else ' geometry="No geometry"'
    return (f'<maplayer type="vector"{geometry} readOnly="0"><id>{layer_id(name)}</id>'
            f"<datasource>{escape(source)}</datasource><layername>{escape(title)}</layername>{crs}"
            f'<provider encoding="UTF-8">ogr</provider>{_inner(qml) if qml else ""}</maplayer>')


def project_xml(gpkg_name: str, layers: dict[str, bool], styles: dict[str, str], crs_wkt: str | None,
                title: str) -> str:
    """The ``.qgs`` document: ``layers`` maps each layer of the GeoPackage to whether it has geometry."""
    names = [n for n in ORDER if n in layers] + [n for n in layers if n not in ORDER]
    tree = "".join(
        f'<layer-tree-layer id={quoteattr(layer_id(n))} name={quoteattr(outputs.LAYERS[n].title if n in outputs.LAYERS else n)}'
        f' source={quoteattr(f"./{gpkg_name}|layername={n}")} providerKey="ogr" '
        f'checked="{"Qt::Checked" if n in SHOWN else "Qt::Unchecked"}" expanded="0"/>' for n in names)
    maps = "".join(_layer_xml(n, gpkg_name, layers[n], styles.get(n), crs_wkt if layers[n] else None)
                   for n in names)
    crs = f"<projectCrs><spatialrefsys><wkt>{escape(crs_wkt)}</wkt></spatialrefsys></projectCrs>" if crs_wkt else ""
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            f'<qgis projectname={quoteattr(title)} version="3.22.0"><title>{escape(title)}</title>'
            f'<properties><Paths><Absolute type="bool">false</Absolute></Paths></properties>{crs}'
            f'<layer-tree-group><customproperties/>{tree}</layer-tree-group>'
            f"<projectlayers>{maps}</projectlayers></qgis>\n")


def write_project(path: Path, gpkg_name: str, layers: dict[str, bool], styles: dict[str, str],
                  crs_wkt: str | None, title: str) -> None:
    """Write ``path`` (.qgz: the .qgs zipped, as QGIS saves it), inside a folder being built atomically."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(Path(path).with_suffix(".qgs").name, project_xml(gpkg_name, layers, styles, crs_wkt, title))
