import shutil

import geopandas as gpd
import pytest
import shapely

from layers.vector import parse_source, read_table, read_vector
from zoning.errors import DataError, UsageError


def test_sample_counties_are_the_183_units_of_sichuan(sample):
    gdf = read_vector(sample / "counties.gpkg")
    assert len(gdf) == 183
    names = dict(zip(gdf.county_id, gdf.name))
    assert names["510104"] == "锦江区"
    assert names["513332"] == "石渠县"
    assert names["510107"] == "武侯区"
    assert gdf.crs.to_epsg() == 4490
    assert all(len(c) == 6 for c in gdf.county_id)


def _gbk_shapefile(tmp_path):
    g = gpd.GeoDataFrame({"county_id": ["510104", "513332"], "name": ["锦江区", "石渠县"]},
                         geometry=[shapely.box(104, 30, 104.1, 30.1), shapely.box(98, 33, 98.5, 33.5)], crs=4490)
    path = tmp_path / "gbk.shp"
    g.to_file(path, encoding="GBK")
    path.with_suffix(".cpg").unlink()
    return path


def test_gbk_shapefile_without_cpg_reads_chinese_names(tmp_path):
    gdf = read_vector(_gbk_shapefile(tmp_path))
    assert list(gdf.name) == ["锦江区", "石渠县"]
    assert gdf.attrs["encoding"] == "gb18030"


def test_encoding_override_is_honoured(tmp_path):
    gdf = read_vector(_gbk_shapefile(tmp_path), encoding="latin1")
    assert list(gdf.name) != ["锦江区", "石渠县"]


def test_geojson_and_geoparquet(tmp_path, sample):
    g = read_vector(sample / "counties.gpkg").head(3)
    g.to_file(tmp_path / "c.geojson")
    g.to_parquet(tmp_path / "c.parquet")
    assert list(read_vector(tmp_path / "c.geojson").county_id) == list(g.county_id)
    assert list(read_vector(tmp_path / "c.parquet").county_id) == list(g.county_id)


def test_layer_selection_in_a_multi_layer_geopackage(tmp_path, sample):
    path = tmp_path / "multi.gpkg"
    shutil.copy(sample / "counties.gpkg", path)
    read_vector(sample / "red_line.gpkg").to_file(path, layer="red")
    with pytest.raises(UsageError, match="pick one as"):
        read_vector(path)
    assert len(read_vector(f"{path}:red")) == len(read_vector(sample / "red_line.gpkg"))
    assert len(read_vector(f"{path}|layername=counties")) == 183
    with pytest.raises(UsageError, match="no layer 'nope'; its layers are: counties, red"):
        read_vector(f"{path}:nope")


def test_parse_source_keeps_plain_paths(tmp_path):
    assert parse_source("a/b.gpkg").layer is None
    p = tmp_path / "x.gpkg"
    p.write_bytes(b"")
    assert parse_source(f"{p}:zones").layer == "zones"


def test_missing_path_names_the_file(tmp_path):
    with pytest.raises(DataError, match="counties file not found: .*nothere.gpkg"):
        read_vector(tmp_path / "nothere.gpkg", role="counties")


def test_truncated_geopackage_is_a_data_error(tmp_path, sample):
    bad = tmp_path / "bad.gpkg"
    data = (sample / "counties.gpkg").read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match="bad.gpkg"):
        read_vector(bad)


def test_not_a_geopackage(tmp_path):
    bad = tmp_path / "text.gpkg"
    bad.write_text("hello")
    with pytest.raises(DataError, match="not a readable GeoPackage"):
        read_vector(bad)


def test_table_keeps_leading_zeros_and_reads_gbk(tmp_path):
    p = tmp_path / "a.csv"
    p.write_bytes("county_id,name,pop_density\n010101,东城区,20000\n".encode("gbk"))
    raw = read_table(p)
    assert raw.iloc[0].tolist() == ["county_id", "name", "pop_density"]  # raw cells: the header is found later
    assert raw.iloc[1, 0] == "010101"
    assert raw.iloc[1, 1] == "东城区"


def test_a_geopackage_keyed_by_a_named_primary_key(tmp_path):
    """A GeoPackage whose primary key column is named ``id`` (QGIS shows it as a field): parcels are keyed by it,
    in one process and in chunks, not by row numbers."""
    import geopandas as gpd
    import pyogrio

    from layers.vector import iter_vector, read_vector
    from tests.conftest import SAMPLE

    parcels = gpd.read_file(SAMPLE / "construction.gpkg").iloc[:30].drop(columns="id")
    parcels.index = range(1001, 1031)
    path = tmp_path / "pk.gpkg"
    pyogrio.write_dataframe(parcels.reset_index(names="id"), path, layer_options={"FID": "id"})
    assert pyogrio.read_info(path)["fid_column"] == "id"
    got = read_vector(path)
    assert got["id"].tolist() == list(range(1001, 1031))
    chunks = list(iter_vector(path, 7))
    assert [i for c in chunks for i in c["id"]] == list(range(1001, 1031))
