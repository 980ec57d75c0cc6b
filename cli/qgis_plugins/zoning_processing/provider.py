"""The provider ``zoning``: the algorithms, and the setting that names the ``zoning`` executable."""
import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms import SPECS, ZoningAlgorithm
from .runner import SETTING

HERE = os.path.dirname(__file__)


class ZoningProvider(QgsProcessingProvider):
    def id(self):
        return "zoning"

    def name(self):
        return "Zoning 主体功能区"

    def longName(self):  # noqa: N802
        return "Zoning: main functional zones and the three control lines"

    def icon(self):
        return QIcon(os.path.join(HERE, "icon.svg"))

    def load(self):
        try:
            from processing.core.ProcessingConfig import ProcessingConfig, Setting

            ProcessingConfig.settingIcons[self.name()] = self.icon()
            ProcessingConfig.addSetting(Setting(self.name(), SETTING, "zoning executable (empty: found on PATH)",
                                                "", valuetype=Setting.FILE))
            ProcessingConfig.readSettings()
        except ImportError:
            pass
        self.refreshAlgorithms()
        return True

    def unload(self):
        try:
            from processing.core.ProcessingConfig import ProcessingConfig

            ProcessingConfig.removeSetting(SETTING)
        except ImportError:
            pass

    def loadAlgorithms(self):  # noqa: N802
        for command in SPECS:
            self.addAlgorithm(ZoningAlgorithm(command))
