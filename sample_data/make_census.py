"""Build ``zoning/data/census_county_2020.csv``: every county-level unit of China in the 2020 census, from the
NBS county tabulation as published under MIT by two public repositories (see ``../shared/data/census/README.md``):

- ``leiii/census`` @ 0ba0f1e, ``data/census/census_county_2020_v1.xlsx`` (sheet 七普（年鉴）; Dong, Du & Liu 2022,
  SSRN 4049338), © 2022 Lei Dong, MIT;
- ``thebamboogrove/tudigong`` @ 4db2f14, ``input/population.csv`` (NBS, *Tabulation on the 2020 China Population
  Census by County*, ISBN 978-7-5037-9772-9), © 2025, MIT — for the units the first lacks and its known defects.

The compiled reference ``reference_china_county_census2020.csv`` is taken as it is: counts only (rates are derived
when the table is used, so that merged and folded units stay exact), its ``source`` and ``license`` per row, and
the county that holds each NBS statistical zone (``sample_data/statistical_zone_hosts.csv``, sourced per row).

Run: ``python sample_data/make_census.py ../shared/data/census/reference_china_county_census2020.csv``.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "zoning" / "data" / "census_county_2020.csv"
HOSTS = HERE / "statistical_zone_hosts.csv"
COLUMNS = ["county_id", "name", "province", "population", "urban_population", "households", "age65_share_pct",
           "employed_sample", "employed_agri_sample", "statistical_zone", "host_id", "source", "note"]
# each row names its source by key; the citation and licence of each key are in zoning/data/census_sources.toml
SOURCES = {"github.com/leiii/census": "leiii", "github.com/thebamboogrove/tudigong": "tudigong"}


def main(reference: str) -> None:
    with open(reference, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    hosts = {}
    if HOSTS.exists():
        with open(HOSTS, encoding="utf-8", newline="") as f:
            hosts = {r["zone_code"]: r["host_code"] for r in csv.DictReader(f) if r["host_code"]}
    codes = {r["adcode"] for r in rows}
    bad = {z: h for z, h in hosts.items() if z not in codes or h not in codes}
    if bad:
        raise SystemExit(f"{HOSTS}: codes not in the census table: {bad}")
    out = []
    for r in sorted(rows, key=lambda r: r["adcode"]):
        zone = r["statistical_zone"] == "True"
        out.append([r["adcode"], r["name"], r["province"], r["population"], r["urban_population"],
                    r["households_family"], r["share_age_65plus_pct"], r["employed_longform"],
                    r["employed_agri_longform"], int(zone), hosts.get(r["adcode"], "") if zone else "",
                    next(v for k, v in SOURCES.items() if r["source"].startswith(k)), r["note"]])
    with open(OUT, "w", encoding="utf-8", newline="") as f:
        f.write(f"# 2020 census (七普) by county-level unit, {len(out)} rows (NBS figures, MIT-licensed digitisations: "
                "github.com/leiii/census, github.com/thebamboogrove/tudigong; the source key per row is cited, with its "
                "licence, in census_sources.toml); "
                "made by sample_data/make_census.py\n")
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        w.writerows(out)
    print(f"wrote {OUT}: {len(out)} rows, {sum(1 for r in out if r[10])} statistical zones with a host county")


if __name__ == "__main__":
    main(sys.argv[1])
