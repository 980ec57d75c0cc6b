"""``zoning classify`` through the real command line."""
import sqlite3
from pathlib import Path

import geopandas as gpd
import pytest


def _rasters(sample):
    return ["--raster", f"landcover={sample / 'landcover.tif'}", "--raster", f"dem={sample / 'dem.tif'}"]


def test_version_and_help(cli):
    r = cli("--version")
    assert r.returncode == 0 and "zoning" in r.stdout
    r = cli("--help")
    assert r.returncode == 0 and "classify" in r.stdout and "Exit codes" in r.stdout
    r = cli("classify", "--help")
    assert "--sensitivity" in r.stdout and "PATH:LAYER" not in r.stderr


def test_classify_writes_the_zones_layer(cli, sample, tmp_path):
    out = tmp_path / "zones.gpkg"
    r = cli("classify", str(sample / "counties.gpkg"), *_rasters(sample), "-o", str(out), "--sensitivity", "5")
    assert r.returncode == 0, r.stderr
    assert "grain_production" in r.stdout and "农产品主产区" in r.stdout
    z = gpd.read_file(out, layer="zones")
    assert len(z) == 183
    for col in ["county_id", "name", "zone", "zone_zh", "score_urbanization", "score_grain_production",
                "score_ecological", "margin", "rule", "review", "reason", "area_km2", "built_up_share",
                "cropland_share", "ecological_share", "barren_share", "elevation_mean", "relief", "stability",
                "alt_zone"]:
        assert col in z.columns, col
    assert z.review.dtype == bool
    con = sqlite3.connect(out)
    types = dict(con.execute("SELECT name, type FROM pragma_table_info('zones')").fetchall())
    assert types["county_id"].upper().startswith("TEXT")
    styles = con.execute("SELECT f_table_schema, f_table_name, useAsDefault FROM layer_styles").fetchall()
    assert styles == [("", "zones", 1)]
    # the style lives in the GeoPackage; nothing is written beside it (no styles/ folder to clobber)
    assert not (tmp_path / "styles").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_existing_output_is_refused_and_left_identical(cli, sample, tmp_path):
    out = tmp_path / "zones.gpkg"
    out.write_bytes(b"previous run")
    r = cli("classify", str(sample / "counties.gpkg"), *_rasters(sample), "-o", str(out))
    assert r.returncode == 4
    assert "already exists; pass --overwrite" in r.stderr
    assert out.read_bytes() == b"previous run"
    # --overwrite replaces only an earlier zoning output, never someone else's file
    r = cli("classify", str(sample / "counties.gpkg"), *_rasters(sample), "-o", str(out), "--overwrite")
    assert r.returncode == 4 and "zoning did not write" in r.stderr
    assert out.read_bytes() == b"previous run"
    out.unlink()
    assert cli("classify", str(sample / "counties.gpkg"), *_rasters(sample), "-o", str(out)).returncode == 0
    before = out.read_bytes()
    r = cli("classify", str(sample / "counties.gpkg"), *_rasters(sample), "-o", str(out), "--overwrite")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() != before


def test_model_show_is_pure_toml_and_check_reports_keys(cli, tmp_path):
    import tomllib

    r = cli("model", "show")
    assert r.returncode == 0
    assert tomllib.loads(r.stdout)["model"]["id"] == "zoning-default"
    bad = tmp_path / "bad.toml"
    bad.write_text(r.stdout.replace("weight = 0.30", "weight = 0.20", 1), encoding="utf-8")
    r = cli("model", "check", str(bad))
    assert r.returncode == 2
    assert "functions.urbanization.terms: weights add up to 0.9, not 1" in r.stderr
    r = cli("model", "check", str(tmp_path / "missing.toml"))
    assert r.returncode == 2 and "not found" in r.stderr


@pytest.mark.parametrize("args,code,message", [
    (["--raster", "landcover"], 2, "expected KIND=PATH"),
    (["--raster", "slope=x.tif"], 2, "unknown kind(s) slope"),
])
def test_bad_raster_arguments(cli, sample, tmp_path, args, code, message):
    r = cli("classify", str(sample / "counties.gpkg"), *args, "-o", str(tmp_path / "z.gpkg"))
    assert r.returncode == code
    assert message in r.stderr
    assert not (tmp_path / "z.gpkg").exists()


