"""The algorithms: each declared as data (its parameters and the command-line option each becomes), run by one
class that builds the command, runs it (:mod:`.runner`) and loads the outputs styled, one group per run."""
import os
import sqlite3
import time
from dataclasses import dataclass

from qgis.core import (QgsProcessing, QgsProcessingAlgorithm, QgsProcessingContext, QgsProcessingException,
                       QgsProcessingLayerPostProcessorInterface, QgsProcessingParameterEnum,
                       QgsProcessingParameterFile, QgsProcessingParameterFileDestination,
                       QgsProcessingParameterFolderDestination, QgsProcessingParameterMultipleLayers,
                       QgsProcessingParameterNumber, QgsProcessingParameterRasterLayer,
                       QgsProcessingParameterVectorLayer, QgsProcessingUtils, QgsVectorFileWriter)

from . import runner

LEGENDS = ["igbp", "esa_worldcover", "clcd", "globeland30"]
TABLES = "Tables (*.csv *.xlsx *.xls)"
# the layers of a zoning GeoPackage, top of the layer tree first: findings above the lines above the zones
ORDER = ["violations", "conflicts", "rectified", "parcels", "urban_boundary", "farmland", "red_line", "comparison",
         "compensation", "zones", "county_summary"]


@dataclass(frozen=True)
class P:
    """One parameter: its kind, the option it becomes (``""``: positional; ``KIND=``: ``--raster KIND=PATH``)."""

    name: str
    kind: str  # vector, raster, table, file, gpkgs, number, legend, gpkg_out, html_out, folder_out
    option: str
    label: str
    optional: bool = False
    help: str = ""


SPECS = {
    "classify": ("Classify counties 主体功能区分类", [
        P("COUNTIES", "vector", "", "County polygons 县级行政区", help="with a county code field (county_id, adcode…)"),
        P("LANDCOVER", "raster", "landcover=", "Land-cover raster 土地覆被"),
        P("DEM", "raster", "dem=", "Elevation raster (DEM) 高程", True),
        P("ATTRIBUTES", "table", "--attributes", "Statistics table (CSV/XLSX) 统计数据", True,
          "joined on county id: population, gdp, grain_output, urbanization_rate, …; replaces the built-in census "
          "figure by figure"),
        P("MODEL", "file", "--model", "Model file (TOML) 模型", True, "default: the shipped model"),
        P("LEGEND", "legend", "--legend", "Land-cover legend 图例"),
        P("OUTPUT", "gpkg_out", "-o", "Zones 主体功能区 (GeoPackage)"),
    ], "Classifies county polygons into urbanization areas, main grain-production areas and key ecological function "
       "areas (layer zones, with the scores, rule and reason of every decision). Runs `zoning classify`."),
    "check": ("Check the three control lines 三条控制线检查", [
        P("RED_LINE", "vector", "--red-line", "Ecological protection red line 生态保护红线"),
        P("FARMLAND", "vector", "--farmland", "Permanent basic farmland 永久基本农田"),
        P("URBAN_BOUNDARY", "vector", "--urban-boundary", "Urban development boundary 城镇开发边界"),
        P("CONSTRUCTION", "vector", "--construction", "Construction parcels 建设图斑 (卫片图斑)", True),
        P("COUNTIES", "vector", "--counties", "County polygons 县级行政区", True),
        P("BASELINE", "vector", "--baseline", "Parcels of the earlier survey 上期图斑", True,
          "findings gain change (new / expanded / existing)"),
        P("PREVIOUS", "file", "--previous", "Earlier zoning check output (GeoPackage) 上期成果", True,
          "ids, first detection dates and the ledger's follow-up carried by ground"),
        P("REPORT", "folder_out", "--report", "Audit reports folder 核查报告", True),
        P("OUTPUT", "gpkg_out", "-o", "Findings 核查成果 (GeoPackage)"),
    ], "Conflicts between the red line, permanent farmland and the urban development boundary, and construction "
       "in them, with areas in m², 公顷 and 亩 per parcel and per county. Runs `zoning check`."),
    "compare": ("Compare with the official scheme 与规划方案对比", [
        P("ZONES", "vector", "", "Zones of zoning classify 主体功能区"),
        P("REFERENCE", "table", "--reference", "Official designations (CSV/XLSX) 规划主体功能区"),
        P("OUTPUT", "gpkg_out", "-o", "Comparison 对比 (GeoPackage)"),
    ], "The classified zone of every county beside the official one, with the agreement and Cohen's kappa. Runs "
       "`zoning compare`."),
    "compensate": ("Ecological compensation 生态补偿", [
        P("COUNTIES", "vector", "", "County polygons 县级行政区"),
        P("LANDCOVER", "raster", "landcover=", "Land-cover raster 土地覆被"),
        P("LEGEND", "legend", "--legend", "Land-cover legend 图例"),
        P("ATTRIBUTES", "table", "--attributes", "Statistics table (CSV/XLSX) 统计数据", True,
          "population, gdp (the priority is then per yuan of GDP), paddy_share, fiscal_gap"),
        P("ZONES", "vector", "--zones", "Zones of zoning classify 主体功能区", True),
        P("RED_LINE", "vector", "--red-line", "Ecological protection red line 生态保护红线", True),
        P("EQUIVALENT_VALUE", "number", "--equivalent-value", "Value of one standard equivalent (yuan/hm²) 标准当量"
          "价值", True, "default 3,406.50 (Xie et al. 2015, 2010 national)"),
        P("OUTPUT", "gpkg_out", "-o", "Compensation 生态补偿 (GeoPackage)"),
    ], "Ecosystem service value per county and service (Xie et al. 2015 equivalent factors) and the compensation "
       "priority. Runs `zoning compensate`."),
    "map": ("Offline web map 离线网页地图", [
        P("INPUTS", "gpkgs", "", "zoning GeoPackages 成果"),
        P("OUTPUT", "html_out", "-o", "Map 地图 (HTML)"),
    ], "One self-contained HTML map of zoning outputs that works offline in a browser. Runs `zoning map`."),
}


