"""Year-on-year supervision on hand-built epochs: new areas against an ellipsoidal truth, each ``change`` value,
ids carried across runs, rectified findings and the auditor's follow-up carried to the same parcels."""
import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from pyproj import Geod

import zoning
from tests.conftest import check_files
from zoning import epochs
from zoning.errors import DataError

GEOD = Geod(ellps="GRS80")
D = 0.002  # parcel side in degrees (~190 m × 220 m at 30° N)


def sq(x, y, w=D, h=D):
    return shapely.box(x, y, x + w, y + h)


def geodesic(g) -> float:
    return abs(GEOD.geometry_area_perimeter(g)[0]) if g is not None and not g.is_empty else 0.0


def frame(ids, geoms, **cols):
    return gpd.GeoDataFrame({"id": ids, **cols}, geometry=geoms, crs=4490)


# the red line covers everything, so every parcel has one construction_in_red_line row (the other lines are far)
RED = frame(["ERL1"], [sq(103.9, 29.9, 0.3, 0.2)])
FARM = frame(["PBF1"], [sq(104.15, 30.15, 0.01, 0.01)])
URBAN = frame(["UDB1"], [sq(103.9, 29.9, 0.3, 0.2)])  # covers all: nothing is outside the boundary
COUNTIES = gpd.GeoDataFrame({"county_id": ["510001", "510002"], "name": ["西县", "东县"]},
                            geometry=[sq(103.8, 29.8, 0.2, 0.4), sq(104.0, 29.8, 0.2, 0.4)], crs=4490)
CURRENT = {  # parcel → (current geometry, baseline geometry or None, expected change)
    "A": (sq(103.95, 30.0), sq(103.95, 30.0), "existing"),  # identical
    "B": (sq(103.95, 30.01), sq(103.95, 30.01, D / 2, D), "expanded"),  # grew eastwards
    "C": (sq(103.95, 30.02), None, "new"),  # not in the baseline
    "D": (sq(103.95, 30.03, D / 2, D), sq(103.95, 30.03), "existing"),  # shrank (demolished in part)
    "E": (sq(103.9995, 30.04), sq(103.9995, 30.04, 0.001, D), "expanded"),  # across the county border
    "F": (sq(103.95, 30.05), sq(103.95 + D - 1e-8, 30.05), "new"),  # touches the baseline by a sliver only
}
DEMOLISHED = sq(103.95, 30.09)  # in the baseline only


def epochs_layers():
    ids = list(CURRENT)
    cur = frame(ids, [v[0] for v in CURRENT.values()], detected_on="2025-06-30")
    base_ids = [k for k, v in CURRENT.items() if v[1] is not None]
    base = frame([f"B{k}" for k in base_ids] + ["Bgone"], [CURRENT[k][1] for k in base_ids] + [DEMOLISHED])
    return cur, base


def run(cur, base=None, previous=None, counties=COUNTIES):
    return zoning.check(RED, FARM, URBAN, construction=cur, counties=counties, baseline=base, previous=previous)


