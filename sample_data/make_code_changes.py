"""Build ``zoning/data/county_code_changes.csv`` from the sourced crosswalk ``sample_data/code_changes_sources.csv``
(one row per old code → new code, with year, kind, share and a source; compiled 2026-12 from Ministry of Civil
Affairs code tables as kept by github.com/lizy14/division-changes, provincial approvals and census bulletins).

The output says what each code a counties layer may carry, other than the 2020 census's, is made of in census
units (``code, name, census_code, share, year, kind, source``):

- codes created since the census (merges, splits, renames of 2020–2022), and census codes whose ground changed:
  their parts, with the share of each part's people (a unit that kept its code gets its own row for the part it
  kept);
- older codes (2010's) of units the census counts whole under another code (renames only: a unit merged or split
  since 2010 cannot be given its old ground's figures).

Run: ``python sample_data/make_code_changes.py``.
"""
from __future__ import annotations

import csv
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "code_changes_sources.csv"
CENSUS = HERE.parent / "zoning" / "data" / "census_county_2020.csv"
OUT = HERE.parent / "zoning" / "data" / "county_code_changes.csv"
UNCERTAIN = {("232762", "150723")}  # 松岭区 → 鄂伦春自治旗: across a province border, from a seat coordinate only


def main() -> None:
    with open(CENSUS, encoding="utf-8") as f:
        census = {r["county_id"] for r in csv.DictReader(line for line in f if not line.startswith("#"))}
    with open(SOURCES, encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if (r["old_code"], r["new_code"]) not in UNCERTAIN]
    since = [r for r in rows if r["old_code"] in census]
    out = [[r["new_code"], r["new_name"], r["old_code"], r["share"] or "1.0", r["year"], r["kind"], r["source"]]
           for r in since]
    listed = {(o[0], o[2]) for o in out}
    for code in sorted({r["new_code"] for r in since if r["new_code"] in census}):
        if (code, code) not in listed:  # it kept its own ground too: that part is its own census row
            name = next(r["new_name"] for r in since if r["new_code"] == code)
            out.append([code, name, code, "1.0", "", "merge", "its own census row (the ground it kept)"])
    taken = {o[0] for o in out}
    for r in rows:
        if r["old_code"] not in census and r["kind"] == "rename" and r["new_code"] in census and \
                r["old_code"] not in taken:
            out.append([r["old_code"], r["old_name"], r["new_code"], "1.0", r["year"], "older code", r["source"]])
            taken.add(r["old_code"])
    out.sort(key=lambda o: (o[0], o[2]))
    with open(OUT, "w", encoding="utf-8", newline="") as f:
        f.write("# What each county code other than the 2020 census's is made of, in census units; made by "
                "sample_data/make_code_changes.py from sample_data/code_changes_sources.csv\n")
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["code", "name", "census_code", "share", "year", "kind", "source"])
        w.writerows(out)
    print(f"wrote {OUT}: {len(out)} rows for {len({o[0] for o in out})} codes")


if __name__ == "__main__":
    main()
