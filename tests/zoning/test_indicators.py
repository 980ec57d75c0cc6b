"""Indicators computed from geometry: the location (区位) distance against an independent geodesic answer."""
import numpy as np
import pytest
import shapely
from pyproj import Geod

from zoning import areas
from zoning.indicators import admin_type, city_distance_km


def test_city_distance_is_geodesic_from_the_representative_point_to_the_nearest_district():
    city = shapely.box(104.0, 30.0, 104.1, 30.1)
    near = shapely.box(104.2, 30.0, 104.3, 30.1)
    far = shapely.box(105.0, 31.0, 105.1, 31.1)
    lonlat = np.array([city, near, far], dtype=object)
    alb = np.asarray(areas.to_crs(lonlat, areas.CGCS2000, areas.CHINA_ALBERS), dtype=object)
    got = city_distance_km(shapely.point_on_surface(alb), alb[:1])
    geod = Geod(ellps="GRS80")
    p = shapely.point_on_surface(near)
    # the nearest point of the city square is on its east edge at the same latitude (up to Albers' curvature)
    truth_near = geod.inv(p.x, p.y, 104.1, p.y)[2] / 1000
    q = shapely.point_on_surface(far)
    truth_far = geod.inv(q.x, q.y, 104.1, 30.1)[2] / 1000
    assert got[0] == 0.0  # the city's own point lies in it
    assert got[1] == pytest.approx(truth_near, rel=0.005)
    assert got[2] == pytest.approx(truth_far, rel=0.005)
    assert np.isnan(city_distance_km(shapely.point_on_surface(alb), alb[:0])).all()


def test_admin_type_from_names():
    import pandas as pd

    got = admin_type(pd.Series(["锦江区", "神农架林区", "广汉市", "石渠县", "六枝特区", None]))
    assert got.tolist() == ["DISTRICT", "FOREST", "CITY", "COUNTY", "COUNTY", "COUNTY"]
