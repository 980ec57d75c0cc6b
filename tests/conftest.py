"""Shared fixtures: the bundled sample data, small hand-made layers, and a CLI runner."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from click.testing import CliRunner
from hypothesis import settings


from zoning.areas import gk_zone_crs

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"

# CI runs the examples a developer ran (a random draw once found a hang only on CI's fresh machine);
# `pytest --hypothesis-profile=explore` draws new ones, and `--hypothesis-seed=N` repeats a draw
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("repeatable")


@pytest.fixture(scope="session")
def sample() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def expected() -> dict:
    return json.loads((SAMPLE / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def counties() -> gpd.GeoDataFrame:
    return gpd.read_file(SAMPLE / "counties.gpkg", layer="counties")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the installed ``zoning`` command in a subprocess (the way an officer runs it)."""
    e = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=cwd, capture_output=True, text=True, env=e)


@pytest.fixture
def cli():
    return run_cli


def gk_square(lon: float, lat: float, side: float) -> tuple[shapely.Polygon, object]:
    """A square of ``side`` metres drawn in the CGCS2000 GK zone around (lon, lat); returns (polygon, crs)."""
    from pyproj import Transformer

    crs = gk_zone_crs(lon)
    x, y = Transformer.from_crs(4490, crs, always_xy=True).transform(lon, lat)
    return shapely.box(x, y, x + side, y + side), crs


def assert_same_outputs(a: Path, b: Path, layers=("conflicts", "violations", "parcels", "county_summary",
                                                 "rectified"), rel: float = 1e-6) -> dict:
    """Two GeoPackages hold the same rows (matched by id), text equal, numbers within ``rel``, geometries equal
    within ``rel`` of their area. Returns the row count of each layer compared."""
    import numpy as np
    import pandas as pd
    import pyogrio

    keys = {"conflicts": ["violation_id"], "violations": ["violation_id"], "rectified": ["violation_id"],
            "parcels": ["parcel_id"], "county_summary": ["check_id", "county_id"], "zones": ["county_id"],
            "compensation": ["county_id"]}
    have = {n for n, _ in pyogrio.list_layers(a)}
    assert have == {n for n, _ in pyogrio.list_layers(b)}
    counts = {}
    for layer in [x for x in layers if x in have]:
        x = pyogrio.read_dataframe(a, layer=layer).sort_values(keys[layer]).reset_index(drop=True)
        y = pyogrio.read_dataframe(b, layer=layer).sort_values(keys[layer]).reset_index(drop=True)
        assert list(x.columns) == list(y.columns), layer
        assert len(x) == len(y), (layer, len(x), len(y))
        for c in x.columns:
            if c == "geometry":
                gx, gy = x.geometry.values, y.geometry.values
                d = shapely.area(shapely.symmetric_difference(gx, gy))
                assert (d <= rel * np.maximum(shapely.area(gx), 1e-12)).all(), layer
            elif x[c].dtype.kind == "f":
                np.testing.assert_allclose(x[c].to_numpy(), y[c].to_numpy(), rtol=rel, atol=1e-9, err_msg=c)
            else:
                pd.testing.assert_series_equal(x[c], y[c], obj=f"{layer}.{c}")
        counts[layer] = len(x)
    return counts


def check_files(lines: dict, output, construction=None, counties=None, read=None, extra=None, cluster=None, **kw):
    """``pipeline.run_check`` of a job built from keyword arguments, as the CLI builds it."""
    from zoning.pipeline import CheckJob, ReadOptions, run_check

    job = CheckJob(lines, construction, counties, read=read or ReadOptions(), extra=dict(extra or {}), cluster=cluster)
    return run_check(job, output, **kw)
