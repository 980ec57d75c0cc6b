"""The check and the classification on a local Dask cluster give what one process gives."""
from pathlib import Path

import pandas as pd
import pyogrio
import pytest
import shapely

from tests.conftest import assert_same_outputs, check_files
from zoning import pipeline
from zoning.pipeline import executors, plan

LINES = {k: f"{k}.gpkg" for k in ("red_line", "farmland", "urban_boundary")}


def _run(sample: Path, out: Path, rules: Path, cluster=None, previous=None):
    return check_files({k: str(sample / v) for k, v in LINES.items()}, out,
                              construction=str(sample / "construction.gpkg"), counties=str(sample / "counties.gpkg"),
                              rules_path=rules, cluster=cluster,
                              extra={"baseline": str(sample / "baseline.gpkg"),
                                     "cropland": str(sample / "farmland.gpkg"), "previous": previous})


@pytest.fixture
def small_parts(monkeypatch, tmp_path):
    """Many small parts: conflict tiles of ~10 features, groups of 250 parcels."""
    monkeypatch.setattr(plan, "CONFLICT_FEATURES_PER_TILE", 10)
    rules = tmp_path / "rules.toml"
    rules.write_text("[rules]\nchunk_size = 250\n")
    return rules


def test_check_on_a_local_cluster_equals_one_process(sample, tmp_path, small_parts):
    one = _run(sample, tmp_path / "one.gpkg", small_parts)
    two = _run(sample, tmp_path / "two.gpkg", small_parts, cluster="local:2")
    counts = assert_same_outputs(tmp_path / "one.gpkg", tmp_path / "two.gpkg")
    assert counts["conflicts"] >= 10 and counts["violations"] > 1000 and counts["parcels"] == 3002
    assert two["meta"]["cluster"] == "local:2" and two["meta"]["parcels"] == one["meta"]["parcels"] == 3002
    # every check found something, and every kind of year-on-year change occurs: nothing compared is empty
    v = pyogrio.read_dataframe(tmp_path / "two.gpkg", layer="violations")
    assert v["check_id"].nunique() == 3 and set(v["change"]) == {"new", "expanded", "existing"}
    assert pyogrio.read_dataframe(tmp_path / "two.gpkg", layer="parcels")["cropland_m2"].gt(0).sum() > 100
    for layer, gtype in pyogrio.list_layers(tmp_path / "two.gpkg"):  # every written geometry valid
        if gtype:
            g = pyogrio.read_dataframe(tmp_path / "two.gpkg", layer=layer).geometry.values
            assert shapely.is_valid(g).all(), layer


def test_what_workers_log_is_in_the_clients_log(sample, tmp_path, small_parts, caplog):
    """A parcel repaired on a worker is reported as in one process (the run's log is complete)."""
    import logging

    import geopandas as gpd

    parcels = gpd.read_file(sample / "construction.gpkg")
    x0, y0, x1, y1 = parcels.geometry.iloc[5].bounds
    parcels.loc[5, "geometry"] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])  # a bow-tie
    path = tmp_path / "bowtie.gpkg"
    parcels.to_file(path, layer="construction")
    for cluster in (None, "local:2"):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="zoning"):
            check_files({k: str(sample / v) for k, v in LINES.items()}, tmp_path / f"{cluster}.gpkg",
                               construction=str(path), rules_path=small_parts, cluster=cluster)
        repaired = [r.getMessage() for r in caplog.records if "repaired 1 invalid" in r.getMessage()]
        assert repaired and parcels.loc[5, "id"] in repaired[0], cluster


def test_a_renumbered_previous_run_carried_by_ground_the_same_on_a_cluster(sample, tmp_path, small_parts):
    """The 2023 survey (WP2023…) checked, then 2024 (WP2024…) against it: matched on the ground in both."""
    check_files({k: str(sample / v) for k, v in LINES.items()}, tmp_path / "v2023.gpkg",
                       construction=str(sample / "baseline.gpkg"), counties=str(sample / "counties.gpkg"))
    one = _run(sample, tmp_path / "one.gpkg", small_parts, previous=str(tmp_path / "v2023.gpkg"))
    two = _run(sample, tmp_path / "two.gpkg", small_parts, cluster="local:2", previous=str(tmp_path / "v2023.gpkg"))
    counts = assert_same_outputs(tmp_path / "one.gpkg", tmp_path / "two.gpkg")
    assert counts["rectified"] == 99
    assert one["meta"]["year_on_year"] == two["meta"]["year_on_year"]
    assert two["meta"]["year_on_year"]["continued_by_ground"] == 787


