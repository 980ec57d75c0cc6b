"""Coverage-weighted indicators against hand computations and against exactextract itself."""
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from exactextract import exact_extract
from pyproj import CRS

from zoning.areas import geodesic_area, geodesic_cell_areas
from zoning.coverage import coverage
from zoning.indicators import admin_type, landcover_shares as _shares, terrain
from zoning.legends import LEGENDS, landcover_groups


def landcover_shares(cov, igbp_codes):
    """The indicator on IGBP-coded cells (mapped to groups by the IGBP legend, as the pipeline does)."""
    return _shares(cov, landcover_groups(igbp_codes, LEGENDS["igbp"], "test")[0])

UTM = CRS.from_epsg(32648)


def test_hand_computable_share_on_a_projected_grid():
    # 4 × 4 grid of 100 m cells; the polygon covers the left column fully and half of the next column.
    classes = np.full((4, 4), 10.0)
    classes[:, 0] = 13  # built-up
    tr = Affine(100, 0, 0, 0, -100, 400)
    poly = shapely.box(0, 0, 150, 400)
    cov = coverage(np.array([poly]), tr, classes.shape, UTM.to_wkt(), geographic=False)
    sh = landcover_shares(cov, classes)
    assert sh.built_up_share[0] == pytest.approx(100 / 150)
    assert sh.ecological_share[0] == pytest.approx(50 / 150)
    assert sh.landcover_cells[0] == pytest.approx(6.0)


def test_mosaic_counts_half_cropland_and_nodata_is_excluded():
    classes = np.array([[14.0, 12.0], [np.nan, 16.0]])
    tr = Affine(100, 0, 0, 0, -100, 200)
    cov = coverage(np.array([shapely.box(0, 0, 200, 200)]), tr, classes.shape, UTM.to_wkt(), geographic=False)
    sh = landcover_shares(cov, classes)
    assert sh.cropland_share[0] == pytest.approx(0.5)  # (0.5 + 1) / 3
    assert sh.barren_share[0] == pytest.approx(1 / 3)
    assert sh.landcover_valid_share[0] == pytest.approx(0.75)
    total = sh[["built_up_share", "cropland_share", "ecological_share", "barren_share"]].sum(axis=1)
    assert total[0] == pytest.approx(1.0)


def test_geographic_cells_are_weighted_by_true_area():
    # Two cells, one at 30°N and one at 60°N, each half covered: shares follow the cell areas, not the counts.
    classes = np.array([[13.0], [10.0]])
    top = 60.5
    tr = Affine(1.0, 0, 100, 0, -30.0, top)  # 30-degree tall cells: 60.5..30.5 and 30.5..0.5
    poly = shapely.box(100, 0.5, 101, 60.5)
    cov = coverage(np.array([poly]), tr, classes.shape, CRS.from_epsg(4326).to_wkt(), geographic=True)
    sh = landcover_shares(cov, classes)
    a = geodesic_cell_areas(top, 30.0, 2, 1.0)
    assert sh.built_up_share[0] == pytest.approx(a[0] / a.sum())


def test_shares_agree_with_exactextract_on_the_sample(sample, counties):
    with rasterio.open(sample / "landcover.tif") as src:
        data = src.read(1).astype(float)
        data[data == 255] = np.nan
        tr, crs = src.transform, src.crs
    g4326 = counties.to_crs(4326)
    cov = coverage(g4326.geometry.values, tr, data.shape, crs.to_wkt(), geographic=True)
    ours = landcover_shares(cov, data)
    # exactextract's own weighted fractions, weighting each cell by its true area
    rows = geodesic_cell_areas(tr.f, abs(tr.e), data.shape[0], tr.a)
    weights = np.repeat(rows[:, None], data.shape[1], axis=1)
    from exactextract.raster import NumPyRasterSource

    h, w = data.shape
    bounds = (tr.c, tr.f + tr.e * h, tr.c + tr.a * w, tr.f)
    vals = NumPyRasterSource(np.where(np.isnan(data), 255, data).astype("int32"), *bounds, nodata=255,
                             srs_wkt=crs.to_wkt())
    wts = NumPyRasterSource(weights, *bounds, srs_wkt=crs.to_wkt())
    res = exact_extract(vals, g4326, ["weighted_frac", "unique"], weights=wts, output="pandas")
    built = np.array([dict(zip(u, f)).get(13, 0.0) for u, f in zip(res["unique"], res["weighted_frac"])])
    assert np.max(np.abs(built - ours.built_up_share.to_numpy())) < 1e-3
    crop = np.array([dict(zip(u, f)).get(12, 0.0) + 0.5 * dict(zip(u, f)).get(14, 0.0)
                     for u, f in zip(res["unique"], res["weighted_frac"])])
    assert np.max(np.abs(crop - ours.cropland_share.to_numpy())) < 1e-3


def test_covered_area_equals_geodesic_area(sample, counties):
    with rasterio.open(sample / "landcover.tif") as src:
        tr, shape, crs = src.transform, (src.height, src.width), src.crs
    g = counties.to_crs(4326).geometry.values
    cov = coverage(g, tr, shape, crs.to_wkt(), geographic=True)
    per = np.bincount(cov.feature, weights=cov.weight, minlength=len(g))
    np.testing.assert_allclose(per, geodesic_area(g, 4326), rtol=1e-4)


def test_relief_fallback_on_a_coarse_dem():
    dem = np.array([[100.0, 100.0, 100.0], [100.0, 100.0, 1700.0], [100.0, 100.0, 100.0]])
    tr = Affine(20000, 0, 0, 0, -20000, 60000)
    cov = coverage(np.array([shapely.box(0, 40000, 20000, 60000)]), tr, dem.shape, UTM.to_wkt(), False)
    out, method = terrain(cov, dem, 20000, steep_relief_m=1000)
    assert method == "relief>1000m"
    assert out.elevation_mean[0] == 100.0
    assert out.relief[0] == 0.0  # the top-left cell's 3×3 window holds only 100 m values
    cov2 = coverage(np.array([shapely.box(20000, 20000, 40000, 40000)]), tr, dem.shape, UTM.to_wkt(), False)
    out2, _ = terrain(cov2, dem, 20000, steep_relief_m=1000)
    assert out2.relief[0] == 1600.0 and out2.steep_share[0] == 1.0


def test_admin_type_from_name_suffix():
    import pandas as pd

    t = admin_type(pd.Series(["锦江区", "都江堰市", "石渠县", "科尔沁右翼前旗", "神农架林区", "北川羌族自治县", "六枝特区"]))
    assert list(t) == ["DISTRICT", "CITY", "COUNTY", "COUNTY", "FOREST", "COUNTY", "COUNTY"]
