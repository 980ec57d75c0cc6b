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
            if src.count > 1:
                bands = ", ".join(c.name for c in src.colorinterp[:4]) + ("…" if src.count > 4 else "")
                raise DataError(f"{name} raster {p} has {src.count} bands ({bands}); zoning reads one band of "
                                "values, not a rendering. "
                                f"Give the single-band source, or take the band that holds the values: "
                                f"gdal_translate -b N {p.name} {p.stem}_bandN.tif")
            missing = [f for f in src.files[1:] if not Path(f).exists() and "://" not in f]
            if missing:
                raise DataError(f"{name} raster {p} is a mosaic whose tile(s) {', '.join(missing[:5])} cannot be "
                                "found; restore them or build the mosaic again (gdalbuildvrt).")
            kind = _crs_kind(src.crs)
            if kind:
                raise DataError(f"{name} raster {p} is in {kind} ({src.crs.to_string()[:80]}), which cannot be placed "
                                "on the earth; warp it to a geographic or projected CRS first (gdalwarp -t_srs "
                                f"EPSG:4490 {p.name} out.tif), or assign the right one (gdal_edit.py -a_srs …).")
            bounds = tuple(src.bounds)
            if t.e > 0:  # south-up: rasterio reports bounds with bottom > top
                bounds = (bounds[0], min(bounds[1], bounds[3]), bounds[2], max(bounds[1], bounds[3]))
            return {"crs": src.crs, "bounds": bounds, "res": src.res, "shape": (src.height, src.width),
                    "nodata": src.nodata, "dtype": src.dtypes[0], "unit": (src.units or [None])[0] or None,
                    "south_up": t.e > 0}
    except rasterio.errors.RasterioIOError as exc:
        raise DataError(f"{name}: cannot open raster {p}: {exc}") from None


def _crs_kind(crs) -> str | None:
    """'a local engineering CRS' for a CRS that is neither geographic nor projected (None otherwise)."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        c = CRS.from_wkt(crs.to_wkt())
    except CRSError:
        return "a CRS PROJ cannot read"
    if c.is_geographic or c.is_projected:
        return None
    return "a local engineering CRS" if c.is_engineering else "a CRS that is neither geographic nor projected"