def test_change_and_new_area_against_an_ellipsoidal_truth():
    cur, base = epochs_layers()
    res = run(cur, base)
    # E lies across the county border: one row per county, its west part old ground, its east part new
    e = res.violations[res.violations["parcel_id"] == "E"].set_index("county_id")
    assert e.loc["510001", "change"] == "existing" and e.loc["510002", "change"] == "expanded"
    assert e["area_m2"].sum() == pytest.approx(geodesic(CURRENT["E"][0]), rel=0.005)
    rank = {"existing": 0, "expanded": 1, "new": 2}
    rows = res.violations.assign(rank=res.violations["change"].map(rank)).sort_values("rank")
    v = rows.groupby("parcel_id").agg(change=("change", "last"), change_zh=("change_zh", "last"),
                                      new_area_m2=("new_area_m2", "sum"),
                                                 area_m2=("area_m2", "sum"), check_id=("check_id", "first"))
    assert (v["check_id"] == "construction_in_red_line").all()
    base_union = shapely.union_all(base.geometry.values)
    for pid, (g, _, change) in CURRENT.items():
        assert v.loc[pid, "change"] == change, pid
        truth = geodesic(g.difference(base_union))
        got = v.loc[pid, "new_area_m2"]
        if truth < 1:
            assert got < 1, pid
        else:
            assert got == pytest.approx(truth, rel=0.005), pid
        assert v.loc[pid, "change_zh"] == {"new": "新增", "expanded": "扩建", "existing": "原有"}[change]
    # F shares a sliver (< 1 m² is not "shared") with the baseline: new, and its new area is nearly all of it
    assert v.loc["F", "new_area_m2"] < v.loc["F", "area_m2"]
    # the county summary counts new and expanded rows; areas per county (E is in the east county)
    s = res.county_summary.set_index(["check_id", "county_id"]).loc["construction_in_red_line"]
    assert s.loc["TOTAL", "new_count"] == 4
    east = geodesic(CURRENT["E"][0].difference(base_union))
    assert s.loc["510002", "new_area_m2"] == pytest.approx(east, rel=0.005)
    assert s.loc["TOTAL", "new_area_m2"] == pytest.approx(v["new_area_m2"].sum(), abs=0.05)


def test_baseline_in_another_crs_gives_the_same_answer(caplog):
    cur, base = epochs_layers()
    ref = run(cur, base).violations.set_index("parcel_id")
    with caplog.at_level("INFO", logger="zoning"):
        got = run(cur, base.to_crs(3857)).violations.set_index("parcel_id")
    assert "baseline is in EPSG:3857" in caplog.text
    assert (got["change"] == ref["change"]).all()
    np.testing.assert_allclose(got["new_area_m2"], ref["new_area_m2"], atol=0.5)


def test_baseline_with_duplicate_ids_is_refused():
    cur, base = epochs_layers()
    base.loc[1, "id"] = base.loc[0, "id"]
    with pytest.raises(DataError, match="duplicate ids"):
        run(cur, base)


def test_previous_run_keeps_ids_lists_rectified_and_carries_follow_up(tmp_path):
    cur, base = epochs_layers()
    first = tmp_path / "2024.gpkg"
    check_files({"red_line": RED, "farmland": FARM, "urban_boundary": URBAN}, first, construction=cur,
              counties=COUNTIES)
    # the auditor fills in the ledger in QGIS
    led = gpd.read_file(first, layer="parcels")
    led.loc[led["parcel_id"] == "A", ["verdict", "status", "checked_by", "remark"]] = ["违法", "整改中", "李四", "已立案"]
    pyogrio.write_dataframe(led, first, layer="parcels", layer_options={"OVERWRITE": "YES"})
    old = gpd.read_file(first, layer="violations").set_index("parcel_id")

    # a year on: C was demolished, G is new; the county ids were recoded (content-derived ids would change)
    nxt = cur[cur["id"] != "C"]
    nxt = gpd.GeoDataFrame(np.concatenate([nxt.to_numpy(), frame(["G"], [sq(103.95, 30.07)], detected_on="2025-07-01")
                                           .to_numpy()]), columns=cur.columns, geometry="geometry", crs=4490)
    recoded = COUNTIES.assign(county_id=["520001", "520002"])
    second = tmp_path / "2025.gpkg"
    out = check_files({"red_line": RED, "farmland": FARM, "urban_boundary": URBAN}, second, construction=nxt,
                    counties=recoded, extra={"previous": first})
    v = gpd.read_file(second, layer="violations").set_index(["parcel_id", "county_id"])
    old = old.set_index("county_id", append=True)
    for pid, county in (("A", "0001"), ("B", "0001"), ("D", "0001"), ("E", "0001"), ("E", "0002"), ("F", "0001")):
        assert v.loc[(pid, "52" + county), "violation_id"] == old.loc[(pid, "51" + county), "violation_id"]
        assert v.loc[(pid, "52" + county), "first_detected_on"] == "2025-06-30"
    v = v.reset_index("county_id")
    assert v.loc["G", "violation_id"].startswith("520001-")
    assert v.loc["G", "first_detected_on"] == "2025-07-01"
    rect = gpd.read_file(second, layer="rectified")
    assert rect["parcel_id"].tolist() == ["C"]
    assert rect["violation_id"].tolist() == [old.loc[("C", "510001"), "violation_id"]]
    assert rect["status"].tolist() == ["未整改"]  # the earlier ledger's status, kept as the auditor left it
    assert rect.geometry.iloc[0].equals_exact(gpd.read_file(first, layer="violations").set_index("parcel_id")
                                              .geometry.loc["C"], 1e-9)
    assert out["result"].info["rectified"] == 1
    led2 = gpd.read_file(second, layer="parcels").set_index("parcel_id")
    assert led2.loc["A", ["verdict", "status", "checked_by", "remark"]].tolist() == ["违法", "整改中", "李四", "已立案"]
    assert led2.loc["G", "verdict"] == "待核实"