class _IntoGroup(QgsProcessingLayerPostProcessorInterface):
    """Moves a loaded output into the run's group of the layer tree."""

    def __init__(self, group: str, rank: int):
        super().__init__()
        self.group, self.rank = group, rank

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS's name
        # Processing loads outputs without their default style: the one the tool embedded in the GeoPackage
        _, ok = layer.loadDefaultStyle()
        if ok:
            layer.triggerRepaint()
        root = context.project().layerTreeRoot() if context.project() else None
        node = root.findLayer(layer.id()) if root else None
        if node is None:
            return
        group = root.findGroup(self.group) or root.insertGroup(0, self.group)
        clone = node.clone()
        clone.setCustomProperty("zoning/rank", self.rank)  # layers arrive in any order: keep the tool's
        pos = sum(1 for c in group.children() if int(c.customProperty("zoning/rank", 99)) < self.rank)
        group.insertChildNode(pos, clone)
        node.parent().removeChildNode(node)


_KEEP = []  # post-processors live until QGIS has used them


class ZoningAlgorithm(QgsProcessingAlgorithm):
    def __init__(self, command: str):
        super().__init__()
        self.command = command
        self.title, self.params, self.help = SPECS[command]

    def createInstance(self):  # noqa: N802 - QGIS's name
        return ZoningAlgorithm(self.command)

    def name(self):
        return self.command

    def displayName(self):  # noqa: N802
        return self.title

    def shortHelpString(self):  # noqa: N802
        lines = [self.help, ""] + [f"{p.label}: {p.help}" for p in self.params if p.help]
        return "\n".join(lines)

    def initAlgorithm(self, config=None):  # noqa: N802
        for p in self.params:
            self.addParameter(_parameter(p))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        exe = runner.executable(runner.configured_executable())
        args, outputs = [self.command], {}
        for p in self.params:
            value = self._value(p, parameters, context, feedback)
            if value in (None, "", []):
                continue
            if p.kind.endswith("_out"):
                outputs[p.name] = value
            if p.kind == "gpkgs":
                args += list(value)
            elif p.option.endswith("="):
                args += ["--raster", f"{p.option}{value}"]
            elif p.option:
                args += [p.option, value]
            else:
                args.append(value)
        args.append("--overwrite")  # only ever an earlier zoning output: anything else is refused by the tool
        runner.run(exe, args, feedback)
        if "OUTPUT" in outputs and outputs["OUTPUT"].endswith(".gpkg"):
            self._load(outputs["OUTPUT"], context)
        return outputs

    def _value(self, p: P, parameters, context, feedback):
        if p.kind == "vector":
            return _vector_path(self, p, parameters, context, feedback)
        if p.kind == "raster":
            layer = self.parameterAsRasterLayer(parameters, p.name, context)
            if layer is None:
                return None
            if layer.providerType() != "gdal" or not os.path.exists(layer.source()):
                raise QgsProcessingException(f"{p.label}: {layer.name()} is not a raster file; save it as a "
                                             "GeoTIFF first (zoning reads rasters from files).")
            return layer.source()
        if p.kind in ("table", "file"):
            return self.parameterAsFile(parameters, p.name, context)
        if p.kind == "gpkgs":
            return [lyr.source().split("|")[0] if hasattr(lyr, "source") else str(lyr)
                    for lyr in self.parameterAsLayerList(parameters, p.name, context)] or \
                self.parameterAsFileList(parameters, p.name, context)
        if p.kind == "number":
            return None if parameters.get(p.name) in (None, "") else \
                f"{self.parameterAsDouble(parameters, p.name, context):g}"
        if p.kind == "legend":
            return LEGENDS[self.parameterAsEnum(parameters, p.name, context)]
        if p.kind == "folder_out":
            return self.parameterAsString(parameters, p.name, context) or None
        return self.parameterAsFileOutput(parameters, p.name, context)

    def _load(self, path: str, context) -> None:
        """Every layer of the written GeoPackage, loaded on completion with its embedded default style, in one
        group named after the run."""
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            names = [r[0] for r in db.execute("SELECT table_name FROM gpkg_contents WHERE table_name NOT IN "
                                              "('zoning_run', 'layer_styles')")]
        names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
        group = f"zoning {self.command} {time.strftime('%Y-%m-%d %H:%M:%S')}"
        for rank, name in enumerate(names):
            details = QgsProcessingContext.LayerDetails(name, context.project(), name)
            post = _IntoGroup(group, rank)
            _KEEP.append(post)
            details.setPostProcessor(post)
            context.addLayerToLoadOnCompletion(f"{path}|layername={name}", details)


