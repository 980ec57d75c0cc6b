"""Property tests (hypothesis) on random polygons."""
import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoning import controllines as cl
import zoning

coord = st.floats(0, 1000, allow_nan=False)


@st.composite
def parcel(draw):
    pts = draw(st.lists(st.tuples(coord, coord), min_size=3, max_size=9))
    g = shapely.MultiPoint(pts).convex_hull
    if g.geom_type != "Polygon" or g.area < 1.0:  # collinear or repeated points: no polygon to test
        x, y = draw(st.tuples(st.floats(0, 900), st.floats(0, 900)))
        g = shapely.box(x, y, x + 50, y + 50)
    return g


@st.composite
def control_layer(draw):
    """Disjoint features: a random subset of 100 m grid cells, some merged into multipolygons."""
    cells = draw(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=1, max_size=40, unique=True))
    boxes = [shapely.box(100 * i, 100 * j, 100 * i + 100, 100 * j + 100) for i, j in cells]
    k = draw(st.integers(1, len(boxes)))
    groups = [shapely.union_all(boxes[i::k]) for i in range(k)]
    return np.array(groups, dtype=object)


@settings(max_examples=60, deadline=None)
@given(parcels=st.lists(parcel(), min_size=1, max_size=8), ctrl=control_layer(),
       tile=st.sampled_from([30.0, 250.0, 1e9]))
def test_inside_plus_outside_equals_parcel_and_parts_are_bounded(parcels, ctrl, tile):
    p = np.array(parcels, dtype=object)
    idx = cl.prepare_control(ctrl, [f"C{i}" for i in range(len(ctrl))], tile)
    inside = cl.overlay_parts(p, idx)
    outside = cl.outside_parts(p, idx)
    area_in = np.bincount(inside.parcel.astype(int), weights=inside.area, minlength=len(p))
    area_out = np.bincount(outside.parcel.astype(int), weights=outside.area, minlength=len(p))
    np.testing.assert_allclose(area_in + area_out, shapely.area(p), rtol=1e-7, atol=1e-6)
    assert (inside.area.to_numpy() <= shapely.area(p)[inside.parcel.astype(int)] + 1e-6).all()
    assert (area_out <= shapely.area(p) + 1e-6).all()


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1000))
def test_results_do_not_depend_on_the_input_crs(tmp_path, sample, seed):
    """The same lines and parcels given in EPSG:4490 and in the GK zone CRS (EPSG:4544): areas within 0.1 %."""
    rng = np.random.default_rng(seed)
    lines = {k: gpd.read_file(sample / f"{k}.gpkg") for k in ("red_line", "farmland", "urban_boundary")}
    parcels = gpd.read_file(sample / "construction.gpkg")
    parcels = parcels.iloc[rng.choice(len(parcels), 300, replace=False)]
    d = tmp_path / f"s{seed}"
    d.mkdir()
    totals = []
    for epsg in (4490, 4544):
        specs = {}
        for k, g in lines.items():
            specs[k] = d / f"{k}_{epsg}.gpkg"
            g.to_crs(epsg).to_file(specs[k])
        parcels.to_crs(epsg).to_file(d / f"p_{epsg}.gpkg")
        res = zoning.check(specs["red_line"], specs["farmland"], specs["urban_boundary"],
                           construction=d / f"p_{epsg}.gpkg")
        v = res.violations
        totals.append(v.groupby("check_id").area_m2.sum())
    a, b = totals
    assert set(a.index) == set(b.index)
    for c in a.index:
        assert b[c] == pytest.approx(a[c], rel=1e-3), c
