"""Run with Debian's /usr/bin/python3 (python3-qgis): QGIS headless, Processing initialised, the zoning plugin
loaded from ``QGIS_PLUGINPATH`` with no interface, as qgis_process loads it; prints one JSON line.

Usage: QT_QPA_PLATFORM=offscreen QGIS_PLUGINPATH=DIR /usr/bin/python3 qgis_processing_probe.py MODE [ALG PARAMS.json]
MODE: list | run | load | cancel TEXT (when a line holds it) | memory
"""
import json
import os
import sys

from qgis.core import (QgsApplication, QgsFeatureRequest, QgsProcessingContext, QgsProcessingException,
                       QgsProcessingFeedback, QgsProject, QgsVectorLayer)

app = QgsApplication([], False)
app.initQgis()
sys.path.insert(0, "/usr/share/qgis/python/plugins")
import processing  # noqa: E402
from processing.core.Processing import Processing  # noqa: E402

Processing.initialize()
import qgis.utils  # noqa: E402

path = os.environ["QGIS_PLUGINPATH"]
sys.path.insert(0, path)
qgis.utils.plugin_paths = [path]
assert qgis.utils.iface is None
started = qgis.utils.loadPlugin("zoning_processing") and qgis.utils.startProcessingPlugin("zoning_processing")


class Feedback(QgsProcessingFeedback):
    def __init__(self):
        super().__init__()
        self.log, self.errors, self.progress = [], [], []
        self.progressChanged.connect(self.progress.append)

    trigger = None  # cancel when a line holding this arrives (mid-run, as a user presses Cancel)

    def pushInfo(self, info):  # noqa: N802
        self.log.append(info)
        if self.trigger and self.trigger in info:
            self.cancel()

    def pushCommandInfo(self, info):  # noqa: N802
        self.log.append(info)

    def reportError(self, error, fatalError=False):  # noqa: N802, N803
        self.errors.append(error)


mode = sys.argv[1]
out = {"started": bool(started)}
provider = QgsApplication.processingRegistry().providerById("zoning")
if mode == "list":
    from zoning_processing.algorithms import SPECS

    out["provider"] = provider.name() if provider else None
    out["algorithms"] = {a.id(): [p.name() for p in a.parameterDefinitions()] for a in provider.algorithms()}
    out["optional"] = {a.id(): [p.name() for p in a.parameterDefinitions() if p.flags() & p.FlagOptional]
                       for a in provider.algorithms()}
    out["options"] = {cmd: [p.option for p in spec[1] if p.option.startswith("-")] for cmd, spec in SPECS.items()}
else:
    alg, params = sys.argv[2], json.loads(sys.argv[3])
    if mode == "memory":  # the counties as a memory layer, as a layer built in the project would be
        src = QgsVectorLayer(params["COUNTIES"], "counties", "ogr")
        mem = src.materialize(QgsFeatureRequest())
        QgsProject.instance().addMapLayer(mem)
        params["COUNTIES"] = mem
        out["memory_provider"] = mem.providerType()
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    feedback = Feedback()
    if mode == "cancel":
        feedback.trigger = sys.argv[4]
    try:
        if mode == "load":
            from processing.gui.Postprocessing import handleAlgorithmResults

            res = processing.run(alg, params, context=context, feedback=feedback)
            handleAlgorithmResults(QgsApplication.processingRegistry().algorithmById(alg), context, feedback)
            root = QgsProject.instance().layerTreeRoot()
            out["groups"] = {g.name(): [n.name() for n in g.children()] for g in root.findGroups()}
            out["renderers"] = {lyr.name(): lyr.renderer().type() for lyr in QgsProject.instance().mapLayers().values()
                                if hasattr(lyr, "renderer") and lyr.renderer()}
        else:
            res = processing.run(alg, params, context=context, feedback=feedback)
        out["ok"], out["results"] = True, {k: str(v) for k, v in res.items()}
        out["to_load"] = sorted(context.layersToLoadOnCompletion())
    except QgsProcessingException as exc:
        out["ok"], out["error"] = False, str(exc)
    out["log"], out["errors"], out["progress"] = feedback.log, feedback.errors, feedback.progress[-3:]
print(json.dumps(out, ensure_ascii=False), flush=True)
QgsProject.instance().clear()
os._exit(0)  # QGIS's teardown of a project with a memory layer can crash after the answer is out
