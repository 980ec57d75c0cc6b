"""Year-on-year supervision by ground, on hand-built epochs in metres (China Albers): the second survey numbers its
parcels afresh, and each earlier finding and ledger record must land on the same ground, whatever its number."""
import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from zoning.areas import CHINA_ALBERS
from zoning.errors import DataError
from tests.conftest import check_files

Y = 3_300_000.0  # about 30° N


def box(x0, x1, y0=Y + 100, y1=Y + 200):
    return shapely.box(x0, y0, x1, y1)


def gdf(ids, geoms, **cols):
    data = {"id": ids, **cols} if ids is not None else dict(cols)
    return gpd.GeoDataFrame(data, geometry=list(geoms), crs=CHINA_ALBERS)


RED = gdf(["ERL1", "ERL2"], [box(0, 6000, Y, Y + 10_000), box(6000, 12_000, Y, Y + 10_000)])
FARM = gdf(["PBF1"], [box(15_000, 15_100)])
URBAN = gdf(["UDB1"], [box(0, 20_000, Y, Y + 10_000)])  # nothing is outside the boundary
COUNTIES = gpd.GeoDataFrame({"county_id": ["510001", "510002"], "name": ["西县", "东县"]},
                            geometry=[box(0, 10_000, Y, Y + 10_000), box(10_000, 20_000, Y, Y + 10_000)],
                            crs=CHINA_ALBERS)
LINES = {"red_line": RED, "farmland": FARM, "urban_boundary": URBAN}

# earlier parcel → its ground in 2023; the 2024 survey below redraws and renumbers them
EARLIER = {
    "P1": box(100, 200),  # renumbered, identical
    "P2": box(300, 400),  # shifted by 1 m
    "P2s": box(500, 502, Y + 100, Y + 102),  # a 2 m shed re-digitised 1.8 m east: 10 % overlap, same shape
    "P3": box(700, 800),  # split 60 / 40
    "P4a": box(900, 950), "P4b": box(950, 1000),  # merged into one
    "P5": box(1100, 1200),  # 70 % demolished: a remnant
    "P11": box(2200, 2300),  # 40 % demolished
    "P6": box(1300, 1400),  # demolished
    "P7": box(5900, 5990),  # expanded over the next red-line feature
    "P8": box(1500, 1600),  # marked 已整改 but still there
    "P10": box(1900, 2000),  # demolished; a new neighbour overlaps it by a 1 m strip
}
CURRENT = {
    "Q1": box(100, 200), "Q2": box(301, 401), "Q2s": box(501.8, 503.8, Y + 100, Y + 102),
    "Q3a": box(700, 760), "Q3b": box(760, 800), "Q4": box(900, 1000), "Q5": box(1100, 1130), "Q11": box(2200, 2260),
    "Q7": box(5900, 6100), "Q8": box(1500, 1600), "Q9": box(1700, 1800), "Q10": box(1999, 2099),
}
FOLLOW_UP = {  # what the auditor recorded in the 2023 ledger
    "P1": ("违法", "整改中", "李四", "2024-03-01", "已立案"),
    "P3": ("违法", "未整改", "王五", "2024-03-02", ""),
    "P4a": ("违法", "未整改", "王五", "2024-03-02", ""),
    "P4b": ("合法", "未整改", "王五", "2024-03-02", "有批文"),
    "P6": ("违法", "整改中", "李四", "2024-03-03", "限期拆除"),
    "P8": ("违法", "已整改", "李四", "2024-03-04", "已拆除"),
}


def survey(parcels: dict, date: str, ids: bool = True) -> gpd.GeoDataFrame:
    return gdf(list(parcels) if ids else None, parcels.values(), detected_on=[date] * len(parcels))


def check_2023(path, earlier=EARLIER, ids=True, follow_up=FOLLOW_UP):
    check_files(LINES, path, construction=survey(earlier, "2023-06-30", ids), counties=COUNTIES)
    led = gpd.read_file(path, layer="parcels")
    for pid, vals in follow_up.items():
        led.loc[led["parcel_id"] == pid, ["verdict", "status", "checked_by", "checked_on", "remark"]] = vals
    pyogrio.write_dataframe(led, path, layer="parcels", layer_options={"OVERWRITE": "YES"})
    return gpd.read_file(path, layer="violations")


