"""Zonal reads: the land cover's cells held in memory give what the file streamed gives, to the last bit."""
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely

from layers import zonal
from zoning import areas


def _fractions(path, geoms, in_memory: bool, monkeypatch):
    if not in_memory:
        monkeypatch.setattr(zonal, "_window_in_memory", lambda *a: None)
    out = zonal.landcover_fractions(Path(path), geoms, 5e6)
    monkeypatch.undo()
    return out


@pytest.mark.parametrize("which", ["a few counties inside", "counties over the raster's edge"])
def test_cells_in_memory_equal_the_file_streamed(sample, monkeypatch, which):
    path = sample / "landcover.tif"
    cty = gpd.read_file(sample / "counties.gpkg")
    with rasterio.open(path) as src:
        crs, bounds = src.crs.to_wkt(), src.bounds
    geoms = np.asarray(areas.to_crs(cty.geometry.values, cty.crs, crs))
    if which == "a few counties inside":
        geoms = geoms[10:20]  # a window of the grid, not the whole of it
        assert zonal._window_in_memory(path, geoms, 5e6).mat.shape < rasterio.open(path).shape
    else:  # one county shifted half out of the raster: its outside part is nodata either way
        dx = (bounds.right - bounds.left) * 0.5
        geoms = np.append(geoms[:5], shapely.transform(geoms[5:6], lambda xy: xy + [dx, 0]))
    held = _fractions(path, geoms, True, monkeypatch)
    streamed = _fractions(path, geoms, False, monkeypatch)
    for a, b in zip(held[0] + held[1], streamed[0] + streamed[1]):
        assert np.array_equal(a, b)
    assert np.array_equal(held[2], streamed[2]) and held[3] == streamed[3]
    assert sum(len(c) for c in held[0]) > len(geoms)  # classes were found: the tables compared are not empty


def test_a_window_over_the_budget_is_streamed(sample):
    path = sample / "landcover.tif"
    cty = gpd.read_file(sample / "counties.gpkg")
    with rasterio.open(path) as src:
        geoms = np.asarray(areas.to_crs(cty.geometry.values, cty.crs, src.crs.to_wkt()))
        cells = src.width * src.height
    assert zonal._window_in_memory(path, geoms, cells * 2) is not None
    assert zonal._window_in_memory(path, geoms, 100) is None


def test_a_raster_without_nodata_held_in_memory_equals_the_file(sample, tmp_path, monkeypatch):
    """No nodata declared: exactextract gets plain cells (a masked array without a mask is refused by it)."""
    with rasterio.open(sample / "landcover.tif") as src:
        profile, data = src.profile, src.read(1)
    profile.pop("nodata", None)
    path = tmp_path / "bare.tif"
    with rasterio.open(path, "w", **{**profile, "nodata": None}) as dst:
        dst.write(data, 1)
    cty = gpd.read_file(sample / "counties.gpkg")
    geoms = np.asarray(areas.to_crs(cty.geometry.values, cty.crs, profile["crs"].to_wkt()))
    held = _fractions(path, geoms, True, monkeypatch)
    streamed = _fractions(path, geoms, False, monkeypatch)
    assert held[3] is None
    for a, b in zip(held[0] + held[1], streamed[0] + streamed[1]):
        assert np.array_equal(a, b)
