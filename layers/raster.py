"""Raster metadata via rasterio, checked before use (CRS, rotation, orientation, band unit); the values are
read by :mod:`layers.zonal`."""
from __future__ import annotations

import logging
from pathlib import Path

import rasterio

from zoning.errors import DataError

log = logging.getLogger("zoning")


def raster_info(path: str | Path, name: str = "raster") -> dict:
    p = Path(path)
    if not p.exists():
        raise DataError(f"{name} raster not found: {p}")
    try:
        with rasterio.open(p) as src:
            t = src.transform
            if t.b != 0 or t.d != 0:
                raise DataError(f"{name} raster {p} is rotated or sheared (geotransform {tuple(t)[:6]}); warp it "
                                f"north-up first: gdalwarp {p.name} northup.tif")
            if src.crs is None:
                raise DataError(f"{name} raster {p} has no CRS. Assign one (e.g. gdal_edit.py -a_srs EPSG:4326 "
                                f"{p}).")
            bounds = tuple(src.bounds)
            if t.e > 0:  # south-up: rasterio reports bounds with bottom > top
                bounds = (bounds[0], min(bounds[1], bounds[3]), bounds[2], max(bounds[1], bounds[3]))
            return {"crs": src.crs, "bounds": bounds, "res": src.res, "shape": (src.height, src.width),
                    "nodata": src.nodata, "dtype": src.dtypes[0], "unit": (src.units or [None])[0] or None,
                    "south_up": t.e > 0}
    except rasterio.errors.RasterioIOError as exc:
        raise DataError(f"{name}: cannot open raster {p}: {exc}") from None