def check_2024(path, previous, current=CURRENT, ids=True, **extra):
    return check_files(LINES, path, construction=survey(current, "2024-06-30", ids), counties=COUNTIES,
                     extra={"previous": previous, **extra})


@pytest.fixture(scope="module")
def epochs(tmp_path_factory):
    d = tmp_path_factory.mktemp("epochs")
    old = check_2023(d / "2023.gpkg").set_index("parcel_id")
    out = check_2024(d / "2024.gpkg", d / "2023.gpkg")
    return {"old": old, "out": out, "path": d / "2024.gpkg"}


def red(v: pd.DataFrame, control="ERL1") -> pd.DataFrame:
    return v[(v["check_id"] == "construction_in_red_line") & (v["control_id"] == control)].set_index("parcel_id")


def test_findings_continue_on_the_same_ground_whatever_the_numbers(epochs):
    old = red(epochs["old"].reset_index())
    v = red(gpd.read_file(epochs["path"], layer="violations"))
    takes = {"Q1": "P1", "Q2": "P2", "Q2s": "P2s", "Q3a": "P3", "Q4": "P4a", "Q11": "P11", "Q7": "P7", "Q8": "P8"}
    for q, p in takes.items():
        assert v.loc[q, "violation_id"] == old.loc[p, "violation_id"], q
        assert v.loc[q, "first_detected_on"] == "2023-06-30", q
    # the minor piece of the split continues P3 under an id of its own; the merge continues both of its parts
    assert v.loc["Q3b", "violation_id"] == "510001-CON-ERL-Q3b-ERL1"
    assert v.loc["Q3b", "continues_ids"] == old.loc["P3", "violation_id"]
    assert v.loc["Q3b", "first_detected_on"] == "2023-06-30"
    # so does the remnant of a parcel mostly demolished
    assert v.loc["Q5", "violation_id"] == "510001-CON-ERL-Q5-ERL1"
    assert v.loc["Q5", "continues_ids"] == old.loc["P5", "violation_id"]
    assert v.loc["Q5", "first_detected_on"] == "2023-06-30"
    assert v.loc["Q4", "continues_ids"] == "; ".join(sorted(old.loc[["P4a", "P4b"], "violation_id"]))
    # new ground: found for the first time, even beside (Q10) or beyond (Q7 in ERL2) earlier findings
    for q in ("Q9", "Q10"):
        assert v.loc[q, "continues_ids"] == "" and v.loc[q, "first_detected_on"] == "2024-06-30", q
    q7 = red(gpd.read_file(epochs["path"], layer="violations"), "ERL2")
    assert q7.loc["Q7", "violation_id"] == "510001-CON-ERL-Q7-ERL2" and q7.loc["Q7", "continues_ids"] == ""
    assert gpd.read_file(epochs["path"], layer="violations")["violation_id"].is_unique


def test_rectified_is_what_is_gone_from_the_ground_with_its_follow_up(epochs):
    rect = gpd.read_file(epochs["path"], layer="rectified").set_index("parcel_id")
    assert sorted(rect.index) == ["P10", "P6"]
    assert rect.loc["P6", ["verdict", "status", "checked_by", "remark"]].tolist() == ["违法", "整改中", "李四", "限期拆除"]
    assert rect.loc["P6", "violation_id"] == epochs["old"].loc["P6", "violation_id"]
    assert rect.loc["P6", "geometry"].equals_exact(epochs["old"].loc["P6", "geometry"], 1e-6)
    info = epochs["out"]["meta"]["year_on_year"]
    assert (info["previous_findings"], info["continued"], info["rectified"]) == (12, 10, 2)
    assert info["continued_by_id"] == 0 and info["continued_by_ground"] == 10
    s = gpd.read_file(epochs["path"], layer="county_summary").set_index(["check_id", "county_id"])
    row = s.loc[("construction_in_red_line", "510001")]
    assert (row["previous_count"], row["rectified_count"]) == (12, 2)
    assert row["rectification_rate"] == pytest.approx(2 / 12, abs=1e-4)
    assert s.loc[("construction_in_red_line", "TOTAL"), "rectified_count"] == 2
    assert pd.isna(s.loc[("construction_in_red_line", "510002"), "rectification_rate"])


