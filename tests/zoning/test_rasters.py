"""The raster kinds' table: a new raster indicator is one entry there and its label in the model's indicators."""
import numpy as np
import pytest
import rasterio

import zoning
from zoning import model as model_mod, rasters
from zoning.errors import UsageError


def test_a_new_raster_indicator_is_one_entry_and_one_label(sample, tmp_path, monkeypatch):
    """An NDVI kind read as a coverage-weighted mean: declared in two places, it is read, named and written."""
    monkeypatch.setitem(rasters.KINDS, "ndvi", rasters.RasterKind("ndvi", "mean", "NDVI, -1 to 1", "ndvi_mean"))
    monkeypatch.setitem(model_mod.INDICATORS, "ndvi_mean", ("Mean NDVI", "平均归一化植被指数"))
    with rasterio.open(sample / "landcover.tif") as src:
        profile = src.profile | {"dtype": "float32", "nodata": -9.0}
        h, w = src.height, src.width
    left = np.arange(w) < w // 2  # 0.2 in the western half, 0.6 in the eastern: a county inside one half has it
    values = np.where(left, 0.2, 0.6).astype("float32")[None, :].repeat(h, axis=0)
    with rasterio.open(tmp_path / "ndvi.tif", "w", **profile) as dst:
        dst.write(values, 1)
    z = zoning.classify(sample / "counties.gpkg", {"landcover": str(sample / "landcover.tif"),
                                                   "ndvi": str(tmp_path / "ndvi.tif")}).set_index("county_id")
    assert "ndvi_mean" in z and z["ndvi_mean"].between(0.2 - 1e-6, 0.6 + 1e-6).all()
    with rasterio.open(sample / "landcover.tif") as src:
        split = src.transform.c + (w // 2) * src.transform.a  # the longitude where the value changes
    west = z.geometry.bounds.maxx < split
    east = z.geometry.bounds.minx > split
    assert west.any() and east.any()
    assert z.loc[west, "ndvi_mean"].to_numpy() == pytest.approx(0.2)
    assert z.loc[east, "ndvi_mean"].to_numpy() == pytest.approx(0.6)
    assert z.attrs["info"]["rasters"]["ndvi"]["statistic"] == "coverage-weighted mean"


def test_the_command_line_and_project_inputs_follow_the_table():
    from zoning.pipeline.config import PROJECT_INPUTS

    assert {k: PROJECT_INPUTS[k] for k in rasters.KINDS} == {"landcover": True, "dem": False, "population": False,
                                                             "nightlights": False}
    assert rasters.help_text().endswith("only landcover is required.")
    with pytest.raises(ValueError, match="reader 'median'"):
        rasters.RasterKind("x", "median", "")


def test_an_unknown_kind_is_named_with_the_known_ones(sample):
    with pytest.raises(UsageError, match="unknown kind\\(s\\) ndwi; use landcover=PATH, dem=PATH"):
        zoning.classify(sample / "counties.gpkg", {"landcover": str(sample / "landcover.tif"), "ndwi": "x.tif"})

