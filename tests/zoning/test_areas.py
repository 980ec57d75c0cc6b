import numpy as np
import pytest
import shapely
from pyproj import CRS

from zoning import areas
from tests.conftest import gk_square


def test_gk_square_has_one_square_kilometre_geodesic_and_albers():
    sq, crs = gk_square(104.2, 30.0, 1000.0)
    geo = areas.to_crs(np.array([sq]), crs, 4490)
    assert areas.geodesic_area(geo, 4490)[0] == pytest.approx(1e6, rel=1e-3)
    assert areas.planar_area(geo, 4490)[0] == pytest.approx(1e6, rel=1e-3)


def test_gk_zone_for_chengdu_is_epsg_4544():
    assert areas.gk_zone_crs(104.06) == CRS.from_epsg(4544)  # zone 35, CM 105°E
    with pytest.raises(ValueError):
        areas.gk_zone_crs(10.0)


def test_jinjiang_geodesic_and_albers_agree(counties):
    jj = counties[counties.county_id == "510104"].geometry.values
    g = areas.geodesic_area(jj, counties.crs)[0]
    a = areas.planar_area(jj, counties.crs)[0]
    assert g == pytest.approx(a, rel=1e-3)
    assert 55e6 < g < 70e6  # 锦江区 is about 62 km²


def test_units_mu_and_hectare():
    u = areas.units(np.array([10000.0, 666.6666667]))
    assert u["area_ha"][0] == 1.0
    assert u["area_mu"][0] == pytest.approx(15.0)
    assert u["area_mu"][1] == pytest.approx(1.0)


def test_geodesic_cell_area_matches_geod_polygon():
    band = areas.geodesic_cell_areas(30.05, 0.05, 1, 0.05)[0]
    ref = abs(areas.GEOD.polygon_area_perimeter([100, 100.05, 100.05, 100], [30.05, 30.05, 30, 30])[0])
    assert band == pytest.approx(ref, rel=1e-6)


def test_empty_and_missing_geometries_have_zero_area():
    a = areas.geodesic_area(np.array([shapely.Polygon(), None], dtype=object), 4490)
    assert list(a) == [0.0, 0.0]


def test_unknown_area_method_is_refused():
    with pytest.raises(ValueError, match="geodesic"):
        areas.area_m2(np.array([shapely.box(0, 0, 1, 1)]), 4490, "degrees")


@pytest.mark.parametrize("values", [[0.333, 0.333, 0.334], [1.005, 2.005, 3.005, 0.001], [0.1] * 7])
def test_largest_remainder_reconciles_with_total(values):
    r = areas.largest_remainder(np.array(values), 2)
    assert round(r.sum(), 2) == round(sum(values), 2)
    assert np.all(np.abs(r - np.array(values)) < 0.01 + 1e-9)


def test_fast_area_equals_geodesic_within_1e4(counties):
    import shapely

    from zoning.areas import fast_area, geodesic_area

    far = [shapely.box(132.0, 47.0, 132.6, 47.5), shapely.box(75.0, 38.0, 76.0, 39.2)]  # Heilongjiang, Kashgar
    import geopandas as gpd

    g = gpd.GeoSeries(list(counties.geometry.values) + far, crs=counties.crs)
    a, b = geodesic_area(g.values, g.crs), fast_area(g.values, g.crs)
    assert np.max(np.abs(a - b) / a) < 1e-4