def test_a_previous_file_that_is_not_a_check_output_is_refused_before_any_work(tmp_path):
    cur, _ = epochs_layers()
    not_check = tmp_path / "parcels.gpkg"
    cur.to_file(not_check, layer="construction")
    out = tmp_path / "out.gpkg"
    with pytest.raises(DataError) as err:
        check_files({"red_line": RED, "farmland": FARM, "urban_boundary": URBAN}, out, construction=cur,
                  counties=COUNTIES, extra={"previous": not_check})
    assert "layer 'violations' is missing" in str(err.value) and "layer 'parcels' is missing" in str(err.value)
    assert not out.exists()
    partial = tmp_path / "partial.gpkg"
    frame(["x"], [sq(1, 1)]).rename(columns={"id": "violation_id"}).to_file(partial, layer="violations")
    frame(["x"], [sq(1, 1)]).rename(columns={"id": "parcel_id"}).to_file(partial, layer="parcels")
    with pytest.raises(DataError, match=r"layer 'violations' lacks field\(s\) check_id, parcel_id, control_id"):
        check_files({"red_line": RED, "farmland": FARM, "urban_boundary": URBAN}, out, construction=cur,
                  counties=COUNTIES, extra={"previous": partial})
    assert not out.exists()


def test_change_rule_thresholds():
    got = epochs.change(np.array([0.0, 0.9, 5.0, 5.0, 5.0]), np.array([100.0, 100.0, 0.5, 1.0, 1.5]), 1.0)
    assert got.tolist() == ["new", "new", "existing", "existing", "expanded"]


def _landcover(path, built):
    """A 0.01° IGBP raster over 103.9–104.1°E, 29.9–30.1°N: cropland (12), built-up (13) where ``built(lon, lat)``."""
    import rasterio
    from rasterio.transform import from_origin

    lon = 103.9 + 0.01 * (np.arange(20) + 0.5)
    lat = 30.1 - 0.01 * (np.arange(20) + 0.5)
    lo, la = np.meshgrid(lon, lat)
    data = np.where(built(lo, la), 13, 12).astype("uint8")
    with rasterio.open(path, "w", driver="GTiff", width=20, height=20, count=1, dtype="uint8", crs="EPSG:4326",
                       transform=from_origin(103.9, 30.1, 0.01, 0.01), nodata=255) as dst:
        dst.write(data, 1)
    return path