def _parameter(p: P):
    desc = p.label
    if p.kind == "vector":
        return QgsProcessingParameterVectorLayer(p.name, desc, [QgsProcessing.TypeVectorPolygon], optional=p.optional)
    if p.kind == "raster":
        return QgsProcessingParameterRasterLayer(p.name, desc, optional=p.optional)
    if p.kind == "table":
        return QgsProcessingParameterFile(p.name, desc, fileFilter=TABLES, optional=p.optional)
    if p.kind == "file":
        flt = "TOML (*.toml)" if p.option == "--model" else "GeoPackage (*.gpkg)"
        return QgsProcessingParameterFile(p.name, desc, fileFilter=flt, optional=p.optional)
    if p.kind == "gpkgs":
        return QgsProcessingParameterMultipleLayers(p.name, desc, QgsProcessing.TypeFile)
    if p.kind == "number":
        return QgsProcessingParameterNumber(p.name, desc, QgsProcessingParameterNumber.Double, optional=p.optional,
                                            minValue=1.0)
    if p.kind == "legend":
        return QgsProcessingParameterEnum(p.name, desc, options=LEGENDS, defaultValue=0)
    if p.kind == "folder_out":
        param = QgsProcessingParameterFolderDestination(p.name, desc, optional=p.optional)
        param.setCreateByDefault(False)
        return param
    if p.kind == "html_out":
        return QgsProcessingParameterFileDestination(p.name, desc, "HTML (*.html)")
    return QgsProcessingParameterFileDestination(p.name, desc, "GeoPackage (*.gpkg)")


def _vector_path(alg, p: P, parameters, context, feedback):
    """A file-backed layer by its path (``PATH|layername=L``); a memory, database or filtered layer exported to a
    temporary GeoPackage first (the tool reads files)."""
    layer = alg.parameterAsVectorLayer(parameters, p.name, context)
    if layer is None:
        return None
    parts = layer.source().split("|")
    if layer.providerType() == "ogr" and not layer.subsetString() and os.path.isfile(parts[0]):
        named = [x.split("=", 1)[1] for x in parts[1:] if x.startswith("layername=")]
        if named:
            return f"{parts[0]}|layername={named[0]}"
        if not any(x.startswith("layerid=") for x in parts[1:]):
            return parts[0]
    out = QgsProcessingUtils.generateTempFilename(f"{p.name.lower()}.gpkg")
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName, options.layerName = "GPKG", p.name.lower()
    err = QgsVectorFileWriter.writeAsVectorFormatV3(layer, out, context.transformContext(), options)
    if err[0] != QgsVectorFileWriter.NoError:
        raise QgsProcessingException(f"{p.label}: could not export {layer.name()} for zoning: {err[1]}")
    feedback.pushInfo(f"{layer.name()} ({layer.providerType()}{', filtered' if layer.subsetString() else ''}): "
                      f"exported to {out}")
    return out