def test_previous_run_carried_the_same_on_a_cluster(sample, tmp_path, small_parts):
    _run(sample, tmp_path / "v1.gpkg", small_parts)
    _run(sample, tmp_path / "one.gpkg", small_parts, previous=str(tmp_path / "v1.gpkg"))
    _run(sample, tmp_path / "two.gpkg", small_parts, cluster="local:2", previous=str(tmp_path / "v1.gpkg"))
    assert_same_outputs(tmp_path / "one.gpkg", tmp_path / "two.gpkg")


def test_classification_on_a_local_cluster_equals_one_process(sample, monkeypatch):
    monkeypatch.setattr(executors, "COUNTIES_PER_TASK", 20)  # 10 groups of counties
    args = dict(rasters={"landcover": str(sample / "landcover.tif"), "dem": str(sample / "dem.tif")},
                attributes=str(sample / "stats.csv"), sensitivity=5)
    one = pipeline.classify(str(sample / "counties.gpkg"), **args)
    two = pipeline.classify(str(sample / "counties.gpkg"), cluster="local:2", **args)
    assert two.attrs["info"]["cluster"] == "local:2"
    # the DEM's blocks follow each group's window: sums in another order, equal to ~1e-12
    pd.testing.assert_frame_equal(pd.DataFrame(one.drop(columns="geometry")),
                                  pd.DataFrame(two.drop(columns="geometry")), check_exact=False, rtol=1e-9)
    assert (one["zone"] == two["zone"]).all() and (one["reason"] == two["reason"]).all()
    assert one.geometry.geom_equals_exact(two.geometry, 0).all()
    assert one["zone"].nunique() == 3


def test_duplicate_parcel_ids_in_different_groups_are_named(sample, tmp_path, small_parts):
    """Groups are checked apart on the workers; the client compares their ids and names the duplicate."""
    import geopandas as gpd

    from zoning.errors import DataError

    parcels = gpd.read_file(sample / "construction.gpkg")
    parcels.loc[len(parcels) - 1, "id"] = parcels.loc[0, "id"]  # far apart in the file and on the ground
    path = tmp_path / "dup.gpkg"
    parcels.to_file(path, layer="construction")
    with pytest.raises(DataError, match=f"duplicate ids.*{parcels.loc[0, 'id']}"):
        check_files({k: str(sample / v) for k, v in LINES.items()}, tmp_path / "out.gpkg",
                           construction=str(path), rules_path=small_parts, cluster="local:2")
    assert not (tmp_path / "out.gpkg").exists()


def test_ids_on_a_cluster_do_not_depend_on_the_parcels_order(sample, tmp_path, small_parts):
    """Shuffled parcels fall into other groups and tasks; every finding keeps its id and area."""
    import geopandas as gpd

    parcels = gpd.read_file(sample / "construction.gpkg")
    parcels.sample(frac=1.0, random_state=3).to_file(tmp_path / "shuffled.gpkg", layer="construction")
    _run(sample, tmp_path / "a.gpkg", small_parts, cluster="local:2")
    check_files({k: str(sample / v) for k, v in LINES.items()}, tmp_path / "b.gpkg",
                       construction=str(tmp_path / "shuffled.gpkg"), counties=str(sample / "counties.gpkg"),
                       rules_path=small_parts, cluster="local:2",
                       extra={"baseline": str(sample / "baseline.gpkg"), "cropland": str(sample / "farmland.gpkg")})
    assert_same_outputs(tmp_path / "a.gpkg", tmp_path / "b.gpkg", layers=("violations", "county_summary"))
