"""Screenshots of the zoning provider for the README ("In QGIS"), rendered headless with Debian's python3-qgis:
the dialog of zoning:classify and the Processing toolbox's tree filtered on "zoning".

    QT_QPA_PLATFORM=offscreen QGIS_PLUGINPATH=$(zoning qgis path) /usr/bin/python3 docs/qgis_screenshots.py \
        docs/qgis-classify-dialog.png docs/qgis-toolbox.png
"""
import os
import sys

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QSize

app = QgsApplication([], True)
app.initQgis()
sys.path.insert(0, "/usr/share/qgis/python/plugins")
from processing.core.Processing import Processing  # noqa: E402
from processing.gui.AlgorithmDialog import AlgorithmDialog  # noqa: E402
from qgis.gui import QgsProcessingToolboxTreeView  # noqa: E402

import qgis.utils  # noqa: E402

Processing.initialize()
plugins = os.environ["QGIS_PLUGINPATH"]
sys.path.insert(0, plugins)
qgis.utils.plugin_paths = [plugins]
qgis.utils.loadPlugin("zoning_processing")
qgis.utils.startProcessingPlugin("zoning_processing")

dialog = AlgorithmDialog(QgsApplication.processingRegistry().createAlgorithmById("zoning:classify"), parent=None)
dialog.resize(QSize(900, 640))
dialog.show()
app.processEvents()
dialog.grab().save(sys.argv[1])

tree = QgsProcessingToolboxTreeView(None, QgsApplication.processingRegistry())
tree.resize(QSize(520, 150))
tree.setHeaderHidden(True)
tree.setFilterString("zoning")
tree.expandAll()
tree.show()
app.processEvents()
tree.grab().save(sys.argv[2])
os._exit(0)  # QGIS's teardown after widgets were shown can crash; the files are written
