"""zoning: main functional zone classification and three-control-line checks.

The package is the domain: pure functions on GeoDataFrames and arrays. Only :mod:`zoning.pipeline` touches files,
through :mod:`layers`.
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("zoning")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