def test_the_auditors_follow_up_lands_on_the_same_ground(epochs):
    led = gpd.read_file(epochs["path"], layer="parcels").set_index("parcel_id")
    cols = ["verdict", "status", "checked_by", "checked_on", "remark"]
    assert led.loc["Q1", cols].tolist() == list(FOLLOW_UP["P1"])
    assert led.loc["Q1", "previous_parcel_ids"] == "P1"
    for q in ("Q3a", "Q3b"):  # both pieces of the split carry the verdict
        assert led.loc[q, "verdict"] == "违法" and led.loc[q, "previous_parcel_ids"] == "P3", q
    # merged parcels that disagreed: the strictest verdict, and a note naming both
    assert led.loc["Q4", "verdict"] == "违法" and led.loc["Q4", "previous_parcel_ids"] == "P4a; P4b"
    assert "违法 P4a" in led.loc["Q4", "follow_up_note"] and "合法 P4b" in led.loc["Q4", "follow_up_note"]
    # 整改不到位: marked rectified, still built on
    assert bool(led.loc["Q8", "rectification_failed"]) and led.loc["Q8", "status"] == "已整改"
    assert not led.drop(index="Q8")["rectification_failed"].astype(bool).any()
    # a 1 m strip over a demolished parcel is not its ground
    assert led.loc["Q10", "verdict"] == "待核实" and led.loc["Q10", "previous_parcel_ids"] == ""
    # the ledger names the findings by the ids they carry
    v = gpd.read_file(epochs["path"], layer="violations")
    assert led.loc["Q1", "violation_ids"] == v.loc[v["parcel_id"] == "Q1", "violation_id"].iloc[0]
    info = epochs["out"]["meta"]["year_on_year"]
    # P6 (demolished) is the one record that found no current parcel
    assert (info["follow_up_records"], info["follow_up_carried"], info["follow_up_not_carried"]) == (6, 5, 1)
    assert info["follow_up_not_carried_ids"] == ["P6"]


def test_every_written_geometry_is_valid(epochs):
    for layer, gtype in pyogrio.list_layers(epochs["path"]):
        if gtype:
            assert shapely.is_valid(pyogrio.read_dataframe(epochs["path"], layer=layer).geometry.values).all(), layer


def test_row_number_ids_follow_the_ground_when_a_parcel_is_deleted(tmp_path):
    """Without an id field parcels are numbered by row: deleting the first shifts every number by one."""
    earlier = {k: EARLIER[k] for k in ("P1", "P2", "P3", "P6")}
    first = tmp_path / "2023.gpkg"
    old = check_2023(first, earlier, ids=False, follow_up={})
    led = gpd.read_file(first, layer="parcels")
    led.loc[led["parcel_id"] == "1", ["verdict", "remark"]] = ["违法", "P2 的结论"]  # row 1 is P2's ground
    pyogrio.write_dataframe(led, first, layer="parcels", layer_options={"OVERWRITE": "YES"})
    current = {k: v for k, v in earlier.items() if k != "P1"}  # P1's ground is gone; the rest shift up a row
    check_2024(tmp_path / "2024.gpkg", first, current, ids=False)
    v = gpd.read_file(tmp_path / "2024.gpkg", layer="violations").set_index("parcel_id")
    o = old.set_index("parcel_id")
    assert [v.loc[str(i), "violation_id"] for i in range(3)] == [o.loc[str(i), "violation_id"] for i in (1, 2, 3)]
    led2 = gpd.read_file(tmp_path / "2024.gpkg", layer="parcels").set_index("parcel_id")
    assert led2.loc["0", ["verdict", "remark"]].tolist() == ["违法", "P2 的结论"]
    assert (led2.drop(index="0")["verdict"] == "待核实").all()
    rect = gpd.read_file(tmp_path / "2024.gpkg", layer="rectified")
    assert rect["violation_id"].tolist() == [o.loc["0", "violation_id"]]
    assert v.index.size == 3 and v["violation_id"].is_unique


