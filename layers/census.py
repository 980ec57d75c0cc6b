"""The built-in county statistics (2020 census) and the code changes that let other years' counties join them,
read from package data. Their use is :mod:`zoning.census`."""
from __future__ import annotations

import tomllib
from importlib import resources

import pandas as pd

TABLE = "census_county_2020.csv"
CHANGES = "county_code_changes.csv"
SOURCES = "census_sources.toml"


def _read(name: str) -> pd.DataFrame:
    with resources.files("zoning.data").joinpath(name).open("r", encoding="utf-8") as f:
        return pd.read_csv(f, comment="#", dtype={"county_id": str, "host_id": str, "code": str, "census_code": str, "year": str})


def builtin_census() -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The census table (counts per county-level unit), the code changes since (and before) it, and the sources
    cited by the table's ``source`` keys (title, url, file, licence, citation)."""
    with resources.files("zoning.data").joinpath(SOURCES).open("rb") as f:
        sources = tomllib.load(f)
    return _read(TABLE), _read(CHANGES), sources