def test_compare_with_a_gbk_reference(cli, sample, tmp_path):
    import pandas as pd

    out = tmp_path / "z.gpkg"
    assert cli("classify", str(sample / "counties.gpkg"), *_rasters(sample), "-o", str(out)).returncode == 0
    z = gpd.read_file(out, layer="zones")
    ids = z.county_id.tolist()[:6]
    truth = z.set_index("county_id").loc[ids, "zone"]
    zh = {"urbanization": "城镇化地区", "grain_production": "农产品主产区", "ecological": "重点生态功能区"}
    ref = pd.DataFrame({"区划代码": ids + ["999999"], "主体功能区": [zh[v] for v in truth] + ["重点生态功能区"]})
    ref.loc[0, "主体功能区"] = zh["ecological" if truth.iloc[0] != "ecological" else "urbanization"]  # one disagrees
    ref.to_csv(tmp_path / "ref.csv", index=False, encoding="gbk")
    r = cli("compare", str(out), "--reference", str(tmp_path / "ref.csv"), "-o", str(tmp_path / "c.gpkg"))
    assert r.returncode == 0, r.stderr
    assert "compared 6 counties: agreement 83.3%" in r.stdout and "999999" in r.stdout
    c = gpd.read_file(tmp_path / "c.gpkg", layer="comparison").set_index("county_id")
    assert c.loc[ids[0], "agrees"] == False and c.loc[ids[1:], "agrees"].all()  # noqa: E712
    assert c.drop(index=ids)["agrees"].isna().all()
    bad = tmp_path / "bad.csv"
    bad.write_text("county_id,zone\n510104,禁止开发区域\n", encoding="utf-8")
    r = cli("compare", str(out), "--reference", str(bad), "-o", str(tmp_path / "d.gpkg"))
    assert r.returncode == 1 and "禁止开发区域" in r.stderr and not (tmp_path / "d.gpkg").exists()


def test_people_from_a_raster_places_and_the_table(cli, sample, tmp_path):
    """A population raster of 100 people per 0.05° cell, two places in one county, a table row for another:
    each county's density comes from the first source with a figure."""
    import numpy as np
    import pandas as pd
    import rasterio

    with rasterio.open(sample / "landcover.tif") as src:
        prof = src.profile
        prof.update(dtype="float32", nodata=-1.0)
        people = np.full((src.height, src.width), 100.0, dtype="float32")
    with rasterio.open(tmp_path / "pop.tif", "w", **prof) as dst:
        dst.write(people, 1)
    base = cli("classify", str(sample / "counties.gpkg"), *_rasters(sample), "--no-census", "-o",
               str(tmp_path / "b.gpkg"))
    assert base.returncode == 0
    b = gpd.read_file(tmp_path / "b.gpkg", layer="zones").set_index("county_id")
    pts = gpd.GeoDataFrame({"name": ["a", "b"], "population": [1000, 500]},
                           geometry=gpd.points_from_xy([104.08, 104.07], [30.65, 30.66]), crs=4326)
    pts.to_file(tmp_path / "places.gpkg")
    pd.DataFrame({"county_id": ["513332"], "population": ["12,345"]}).to_csv(tmp_path / "s.csv", index=False)
    r = cli("classify", str(sample / "counties.gpkg"), *_rasters(sample), "--raster", f"population={tmp_path / 'pop.tif'}",
            "--raster", f"nightlights={tmp_path / 'pop.tif'}",
            "--points", f"population={tmp_path / 'places.gpkg'}:population", "--attributes", str(tmp_path / "s.csv"),
            "--no-census", "-o", str(tmp_path / "p.gpkg"))
    assert r.returncode == 0, r.stderr
    z = gpd.read_file(tmp_path / "p.gpkg", layer="zones").set_index("county_id")
    # statistics first
    assert z.loc["513332", "pop_density_source"] == "s.csv"
    assert z.loc["513332", "pop_density"] == pytest.approx(12345 / z.loc["513332", "area_km2"])
    assert z.loc["510104", "nightlight_density"] == pytest.approx(z.loc["510104", "pop_density"], rel=1e-6)
    # the raster: 100 people per cell × the county's coverage-weighted cell count
    assert (z.drop(index="513332").pop_density_source == "population raster").all()
    assert z.loc["510104", "pop_density"] == pytest.approx(100 * b.loc["510104", "landcover_cells"] /
                                                           z.loc["510104", "area_km2"], rel=1e-6)
    # without the raster, the places fill in where they lie (checked with geopandas' own spatial join)
    r = cli("classify", str(sample / "counties.gpkg"), *_rasters(sample), "--points",
            f"population={tmp_path / 'places.gpkg'}", "--no-census", "-o", str(tmp_path / "q.gpkg"))
    assert r.returncode == 0, r.stderr
    q = gpd.read_file(tmp_path / "q.gpkg", layer="zones").set_index("county_id")
    counties = gpd.read_file(sample / "counties.gpkg")
    want = gpd.sjoin(pts.to_crs(counties.crs), counties, predicate="within").groupby("county_id").population.sum()
    holder = q[q.pop_density_source == "populated places"]
    assert set(holder.index) == set(want.index) and want.sum() == 1500
    for cid, people in want.items():
        assert holder.loc[cid, "pop_density"] * holder.loc[cid, "area_km2"] == pytest.approx(people)


