"""Check registry, content-derived ids and totals that never double count."""
import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings, strategies as st
from pyproj import Geod

import zoning
from tests.conftest import gk_square
from zoning import outputs, violations as vio


def test_ids_are_built_from_content_only():
    ids = vio.violation_ids(np.array(["510104", "513332"], dtype=object), np.array(["CON-ERL", "CON-OUT"]),
                            np.array(["P1", "WP2024000029"], dtype=object), np.array(["ERL7", None], dtype=object))
    assert list(ids) == ["510104-CON-ERL-P1-ERL7", "513332-CON-OUT-WP2024000029"]


def test_odd_ids_get_a_short_stable_digest():
    long_id = "四川省成都市锦江区-图斑-0001"
    a = vio.violation_ids(np.array(["510104"], dtype=object), np.array(["CON-ERL"]), np.array([long_id], dtype=object))
    b = vio.violation_ids(np.array(["510104"], dtype=object), np.array(["CON-ERL"]), np.array([long_id], dtype=object))
    assert a[0] == b[0] and a[0].startswith("510104-CON-ERL-h") and len(a[0]) == len("510104-CON-ERL-h") + 10


def test_every_registered_check_is_in_the_schema_and_rules():
    rules = zoning.load_rules(None)
    for cid in list(vio.CONFLICT_CHECKS) + list(vio.CONSTRUCTION_CHECKS):
        assert cid in outputs.CHECKS and cid in rules["checks"]
    codes = [c.code for c in outputs.CHECKS.values()]
    assert len(codes) == len(set(codes))


@pytest.fixture(scope="module")
def sample_layers(sample):
    lines = [gpd.read_file(sample / f"{k}.gpkg") for k in ("red_line", "farmland", "urban_boundary")]
    parcels = gpd.read_file(sample / "construction.gpkg")
    hits = zoning.check(*lines, construction=parcels).violations.parcel_id.unique()
    # parcels with findings, plus as many without
    rest = parcels[~parcels.id.isin(hits)].iloc[:150]
    return lines, parcels[parcels.id.isin(hits[:150])], rest


def _ids(lines, parcels, chunk):
    rules = zoning.load_rules(None)
    rules["rules"]["chunk_size"] = chunk
    v = zoning.check(*lines, construction=parcels, rules=rules).violations
    return dict(zip(v.violation_id, zip(v.check_id, v.parcel_id, v.control_id.fillna(""), v.area_m2.round(6))))


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), chunk=st.sampled_from([1, 7, 50_000]))
def test_ids_survive_shuffling_chunking_and_other_parcels(sample_layers, seed, chunk):
    lines, hit, rest = sample_layers
    base = _ids(lines, hit.iloc[:100], 50_000)
    rng = np.random.default_rng(seed)
    # drop 20 parcels, add 50 others, shuffle
    changed = gpd.GeoDataFrame(
        pd_concat([hit.iloc[20:], rest.iloc[:50]]).iloc[rng.permutation(len(hit) - 20 + 50)], crs=hit.crs)
    other = _ids(lines, changed, chunk)
    kept = set(hit.iloc[20:100].id)
    want = {k: v for k, v in base.items() if v[1] in kept}
    got = {k: v for k, v in other.items() if v[1] in kept}
    assert want and got == want


def pd_concat(frames):
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def test_totals_count_overlapping_features_once():
    """Two red-line features overlapping by half; one parcel across both: rows 3,750 + 3,750, union 5,000 m²."""
    sq, crs = gk_square(104.0, 30.6, 100.0)
    x0, y0 = sq.bounds[:2]
    box = lambda a, b, c, d: shapely.box(x0 + a, y0 + b, x0 + c, y0 + d)  # noqa: E731
    red = gpd.GeoDataFrame({"id": ["A", "B"]}, geometry=[box(0, 0, 100, 100), box(50, 0, 150, 100)], crs=crs)
    farm = gpd.GeoDataFrame({"id": ["F"]}, geometry=[box(1000, 1000, 1100, 1100)], crs=crs)
    udb = gpd.GeoDataFrame({"id": ["U"]}, geometry=[box(-1000, -1000, 1000, 1000)], crs=crs)
    parcel = box(25, 25, 125, 75)
    cons = gpd.GeoDataFrame({"id": ["P"], "BSM": ["5101040000001"], "area_m2": [5000.0]}, geometry=[parcel], crs=crs)
    res = zoning.check(red, farm, udb, construction=cons)
    rows = res.violations[res.violations.check_id == "construction_in_red_line"]
    assert sorted(rows.control_id) == ["A", "B"] and rows.overlap.all()
    assert rows.area_m2.sum() == pytest.approx(7500.0, rel=2e-3)
    total = res.county_summary.query("check_id == 'construction_in_red_line' and county_id == 'TOTAL'").iloc[0]
    # independent: the geodesic area of the parcel's part inside the union of the red line
    inside = gpd.GeoSeries([parcel.intersection(shapely.union_all(red.geometry.values))], crs=crs).to_crs(4490)
    geodesic = abs(Geod(ellps="GRS80").geometry_area_perimeter(inside.iloc[0])[0])
    assert geodesic == pytest.approx(5000.0, rel=2e-3)
    assert total.area_m2 == pytest.approx(geodesic, rel=1e-4)
    assert total["count"] == 2 and total["parcels"] == 1
    # the parcel ledger: one row, its area in the red line counted once, its own fields carried through
    led = res.parcels
    assert len(led) == 1 and led.red_line_m2.iloc[0] == pytest.approx(geodesic, rel=1e-4)
    assert led.area_m2.iloc[0] == pytest.approx(5000.0, rel=2e-3) and led.in_red_line.iloc[0]
    assert not led.on_farmland.iloc[0] and led.farmland_m2.iloc[0] == 0.0
    assert led.worst_severity.iloc[0] == "critical" and led.verdict.iloc[0] == "待核实"
    assert set(led.violation_ids.iloc[0].split("; ")) == set(res.violations.violation_id)
    assert led.BSM.iloc[0] == "5101040000001" and led.input_area_m2.iloc[0] == 5000.0  # clash → prefixed
    # the self-overlap of the red line is reported too, once, with ids ordered by id
    self_rows = res.conflicts[res.conflicts.check_id == "self_overlap"]
    assert list(zip(self_rows.control_id, self_rows.other_control_id)) == [("A", "B")]
    assert self_rows.violation_id.iloc[0].endswith("-SELF-ERL-A-B")


