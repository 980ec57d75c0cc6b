"""The plugin: registers the provider with Processing, with or without QGIS's interface."""
from qgis.core import QgsApplication

from .provider import ZoningProvider


class ZoningPlugin:
    def __init__(self, iface=None):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802 - QGIS's name
        if self.provider is None:
            self.provider = ZoningProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 - QGIS's name
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
