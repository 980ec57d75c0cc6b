import geopandas as gpd
import numpy as np
import pytest
import shapely

from zoning.errors import DataError
from zoning.validate import check_overlap, clean_polygons, ensure_crs, require_field

BOWTIE = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)])


def gdf(geoms, ids=None, crs=4490):
    g = gpd.GeoDataFrame({"id": ids or [str(i) for i in range(len(geoms))]}, geometry=geoms, crs=crs)
    g.attrs["source"] = "test.gpkg"
    return g


def test_bowtie_is_repaired_and_counted():
    out, rep = clean_polygons(gdf([BOWTIE, shapely.box(0, 0, 1, 1)]), "red line", "id")
    assert rep["repaired"] == 1 and rep["repaired_ids"] == ["0"]
    assert out.geometry.iloc[0].is_valid
    assert out.geometry.iloc[0].area == pytest.approx(0.5)  # two triangles of 0.25


def test_empty_geometries_are_dropped_and_counted():
    out, rep = clean_polygons(gdf([shapely.Polygon(), shapely.box(0, 0, 1, 1), None]), "x", "id")
    assert rep["dropped_empty"] == 2 and len(out) == 1


def test_points_are_refused_with_the_type_found():
    with pytest.raises(DataError, match="are Point, not polygons"):
        clean_polygons(gdf([shapely.Point(0, 0), shapely.box(0, 0, 1, 1)]), "farmland", "id")


def test_geometry_collection_keeps_polygonal_part():
    gc = shapely.GeometryCollection([shapely.box(0, 0, 1, 1), shapely.LineString([(0, 0), (5, 5)])])
    out, _ = clean_polygons(gdf([gc]), "x", "id")
    assert out.geometry.iloc[0].geom_type == "Polygon"


def test_duplicate_ids_are_named():
    with pytest.raises(DataError, match="duplicate ids .*: A"):
        clean_polygons(gdf([shapely.box(0, 0, 1, 1)] * 3, ["A", "A", "B"]), "x", "id")


def test_missing_ids_are_named():
    g = gdf([shapely.box(0, 0, 1, 1)] * 2, ["A", None])
    with pytest.raises(DataError, match="empty in 1 feature.*rows 2"):
        clean_polygons(g, "x", "id")


def test_numeric_ids_lose_the_float_suffix():
    g = gdf([shapely.box(0, 0, 1, 1)])
    g["id"] = [510104.0]
    out, _ = clean_polygons(g, "x", "id")
    assert out["_id"].iloc[0] == "510104"


def test_missing_field_lists_fields_and_suggests():
    g = gdf([shapely.box(0, 0, 1, 1)])
    g["county_code"] = ["1"]
    with pytest.raises(DataError, match=r"no field 'county_cod'.*Fields present: id, county_code.*'county_code'"):
        require_field(g, "county_cod", "counties")


def test_no_crs_names_the_flag():
    g = gdf([shapely.box(0, 0, 1, 1)], crs=None)
    with pytest.raises(DataError, match="has no CRS.*--crs"):
        ensure_crs(g, "counties")
    assert ensure_crs(g, "counties", "EPSG:4490").crs.to_epsg() == 4490


def test_swapped_lat_lon_is_detected():
    g = gdf([shapely.box(30.0, 104.0, 30.1, 104.1)])
    with pytest.raises(DataError, match="latitude and longitude swapped"):
        ensure_crs(g, "counties")


def test_nan_and_huge_coordinates():
    g = gdf([shapely.Polygon([(0, 0), (np.nan, 1), (1, 1)])])
    with pytest.raises(DataError, match="NaN or infinite"):
        ensure_crs(g, "x")
    g = gdf([shapely.box(500000, 3000000, 500100, 3000100)])
    with pytest.raises(DataError, match="out of range"):
        ensure_crs(g, "x")


def test_disjoint_extents_suggest_a_crs_mixup():
    with pytest.raises(DataError, match="do not overlap.*wrong CRS"):
        check_overlap((0, 0, 1, 1), (100, 30, 101, 31), "a", "b")
