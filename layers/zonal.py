"""Zonal reads of rasters of any size: exactextract streams the land cover itself, the DEM is read block by block.

Nothing here holds a full-grid array. Land cover: exactextract reads each county's box from the file (subdivided
to ``max_cells`` cells) and returns, per county, its codes and their true-area fractions; true area comes from a
one-column weights raster of ellipsoidal row areas on lon/lat grids (cell area depends only on the row), so the
weights cost one number per row. DEM: :func:`iter_blocks` yields blocks with a one-cell halo for slope and relief.
"""
from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import rasterio
import shapely
from affine import Affine
from exactextract import exact_extract
from exactextract.raster import NumPyRasterSource
from pyproj import CRS
from rasterio.windows import Window, from_bounds

from zoning.areas import geodesic_cell_areas
from zoning.coverage import WkbSource

log = logging.getLogger("zoning")
GDAL_CACHE_MB = 64


def _weights(src) -> NumPyRasterSource | None:
    """Ellipsoidal row areas as a one-column raster aligned with ``src`` (None on projected grids)."""
    crs = CRS.from_user_input(src.crs.to_wkt())
    if not crs.is_geographic:
        return None
    t, h, w = src.transform, src.height, src.width
    rows = geodesic_cell_areas(t.f, abs(t.e), h, t.a)
    return NumPyRasterSource(rows[:, None].astype(float), t.c, t.f + t.e * h, t.c + t.a * w, t.f,
                             srs_wkt=src.crs.to_wkt())


def landcover_fractions(path: Path, geoms: np.ndarray, max_cells: int, progress: Callable | None = None):
    """Per county: land-cover codes, their true-area fractions (nodata and cells outside the raster included as
    the raster's nodata code) and the coverage-weighted cell count.

    Parameters
    ----------
    geoms : counties in the raster's CRS
    max_cells : cells exactextract may hold at once (the memory knob)

    Returns
    -------
    (list of code arrays, list of fraction arrays, cell counts, the raster's nodata value or None)
    """
    with rasterio.open(path) as src:
        nodata, wts, wkt = src.nodata, _weights(src), src.crs.to_wkt()
    dv = ""
    if nodata is not None and np.isfinite(nodata):
        dv = f"(default_value={int(nodata) if float(nodata).is_integer() else nodata!r})"
    ops = [f"unique{dv}", f"weighted_frac{dv}" if wts is not None else f"frac{dv}", f"count{dv}"]
    feats = WkbSource(shapely.to_wkb(np.asarray(geoms)).tolist(), wkt)
    fn = (lambda frac, msg: progress(frac)) if progress else False
    # GDAL's block cache would otherwise grow to 5 % of the machine's memory on a large raster
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        values = _window_in_memory(path, geoms, max_cells) or str(path)
        r = exact_extract(values, feats, ops, weights=wts, include_cols=["idx"], output="pandas",
                          max_cells_in_memory=int(max_cells), progress=fn)
    r = r.sort_values("idx")
    codes = [np.asarray(u, dtype=float) for u in r["unique"]]
    fracs = [np.asarray(f, dtype=float) for f in r[ops[1].split("(")[0]]]
    return codes, fracs, r["count"].to_numpy(dtype=float), nodata


class _CellsInMemory(NumPyRasterSource):
    """The raster's cells under the counties, read once, on the file's own grid (same extent and resolution as
    the file source, so every coverage fraction is the same to the last bit): a window of exactextract's is a slice
    of the array, not a read from the file (thousands of Python calls holding the GIL). Windows beyond the cells
    held are read from the file."""

    def __init__(self, path: Path, src, cells: np.ma.MaskedArray, col0: int, row0: int):
        b = src.bounds
        super().__init__(cells, b.left, b.bottom, b.right, b.top, srs_wkt=src.crs.to_wkt(),
                         nodata=None if src.nodata is None else
                         (src.nodata if src.dtypes[0].startswith("float") else int(src.nodata)))
        self.path, self.col0, self.row0, self.shape = str(path), col0, row0, (src.height, src.width)

    def res(self):
        return ((self.ext[2] - self.ext[0]) / self.shape[1], (self.ext[3] - self.ext[1]) / self.shape[0])

    def read_window(self, x0, y0, nx, ny):
        c, r = x0 - self.col0, y0 - self.row0
        if c >= 0 and r >= 0 and c + nx <= self.mat.shape[1] and r + ny <= self.mat.shape[0]:
            return self.mat[r:r + ny, c:c + nx]
        with rasterio.open(self.path) as src:
            return _plain(src.read(1, window=Window(x0, y0, nx, ny), masked=True))