def test_builtup_gain_in_the_lines_between_two_land_covers(tmp_path):
    red = frame(["ERL1"], [sq(103.95, 29.95, 0.1, 0.1)])
    farm = frame(["PBF1"], [sq(103.92, 30.0, 0.02, 0.02)])
    before = _landcover(tmp_path / "lc2019.tif", lambda lo, la: np.zeros_like(lo, dtype=bool))
    after = _landcover(tmp_path / "lc2023.tif", lambda lo, la: ((lo > 103.95) & (lo < 103.98) & (la > 29.95)
                                                                & (la < 30.05)) | ((lo > 103.92) & (lo < 103.94)
                                                                                   & (la > 30.0) & (la < 30.02)))
    res = zoning.check(red, farm, URBAN, counties=COUNTIES, landcover=after, landcover_previous=before)
    s = res.county_summary.set_index(["check_id", "county_id"])
    west_red = geodesic(sq(103.95, 29.95, 0.03, 0.1))
    farm_area = geodesic(sq(103.92, 30.0, 0.02, 0.02))
    assert s.loc[("builtup_gain_red_line", "510001"), "area_m2"] == pytest.approx(west_red, rel=0.005)
    assert s.loc[("builtup_gain_red_line", "510002"), "area_m2"] == pytest.approx(0.0, abs=1.0)
    assert s.loc[("builtup_gain_red_line", "TOTAL"), "area_m2"] == pytest.approx(west_red, rel=0.005)
    assert s.loc[("builtup_gain_red_line", "510001"), "builtup_before_m2"] == pytest.approx(0.0, abs=1.0)
    assert s.loc[("builtup_gain_farmland", "510001"), "area_m2"] == pytest.approx(farm_area, rel=0.005)
    assert s.loc[("builtup_gain_farmland", "510001"), "area_mu"] == pytest.approx(farm_area / (10000 / 15), rel=0.005)
    assert s.loc[("builtup_gain_farmland", "510001"), "check_zh"] == "永久基本农田上建设用地增加"
    # the other epoch order is a loss: negative gain
    back = zoning.check(red, farm, URBAN, counties=COUNTIES, landcover=before, landcover_previous=after)
    b = back.county_summary.set_index(["check_id", "county_id"])
    assert b.loc[("builtup_gain_red_line", "TOTAL"), "area_m2"] == pytest.approx(-west_red, rel=0.005)


def test_landcover_change_needs_both_rasters_and_counties(tmp_path):
    from zoning.errors import UsageError

    lc = _landcover(tmp_path / "lc.tif", lambda lo, la: lo > 104)
    with pytest.raises(UsageError, match="needs the current land cover"):
        zoning.check(RED, FARM, URBAN, counties=COUNTIES, landcover_previous=lc)
    with pytest.raises(UsageError, match="counties"):
        zoning.check(RED, FARM, URBAN, landcover=lc, landcover_previous=lc)


def test_an_earlier_land_cover_that_misses_part_of_a_county_gives_unknown_not_gain(tmp_path):
    """The earlier raster stops at 104.0°E: the east county's change is unknown (null, with the reason), never the
    whole of its built-up land counted as gain."""
    import rasterio
    from rasterio.transform import from_origin

    red = frame(["ERL1"], [sq(103.95, 29.95, 0.1, 0.1)])
    after = _landcover(tmp_path / "lc2023.tif", lambda lo, la: lo > 103.96)
    before = tmp_path / "lc2019_west.tif"
    with rasterio.open(before, "w", driver="GTiff", width=10, height=20, count=1, dtype="uint8", crs="EPSG:4326",
                       transform=from_origin(103.9, 30.1, 0.01, 0.01)) as dst:  # no nodata declared either
        dst.write(np.full((20, 10), 12, dtype="uint8"), 1)
    res = zoning.check(red, FARM, URBAN, counties=COUNTIES, landcover=after, landcover_previous=before)
    s = res.county_summary.set_index(["check_id", "county_id"]).loc["builtup_gain_red_line"]
    west = geodesic(sq(103.96, 29.95, 0.04, 0.1))
    assert s.loc["510001", "area_m2"] == pytest.approx(west, rel=0.01)
    assert np.isnan(s.loc["510002", "area_m2"]) and np.isnan(s.loc["510002", "builtup_before_m2"])
    assert "earlier land cover has valid data for 0%" in s.loc["510002", "note"]
    assert s.loc["TOTAL", "area_m2"] == pytest.approx(west, rel=0.01)
    assert "1 county(ies) unknown" in s.loc["TOTAL", "note"]