def test_embedded_places_fill_the_gaps_and_are_recorded(sample, tmp_path, cli):
    """--default-places: counties without statistics get the people of the GeoNames places inside them."""
    import geopandas as gpd
    import pandas as pd
    import pyogrio
    import shapely

    out = tmp_path / "z.gpkg"
    r = cli("classify", str(sample / "counties.gpkg"), "--raster", f"landcover={sample / 'landcover.tif'}",
            "--attributes", str(sample / "stats.csv"), "--default-places", "--no-census", "-o", str(out))
    assert r.returncode == 0, r.stderr
    z = gpd.read_file(out, layer="zones")
    filled = z[z.pop_density_source == "populated places"]
    assert len(filled) > 10 and (z.pop_density_source == "stats.csv").sum() == 128
    places = pd.read_csv(Path(__file__).resolve().parents[2] / "zoning" / "data" / "places_cn.csv", comment="#")
    pts = shapely.points(places.lon, places.lat)
    for _, row in filled.head(5).iterrows():
        inside = shapely.contains(row.geometry, pts)
        assert row.pop_density * row.area_km2 == pytest.approx(places.population[inside].sum(), rel=1e-6)
    meta = pyogrio.read_dataframe(out, layer="zoning_run", read_geometry=False)
    assert "GeoNames" in meta.set_index("key").loc["default_places", "value"]