def test_reused_ids_on_other_ground_do_not_inherit(tmp_path):
    """A parcel id reused for other ground: its finding is new, under an id that is not the earlier one's."""
    first = tmp_path / "2023.gpkg"
    old = check_2023(first, {k: EARLIER[k] for k in ("P1", "P6")}, follow_up={"P1": FOLLOW_UP["P1"]})
    old = old.set_index("parcel_id")
    check_2024(tmp_path / "2024.gpkg", first, {"P1": box(700, 800)})
    v = gpd.read_file(tmp_path / "2024.gpkg", layer="violations").set_index("parcel_id")
    assert v.loc["P1", "violation_id"] != old.loc["P1", "violation_id"]
    assert v.loc["P1", "violation_id"].startswith(old.loc["P1", "violation_id"] + "-g")
    assert v.loc["P1", "continues_ids"] == ""
    assert gpd.read_file(tmp_path / "2024.gpkg", layer="parcels")["verdict"].tolist() == ["待核实"]
    assert sorted(gpd.read_file(tmp_path / "2024.gpkg", layer="rectified")["parcel_id"]) == ["P1", "P6"]


def test_persistent_ids_are_matched_by_id_first(tmp_path):
    first = tmp_path / "2023.gpkg"
    old = check_2023(first, {"P3": EARLIER["P3"]}, follow_up={}).set_index("parcel_id")
    # P3 keeps its number on the smaller piece; the larger piece gets a new one
    out = check_2024(tmp_path / "2024.gpkg", first, {"P3": box(760, 800), "P3b": box(700, 760)})
    v = gpd.read_file(tmp_path / "2024.gpkg", layer="violations").set_index("parcel_id")
    assert v.loc["P3", "violation_id"] == old.loc["P3", "violation_id"]
    assert v.loc["P3b", "violation_id"] == "510001-CON-ERL-P3b-ERL1"
    assert out["meta"]["year_on_year"]["continued_by_id"] == 1


def test_a_previous_run_or_baseline_elsewhere_is_refused_before_any_work(tmp_path):
    far = {k: shapely.affinity.translate(g, 1_500_000, 0) for k, g in EARLIER.items()}
    lines_far = {k: gdf(g["id"].tolist(), [shapely.affinity.translate(x, 1_500_000, 0) for x in g.geometry])
                 for k, g in LINES.items()}
    prev = tmp_path / "far.gpkg"
    check_files(lines_far, prev, construction=survey(far, "2023-06-30"))
    out = tmp_path / "2024.gpkg"
    with pytest.raises(DataError, match=r"and the earlier run \(.*far.gpkg\) do not overlap \(extents"):
        check_2024(out, prev)
    assert not out.exists()
    with pytest.raises(DataError, match=r"and the baseline .* do not overlap"):
        check_2024(out, None, baseline=survey(far, "2023-06-30"))
    assert not out.exists()


def test_previous_files_as_people_keep_them(tmp_path, caplog):
    """Duplicated rows, typed follow-up fields: read as meant. A layer without geometry: refused up front."""
    first = tmp_path / "2023.gpkg"
    check_2023(first, {"P1": EARLIER["P1"], "P6": EARLIER["P6"]}, follow_up={})
    v = gpd.read_file(first, layer="violations")
    pyogrio.write_dataframe(pd.concat([v, v.iloc[:1]]), first, layer="violations", layer_options={"OVERWRITE": "YES"})
    led = gpd.read_file(first, layer="parcels")
    led["checked_by"] = [7, 8]  # staff numbers
    led["checked_on"] = pd.to_datetime(["2024-03-01 09:30", "2024-03-02 10:00"])
    led["verdict"] = "违法"
    pyogrio.write_dataframe(led, first, layer="parcels", layer_options={"OVERWRITE": "YES"})
    with caplog.at_level("WARNING", logger="zoning"):
        check_2024(tmp_path / "2024.gpkg", first, {"Q1": EARLIER["P1"]})
    assert "1 duplicate row(s) dropped" in caplog.text
    got = gpd.read_file(tmp_path / "2024.gpkg", layer="parcels").iloc[0]
    assert (got["checked_by"], str(got["checked_on"])[:10], got["verdict"]) == ("7", "2024-03-01", "违法")
    rect = gpd.read_file(tmp_path / "2024.gpkg", layer="rectified")
    assert rect["parcel_id"].tolist() == ["P6"] and rect["checked_by"].tolist() == ["8"]

    flat = tmp_path / "flat.gpkg"
    pyogrio.write_dataframe(pd.DataFrame(v.drop(columns="geometry")), flat, layer="violations")
    pyogrio.write_dataframe(led, flat, layer="parcels")
    out = tmp_path / "x.gpkg"
    with pytest.raises(DataError, match=r"layer 'violations' has no geometry"):
        check_2024(out, flat)
    assert not out.exists()


