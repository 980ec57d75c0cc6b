"""Rasters in windows give the whole-raster answer: known shares, counties cut by windows, mixed CRSs, slopes."""
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from pyproj import CRS

from layers import zonal
from zoning.coverage import coverage
from zoning.indicators import shares_from_fractions, terrain, terrain_from_blocks
from zoning.legends import LEGENDS

UTM = CRS.from_epsg(32648)


def _tif(path, data, transform, crs, nodata=None):
    with rasterio.open(path, "w", driver="GTiff", height=data.shape[0], width=data.shape[1], count=1,
                       dtype=data.dtype, crs=crs, transform=transform, nodata=nodata, tiled=True, blockxsize=16,
                       blockysize=16) as dst:
        dst.write(data, 1)
    return path


def test_streamed_shares_are_known_by_hand(tmp_path):
    """A 100 × 100 grid of 100 m cells: the left 30 columns built-up (13), the rest forest (5); 255 in one corner."""
    data = np.full((100, 100), 5, dtype="uint8")
    data[:, :30] = 13
    data[:10, 90:] = 255
    tr = Affine(100, 0, 0, 0, -100, 10_000)
    path = _tif(tmp_path / "lc.tif", data, tr, UTM, nodata=255)
    # county A straddles the built-up edge; B lies partly on nodata
    a = shapely.box(2000, 0, 4000, 5000)          # columns 20-39: 10 built-up, 10 forest
    b = shapely.box(8000, 8000, 10_000, 10_000)   # rows 0-19, cols 80-99: 10 x 10 nodata of 400 cells
    for max_cells in (10, 1_000_000):             # tiny: exactextract cuts each county into many windows
        codes, fracs, cells, nodata = zonal.landcover_fractions(path, np.array([a, b]), max_cells)
        sh = shares_from_fractions(codes, fracs, cells, LEGENDS["igbp"])
        assert sh.built_up_share[0] == pytest.approx(0.5)
        assert sh.ecological_share[0] == pytest.approx(0.5)
        assert sh.landcover_valid_share[1] == pytest.approx(300 / 400)
        assert sh.built_up_share[1] == pytest.approx(0.0) and sh.ecological_share[1] == pytest.approx(1.0)
        assert cells.tolist() == pytest.approx([1000.0, 400.0])


def _blocks(dem, tr, block, halo=1):
    """DEM blocks as layers.zonal.iter_blocks yields them, from an array (NaN beyond the edges)."""
    h, w = dem.shape
    padded = np.pad(dem, halo + block, constant_values=np.nan)
    for r in range(-1, h + 1, block):
        for c in range(-1, w + 1, block):
            rr, cc = r + halo + block, c + halo + block
            bh, bw = min(block, h + 1 - r), min(block, w + 1 - c)
            yield (padded[rr - halo: rr + bh + halo, cc - halo: cc + bw + halo],
                   tr @ Affine.translation(c - halo, r - halo), halo)


@pytest.mark.parametrize("block", [3, 7, 1000])
def test_terrain_in_blocks_equals_the_whole_grid(block):
    rng = np.random.default_rng(1)
    dem = rng.normal(1500, 300, (40, 50))
    dem[5:8, 5:9] = np.nan
    tr = Affine(30, 0, 500_000, 0, -30, 3_400_000)
    polys = np.array([shapely.box(500_100, 3_399_100, 500_900, 3_399_900),      # cut by many blocks
                      shapely.box(500_000, 3_398_800, 501_500, 3_400_000)])    # the whole grid
    cov = coverage(polys, tr, dem.shape, UTM.to_wkt(), geographic=False)
    whole, m1 = terrain(cov, dem, 30.0, 30.0, 30.0)
    parts, m2 = terrain_from_blocks(polys, _blocks(dem, tr, block), UTM)
    assert m1 == m2 == "slope>25°"
    for c in ["elevation_mean", "relief", "steep_share", "dem_cells"]:
        np.testing.assert_allclose(parts[c], whole[c], rtol=1e-9, err_msg=c)


@pytest.mark.parametrize("angle, steep", [(30.0, 1.0), (20.0, 0.0)])
def test_slope_on_an_inclined_plane_projected(angle, steep):
    y = np.arange(60)[:, None] * 30.0
    dem = np.repeat(np.tan(np.radians(angle)) * y, 60, axis=1)
    tr = Affine(30, 0, 0, 0, -30, 1800)
    poly = np.array([shapely.box(300, 300, 1500, 1500)])
    out, method = terrain_from_blocks(poly, _blocks(dem, tr, 16), UTM)
    assert method == "slope>25°" and out.steep_share[0] == pytest.approx(steep)


def test_slope_on_an_inclined_plane_in_lon_lat():
    """1 arc-second cells at 30°N; elevation rises 30° northward in true metres."""
    from zoning.areas import cell_sizes_m

    res = 1 / 3600
    top = 30.05
    dx, dy = cell_sizes_m(top, res, 120, res)
    north = np.cumsum(dy[::-1])[::-1]  # metres from the southern edge
    dem = np.repeat((np.tan(np.radians(30.0)) * north)[:, None], 120, axis=1)
    tr = Affine(res, 0, 104.0, 0, -res, top)
    poly = np.array([shapely.box(104.005, top - 0.028, 104.028, top - 0.005)])
    out, method = terrain_from_blocks(poly, _blocks(dem, tr, 40), CRS.from_epsg(4326))
    assert method == "slope>25°" and out.steep_share[0] == pytest.approx(1.0)
    dem20 = dem * np.tan(np.radians(20.0)) / np.tan(np.radians(30.0))
    out, _ = terrain_from_blocks(poly, _blocks(dem20, tr, 40), CRS.from_epsg(4326))
    assert out.steep_share[0] == pytest.approx(0.0)


def test_land_cover_in_albers_and_dem_in_lon_lat(tmp_path, sample):
    """Each raster on its own grid and CRS: the same counties, land cover warped to Albers metres (nearest)."""
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    import zoning
    from zoning.areas import CHINA_ALBERS

    src_path = sample / "landcover.tif"
    with rasterio.open(src_path) as src:
        tr, w, h = calculate_default_transform(src.crs, CHINA_ALBERS.to_wkt(), src.width, src.height,
                                               *src.bounds, resolution=1000)
        out = np.full((h, w), 255, dtype="uint8")
        reproject(rasterio.band(src, 1), out, dst_transform=tr, dst_crs=CHINA_ALBERS.to_wkt(),
                  resampling=Resampling.nearest, dst_nodata=255)
    alb = _tif(tmp_path / "lc_albers.tif", out, tr, CHINA_ALBERS.to_wkt(), nodata=255)
    a = zoning.classify(sample / "counties.gpkg", {"landcover": str(src_path), "dem": str(sample / "dem.tif")})
    b = zoning.classify(sample / "counties.gpkg", {"landcover": str(alb), "dem": str(sample / "dem.tif")})
    big = a.area_km2 > 2000  # many 1 km cells: warping changes little
    assert np.nanmax(np.abs(a.built_up_share - b.built_up_share)[big]) < 0.02
    assert np.nanmax(np.abs(a.ecological_share - b.ecological_share)[big]) < 0.05
    np.testing.assert_allclose(a.elevation_mean, b.elevation_mean)
