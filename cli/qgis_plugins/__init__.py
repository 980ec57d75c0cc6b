"""QGIS plugins shipped with zoning: the folder to put on ``QGIS_PLUGINPATH`` (``zoning qgis path``).

Their code runs inside QGIS's own Python, not the tool's environment: it imports nothing from zoning and runs the
``zoning`` executable, as QGIS's GRASS and R providers run theirs."""