def test_match_rule_is_configurable(tmp_path):
    """A strict share (0.9) no longer takes the 70 %-demolished parcel's remnant for the same ground."""
    first = tmp_path / "2023.gpkg"
    check_2023(first, {"P5": EARLIER["P5"]}, follow_up={})
    rules = tmp_path / "rules.toml"
    rules.write_text("[year_on_year]\nmin_share = 0.9\n")
    check_files(LINES, tmp_path / "strict.gpkg", construction=survey({"Q5": box(1100, 1130)}, "2024-06-30"),
              counties=COUNTIES, rules_path=rules, extra={"previous": first})
    check_files(LINES, tmp_path / "default.gpkg", construction=survey({"Q5": box(1100, 1130)}, "2024-06-30"),
              counties=COUNTIES, extra={"previous": first})
    # the remnant lies wholly inside P5: the share of the smaller part is 100 % either way
    assert len(gpd.read_file(tmp_path / "strict.gpkg", layer="rectified")) == 0
    rules.write_text("[year_on_year]\nmin_share = 0.01\ntolerance_m = 0\n")
    check_files(LINES, tmp_path / "loose.gpkg", construction=survey({"Q": box(1199, 1299)}, "2024-06-30"),
              counties=COUNTIES, rules_path=rules, extra={"previous": first})
    assert len(gpd.read_file(tmp_path / "loose.gpkg", layer="rectified")) == 0  # a 1 % overlap is enough now
    check_files(LINES, tmp_path / "dflt.gpkg", construction=survey({"Q": box(1199, 1299)}, "2024-06-30"),
              counties=COUNTIES, extra={"previous": first})
    assert len(gpd.read_file(tmp_path / "dflt.gpkg", layer="rectified")) == 1


@pytest.mark.parametrize("order", [["A", "B", "C"], ["C", "B", "A"]])
def test_overlapping_parcels_in_different_chunks_settle_ids_as_the_whole_run(tmp_path, order):
    """Two overlapping 2024 parcels both hold most of P1; one chunk a parcel: whichever comes first, the larger
    overlap (A) keeps P1's id, in the written GeoPackage (ledger included) and in memory alike."""
    import zoning

    first = tmp_path / "2023.gpkg"
    old = check_2023(first, {k: EARLIER[k] for k in ("P1", "P6")}, follow_up={}).set_index("parcel_id")
    rules = tmp_path / "rules.toml"
    rules.write_text("[rules]\nchunk_size = 1\n")
    parcels = {"A": box(100, 200), "B": box(100, 190), "C": box(1300, 1350)}
    cur = survey({k: parcels[k] for k in order}, "2024-06-30")
    check_files(LINES, tmp_path / "out.gpkg", construction=cur, counties=COUNTIES, rules_path=rules,
              extra={"previous": first})
    res = zoning.check(RED, FARM, URBAN, construction=cur, counties=COUNTIES, rules=str(rules), previous=first)
    for v, led in ((gpd.read_file(tmp_path / "out.gpkg", layer="violations"),
                    gpd.read_file(tmp_path / "out.gpkg", layer="parcels")), (res.violations, res.parcels)):
        v = red(v)
        assert v.loc["A", "violation_id"] == old.loc["P1", "violation_id"]
        assert v.loc["B", "violation_id"] == "510001-CON-ERL-B-ERL1"
        assert v.loc["B", "continues_ids"] == old.loc["P1", "violation_id"]
        # half of P6 is not more than half: C continues it under its own id
        assert v.loc["C", "violation_id"] == "510001-CON-ERL-C-ERL1"
        assert v.loc["C", "continues_ids"] == old.loc["P6", "violation_id"]
        led = led.set_index("parcel_id")
        assert led.loc["A", "violation_ids"] == v.loc["A", "violation_id"]
        assert led.loc["B", "violation_ids"] == v.loc["B", "violation_id"]
