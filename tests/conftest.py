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

from zoning.areas import gk_zone_crs

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"


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
