"""zoning: main functional zone classification and three-control-line checks.

The library API (GeoDataFrames or paths in, typed results out)::

    import zoning
    zones = zoning.classify("counties.gpkg", {"landcover": "lc.tif", "dem": "dem.tif"})
    result = zoning.check("erl.gpkg", "pbf.gpkg", "udb.gpkg", construction="parcels.gpkg", counties=zones)
    result.violations, result.county_summary

The package is the domain (pure functions on GeoDataFrames and arrays); only :mod:`zoning.pipeline` touches
files, through :mod:`layers`. The API names are loaded on first use, so ``import zoning`` stays light.
"""
from .version import __version__

_API = {"classify": "classify", "check": "check", "CheckResult": "CheckResult", "load_model": "load_model",
        "load_rules": "load_rules", "run_project": "run_project"}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from . import pipeline

        return getattr(pipeline, _API[name])
    raise AttributeError(f"module 'zoning' has no attribute {name!r}")