def test_census_is_built_in_and_a_users_table_overrides_it_field_by_field(sample, tmp_path, cli):
    """Without a table every county has census figures; a table's figures replace them county by county, field
    by field, and each county says where each figure came from."""
    import geopandas as gpd
    import pandas as pd
    import pyogrio

    table = pd.DataFrame({"county_id": ["510104", "513332"], "population": ["1,000,000", ""],
                          "urbanization_rate": ["", "33.5"]})
    table.to_csv(tmp_path / "mine.csv", index=False)
    out = tmp_path / "z.gpkg"
    r = cli("classify", str(sample / "counties.gpkg"), *_rasters(sample), "--attributes", str(tmp_path / "mine.csv"),
            "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "census 2020: 183 of 183 counties matched (0 through a code change, 3 with statistical zones folded in)" \
        in r.stderr
    z = gpd.read_file(out, layer="zones").set_index("county_id")
    census = pd.read_csv(sample.parent / "zoning" / "data" / "census_county_2020.csv", comment="#",
                         dtype={"county_id": str}).set_index("county_id")
    a, b = z.loc["510104"], z.loc["513332"]
    assert a.pop_density == pytest.approx(1_000_000 / a.area_km2) and a.pop_density_source == "mine.csv"
    c = census.loc["510104"]
    assert a.urbanization_rate == pytest.approx(100 * c.urban_population / c.population)
    assert a.statistics_source == ("population: mine.csv; urbanization_rate, agri_employment_share, ageing_share: "
                                   "census 2020 (leiii)")
    assert b.urbanization_rate == 33.5 and b.pop_density == pytest.approx(census.loc["513332", "population"] /
                                                                          b.area_km2)
    assert b.statistics_source == ("population, agri_employment_share, ageing_share: census 2020 (leiii); "
                                   "urbanization_rate: mine.csv")
    # the development zones are in their hosts: 内江市中区 holds 内江经济开发区
    host = census.loc["511002", "population"] + census.loc["511071", "population"]
    assert z.loc["511002", "pop_density"] * z.loc["511002", "area_km2"] == pytest.approx(host)
    run = pyogrio.read_dataframe(out, layer="zoning_run", read_geometry=False)
    meta = dict(zip(run["key"], run["value"]))
    assert '"matched": 183' in meta["census"] and "Dong, L., Du, R. & Liu, Y. (2022)" in meta["census"]
    r = cli("classify", str(sample / "counties.gpkg"), *_rasters(sample), "--no-census", "-o", str(tmp_path / "n.gpkg"))
    assert r.returncode == 0, r.stderr
    n = gpd.read_file(tmp_path / "n.gpkg", layer="zones")
    for field in ("pop_density", "urbanization_rate", "statistics_source"):  # no figure from anywhere
        assert field not in n or n[field].isna().all()


@pytest.mark.parametrize("cells, message", [
    ({"population": "-5"}, "row 3: population = -5 (must be ≥ 0)"),
    ({"urbanization_rate": "140"}, "row 3: urbanization_rate = 140 (a percentage, 0 to 100)"),
])
def test_impossible_statistics_name_the_row_and_lose_nothing(sample, tmp_path, cli, cells, message):
    import pandas as pd

    rows = pd.DataFrame({"county_id": ["510104", "510105"], "population": ["900000", "950000"],
                         "urbanization_rate": ["100", "99"]})
    for k, v in cells.items():
        rows.loc[1, k] = v
    rows.to_csv(tmp_path / "bad.csv", index=False)
    out = tmp_path / "z.gpkg"
    assert cli("-q", "classify", str(sample / "counties.gpkg"), *_rasters(sample), "-o", str(out)).returncode == 0
    before = out.read_bytes()
    r = cli("classify", str(sample / "counties.gpkg"), *_rasters(sample), "--attributes", str(tmp_path / "bad.csv"),
            "-o", str(out), "--overwrite")
    assert r.returncode == 1 and message in r.stderr and "nothing was written" in r.stderr, r.stderr
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "z.gpkg"]


def test_rates_written_as_fractions_are_refused(sample, tmp_path, cli):
    import pandas as pd

    pd.DataFrame({"county_id": ["510104", "510105", "510106"], "urbanization_rate": ["1", "0.98", "0.97"]}
                 ).to_csv(tmp_path / "f.csv", index=False)
    r = cli("classify", str(sample / "counties.gpkg"), *_rasters(sample), "--attributes", str(tmp_path / "f.csv"),
            "-o", str(tmp_path / "z.gpkg"))
    assert r.returncode == 1 and "column urbanization_rate: every value is between 0 and 1" in r.stderr


def test_the_terminal_says_what_matched_what_goes_to_review_and_which_model_ran(sample, tmp_path, cli):
    import hashlib

    changed = tmp_path / "mine.toml"
    text = (sample.parent / "zoning" / "data" / "default_model.toml").read_text(encoding="utf-8")
    changed.write_text(text.replace("weight = 0.16", "weight = 0.17").replace("weight = 0.11", "weight = 0.10"),
                       encoding="utf-8")
    r = cli("classify", str(sample / "counties.gpkg"), *_rasters(sample), "--attributes", str(sample / "stats.csv"),
            "--model", str(changed), "-o", str(tmp_path / "z.gpkg"))
    assert r.returncode == 0, r.stderr
    assert "stats.csv: 128 of 183 counties matched (column county_id)" in r.stderr
    digest = hashlib.sha256(changed.read_bytes()).hexdigest()[:12]
    assert f"model zoning-default@2.0.0 (sha256 {digest}), a changed copy of the shipped model" in r.stderr
    line = next(t for t in r.stdout.splitlines() if t.startswith("to review 需复核:"))
    import geopandas as gpd

    z = gpd.read_file(tmp_path / "z.gpkg", layer="zones")
    assert f"{int(z.review.sum())} counties" in line
    close = z.review_reasons.str.contains("得分接近 small margin").sum()
    assert f"得分接近 small margin {close}" in line and close > 0