def test_invalid_result_geometry_is_repaired():
    bow = shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])  # self-intersecting bow-tie
    line = shapely.GeometryCollection([shapely.box(0, 0, 1, 1), shapely.LineString([(0, 0), (5, 5)])])
    out = vio.valid_polygonal(np.array([bow, line], dtype=object))
    assert shapely.is_valid(out).all()
    assert out[0].area == pytest.approx(50.0) and out[1].geom_type == "Polygon"


def test_cropland_in_the_ledger_is_counted_once_against_a_geodesic_truth():
    """Two overlapping cultivated-land patches under one parcel: cropland_m2 is the area on their union."""
    sq, crs = gk_square(104.0, 30.6, 100.0)
    x0, y0 = sq.bounds[:2]
    box = lambda a, b, c, d: shapely.box(x0 + a, y0 + b, x0 + c, y0 + d)  # noqa: E731
    red = gpd.GeoDataFrame({"id": ["A"]}, geometry=[box(5000, 5000, 5100, 5100)], crs=crs)
    farm = gpd.GeoDataFrame({"id": ["F"]}, geometry=[box(1000, 1000, 1100, 1100)], crs=crs)
    udb = gpd.GeoDataFrame({"id": ["U"]}, geometry=[box(-1000, -1000, 1000, 1000)], crs=crs)
    crop = gpd.GeoDataFrame({"id": ["G1", "G2"]}, geometry=[box(0, 0, 60, 100), box(40, 0, 90, 100)], crs=crs)
    parcel = box(20, 20, 120, 80)
    cons = gpd.GeoDataFrame({"id": ["P"]}, geometry=[parcel], crs=crs)
    led = zoning.check(red, farm, udb, construction=cons, cropland=crop.to_crs(4490)).parcels
    inside = gpd.GeoSeries([parcel.intersection(shapely.union_all(crop.geometry.values))], crs=crs).to_crs(4490)
    truth = abs(Geod(ellps="GRS80").geometry_area_perimeter(inside.iloc[0])[0])
    assert truth == pytest.approx(70 * 60, rel=2e-3)
    assert led.cropland_m2.iloc[0] == pytest.approx(truth, rel=5e-3)
    assert led.cropland_mu.iloc[0] == pytest.approx(truth / (10000 / 15), rel=5e-3)


def test_a_parcel_across_a_county_border_is_booked_to_both_counties():
    """A parcel lying 70 % / 30 % across a border: each county gets its own row and its own area, in violations and
    county_summary, and the two add up to the parcel (ids stable when the parcels are reordered)."""
    import geopandas as gpd
    import shapely
    from pyproj import Geod

    import zoning

    geod = Geod(ellps="GRS80")
    west = shapely.box(103.8, 29.8, 104.0, 30.2)
    east = shapely.box(104.0, 29.8, 104.2, 30.2)
    counties = gpd.GeoDataFrame({"county_id": ["510001", "510002"], "name": ["西县", "东县"]},
                                geometry=[west, east], crs=4490)
    red = gpd.GeoDataFrame({"id": ["ERL1"]}, geometry=[shapely.box(103.9, 29.9, 104.1, 30.1)], crs=4490)
    far = gpd.GeoDataFrame({"id": ["X"]}, geometry=[shapely.box(103.81, 29.81, 103.82, 29.82)], crs=4490)
    parcel = shapely.box(103.986, 30.0, 104.006, 30.02)  # 0.014° west of the border, 0.006° east
    other = shapely.box(103.95, 30.05, 103.96, 30.06)
    parcels = gpd.GeoDataFrame({"id": ["P", "Q"]}, geometry=[parcel, other], crs=4490)
    res = zoning.check(red, far, far, construction=parcels, counties=counties)
    v = res.violations[res.violations["check_id"] == "construction_in_red_line"].set_index(["parcel_id", "county_id"])
    truth = {c: abs(geod.geometry_area_perimeter(parcel.intersection(g))[0]) for c, g in
             (("510001", west), ("510002", east))}
    for c, t in truth.items():
        assert v.loc[("P", c), "area_m2"] == pytest.approx(t, rel=0.003), c
        assert v.loc[("P", c), "violation_id"] == f"{c}-CON-ERL-P-ERL1"
    assert v.loc[("P", "510002"), "area_m2"] / v.xs("P")["area_m2"].sum() == pytest.approx(0.3, abs=0.01)
    assert v.loc[("Q", "510001"), "violation_id"] == "510001-CON-ERL-Q-ERL1"  # inside one county: one row
    s = res.county_summary.set_index(["check_id", "county_id"]).loc["construction_in_red_line"]
    assert s.loc["510002", "area_m2"] == pytest.approx(truth["510002"], rel=0.003)
    assert s.loc["TOTAL", "area_m2"] == pytest.approx(v["area_m2"].sum(), abs=0.05)
    assert shapely.is_valid(res.violations.geometry.values).all()
    again = zoning.check(red, far, far, construction=parcels.iloc[::-1], counties=counties)
    assert sorted(again.violations["violation_id"]) == sorted(res.violations["violation_id"])
