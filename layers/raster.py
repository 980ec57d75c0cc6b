"""Read rasters via rasterio: a window covering given bounds, never the whole raster when not needed."""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS
from rasterio.io import MemoryFile
from rasterio.windows import Window, from_bounds

from zoning.errors import DataError

log = logging.getLogger("zoning")


@dataclass
class RasterWindow:
    """A block of one raster band in memory, with its georeferencing.

    ``data`` is a float64 array with NaN where the source had nodata (or was outside the raster).
    """

    name: str
    data: np.ndarray
    transform: Affine
    crs: CRS
    source: str
    unit: str | None = None

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        h, w = self.data.shape
        x0, y0 = self.transform * (0, 0)
        x1, y1 = self.transform * (w, h)
        return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


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


def read_window(path: str | Path, bounds: tuple[float, float, float, float], name: str = "raster",
                margin_cells: int = 1) -> RasterWindow:
    """Read band 1 over ``bounds`` (in the raster's CRS), padded by ``margin_cells``, with boundless reads.

    Cells outside the raster come back as NaN, so callers can tell "not covered" from a value.
    """
    p = Path(path)
    info = raster_info(p, name)
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(rasterio.open(p))
        if info["south_up"]:
            src = stack.enter_context(_north_up(src))
        crs = CRS.from_user_input(src.crs.to_wkt())
        # MCD12C1 ships in a lon/lat CRS on the Clarke 1866 ellipsoid; at 0.05° the datum shift is far below a
        # cell, so any geographic CRS is read as WGS84 lon/lat (the sample README says so).
        if crs.is_geographic:
            crs = CRS.from_epsg(4326)
        win = from_bounds(*bounds, transform=src.transform)
        win = Window(int(np.floor(win.col_off)) - margin_cells, int(np.floor(win.row_off)) - margin_cells,
                     int(np.ceil(win.width)) + 2 * margin_cells + 1, int(np.ceil(win.height)) + 2 * margin_cells + 1)
        data = src.read(1, window=win, boundless=True, masked=True)
        arr = np.ma.filled(data.astype("float64"), np.nan)
        transform = src.window_transform(win)
    log.info("read %s: %s window %dx%d of %s", name, p.name, arr.shape[1], arr.shape[0], crs.to_string())
    return RasterWindow(name=name, data=arr, transform=transform, crs=crs, source=str(p), unit=info["unit"])


@contextlib.contextmanager
def _north_up(src):
    """A south-up raster flipped into a north-up in-memory copy (rows reversed; exact, no resampling)."""
    data = src.read(1)[::-1]
    t = src.transform
    profile = {**src.profile, "transform": Affine(t.a, 0.0, t.c, 0.0, -t.e, t.f + t.e * src.height), "driver": "GTiff"}
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(data, 1)
        with mem.open() as flipped:
            yield flipped
