"""The zoning Processing provider: ``classFactory`` is QGIS's entry point (``iface`` is None in ``qgis_process``
and headless scripts)."""


def classFactory(iface):  # noqa: N802 - the name QGIS looks for
    from .plugin import ZoningPlugin

    return ZoningPlugin(iface)