def _window_in_memory(path: Path, geoms: np.ndarray, max_cells: float) -> _CellsInMemory | None:
    """The cells under the counties when they fit in ``max_cells`` (a national MODIS grid: a million cells), else
    None (the file is streamed). Scaled rasters are streamed, as exactextract's file source scales them."""
    with rasterio.open(path) as src:
        t = src.transform
        if src.scales[0] not in (None, 1.0) or src.offsets[0] not in (None, 0.0) or t.b != 0 or t.d != 0 \
                or len(geoms) == 0:
            return None
        win = from_bounds(*shapely.total_bounds(np.asarray(geoms)), transform=t)
        c0, r0 = max(0, int(np.floor(win.col_off)) - 1), max(0, int(np.floor(win.row_off)) - 1)
        c1 = min(src.width, int(np.ceil(win.col_off + win.width)) + 1)
        r1 = min(src.height, int(np.ceil(win.row_off + win.height)) + 1)
        if c1 <= c0 or r1 <= r0 or (c1 - c0) * (r1 - r0) > max_cells:
            return None
        cells = _plain(src.read(1, window=Window(c0, r0, c1 - c0, r1 - r0), masked=True))
        return _CellsInMemory(path, src, cells, c0, r0)


def _plain(arr: np.ma.MaskedArray):
    """A masked array as exactextract's file source gives it: plain where nothing is masked (no nodata)."""
    return arr if len(np.ma.getmaskarray(arr).shape) and np.ma.getmask(arr) is not np.ma.nomask else arr.data


def raster_sums(path: Path, geoms: np.ndarray, max_cells: int, progress: Callable | None = None):
    """Per county: the coverage-weighted sum of the raster's values (people per cell → people) and the
    coverage-weighted count of valid cells; nodata excluded."""
    with rasterio.open(path) as src:
        wkt = src.crs.to_wkt()
    feats = WkbSource(shapely.to_wkb(np.asarray(geoms)).tolist(), wkt)
    fn = (lambda frac, msg: progress(frac)) if progress else False
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        r = exact_extract(_window_in_memory(path, geoms, max_cells) or str(path), feats, ["sum", "count", "min"], include_cols=["idx"], output="pandas",
                          max_cells_in_memory=int(max_cells), progress=fn)
    r = r.sort_values("idx")
    return r["sum"].to_numpy(dtype=float), r["count"].to_numpy(dtype=float), r["min"].to_numpy(dtype=float)


def iter_blocks(path: Path, bounds, block: int, halo: int = 1) -> Iterator[tuple[np.ndarray, Affine, int]]:
    """Blocks of band 1 over ``bounds`` (raster CRS): (float64 data with NaN for nodata, transform of the data's
    top-left cell, halo). Each block carries ``halo`` extra cells on every side (NaN beyond the raster). The band's
    GDAL scale and offset are applied (an Int16 DEM in units of 2 m or 0.1 m), as exactextract applies them."""
    with rasterio.open(path) as src:
        scale, offset = float(src.scales[0] or 1.0), float(src.offsets[0] or 0.0)
        win = from_bounds(*bounds, transform=src.transform)
        c0, r0 = int(np.floor(win.col_off)) - 1, int(np.floor(win.row_off)) - 1
        c1, r1 = int(np.ceil(win.col_off + win.width)) + 1, int(np.ceil(win.row_off + win.height)) + 1
        for r in range(r0, r1, block):
            for c in range(c0, c1, block):
                w = Window(c - halo, r - halo, min(block, c1 - c) + 2 * halo, min(block, r1 - r) + 2 * halo)
                data = np.ma.filled(src.read(1, window=w, boundless=True, masked=True).astype("float64"), np.nan)
                if scale != 1.0 or offset != 0.0:
                    data = data * scale + offset
                yield data, src.window_transform(w), halo


def count_blocks(path: Path, bounds, block: int) -> int:
    with rasterio.open(path) as src:
        win = from_bounds(*bounds, transform=src.transform)
    return int(np.ceil((win.height + 2) / block) * np.ceil((win.width + 2) / block))


@contextlib.contextmanager
def north_up(path: Path, block_rows: int = 1024):
    """The raster itself, or for a south-up raster a north-up copy in a temporary folder (rows flipped band by
    band, never the whole grid in memory)."""
    with rasterio.open(path) as src:
        t = src.transform
        if t.e < 0:
            yield Path(path)
            return
        profile = {**src.profile, "driver": "GTiff", "tiled": True, "blockxsize": 256, "blockysize": 256,
                   "compress": "deflate", "BIGTIFF": "IF_SAFER",
                   "transform": Affine(t.a, 0.0, t.c, 0.0, -t.e, t.f + t.e * src.height)}
        with tempfile.TemporaryDirectory(prefix="zoning-northup-") as d:
            out = Path(d) / "north_up.tif"
            h = src.height
            with rasterio.open(out, "w", **profile) as dst:
                for r in range(0, h, block_rows):
                    n = min(block_rows, h - r)
                    data = src.read(window=Window(0, h - r - n, src.width, n))[:, ::-1]
                    dst.write(data, window=Window(0, r, src.width, n))
                if src.units and src.units[0]:
                    dst.units = src.units
            log.info("%s is south-up: read through a north-up copy", Path(path).name)
            yield out
