"""County statistics from the 2020 census, joined to counties as people key them today.

The shipped table (``zoning/data/census_county_2020.csv``) holds counts, not rates, so that units merged since the
census, and NBS statistical zones folded into the county that holds them, stay exact: rates are derived after the
counts are added. A county's figures come from the first of: its own row; the rows of the units it was made from
(code changes since 2020, ``county_code_changes.csv``); the row of the unit it became (an older code, e.g. 2010's).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

COUNTS = ("population", "urban_population", "households", "age65_population", "employed_sample",
          "employed_agri_sample")
# what the census gives the model, per county
FIELDS = ("population", "urbanization_rate", "agri_employment_share", "ageing_share")


def prepare(table: pd.DataFrame) -> pd.DataFrame:
    """The shipped table with the 65+ count derived (the source gives a share) and codes as text."""
    t = table.copy()
    t["county_id"] = t["county_id"].astype(str)
    t["host_id"] = t["host_id"].fillna("").astype(str).str.removesuffix(".0")
    t["age65_population"] = t["population"] * t["age65_share_pct"] / 100.0
    for c in COUNTS:
        t[c] = pd.to_numeric(t[c], errors="coerce").astype(float)
    t["statistical_zone"] = t["statistical_zone"].astype(bool)
    return t


def fold_statistical_zones(table: pd.DataFrame) -> pd.DataFrame:
    """Each statistical zone's counts added to the county that holds it, as local bulletins count them.

    Zones without a known host stay as rows of their own (they have no polygon, so they join no county). Returns
    the table without the folded zones; ``folded_zones`` lists each host's zones ("511071 内江经济开发区").
    """
    t = table.copy()
    zones = t[t["statistical_zone"] & t["host_id"].ne("")]
    t["folded_zones"] = ""
    if zones.empty:
        return t
    added = zones.groupby("host_id")[list(COUNTS)].sum(min_count=1)
    names = (zones["county_id"] + " " + zones["name"]).groupby(zones["host_id"]).agg("; ".join)
    t = t[~t["county_id"].isin(zones["county_id"])].set_index("county_id")
    hosts = added.index.intersection(t.index)
    for c in COUNTS:  # a count missing on either side stays missing: a share over part of the people is wrong
        t.loc[hosts, c] = t.loc[hosts, c] + added.loc[hosts, c]
    t.loc[hosts, "folded_zones"] = names.loc[hosts]
    return t.reset_index()


def apply_code_changes(table: pd.DataFrame, changes: pd.DataFrame) -> pd.DataFrame:
    """Rows for codes other than the census's: units created, merged, split or renamed since 2020, and older codes
    (2010's) of units the census counts under another code, so that a counties layer of another year joins.

    ``changes`` says what each such ``code`` is made of: one row per census unit it takes from (``census_code``),
    with ``share``, the part of that unit's people it took (1 when whole; blank counts as 1), ``kind`` and
    ``name``. A code listed there gets the sum of its parts' counts, even when the census has a row of that number
    (a unit that kept its code but not its ground).
    """
    t = table.set_index("county_id")
    ch = changes[changes["census_code"].isin(t.index)].copy()
    if ch.empty:
        return table.assign(via="")
    ch["share"] = pd.to_numeric(ch["share"], errors="coerce").fillna(1.0)
    parts = t.loc[ch["census_code"]]
    weighted = parts[list(COUNTS)].mul(ch["share"].to_numpy(), axis=0)
    weighted.index = ch["code"].to_numpy()
    counts = weighted.groupby(level=0).sum(min_count=1)
    part_text = (ch["census_code"] + " " + parts["name"].to_numpy() +
                 np.where(ch["share"].to_numpy() != 1, " × " + ch["share"].map("{:.3g}".format), ""))
    via = (ch["kind"].astype(str) + " (" + ch["year"].fillna("").astype(str) + "): ").groupby(ch["code"]).first() + \
        part_text.groupby(ch["code"]).agg(", ".join)
    first = parts.drop(columns=list(COUNTS)).set_axis(ch["code"].to_numpy()).groupby(level=0).first()
    rows = first.join(counts)
    rows["name"] = ch.groupby("code")["name"].first()
    rows["via"] = via
    rows = rows.rename_axis("county_id").reset_index()
    out = table.assign(via="")
    return pd.concat([rows, out[~out["county_id"].isin(rows["county_id"])]], ignore_index=True)


def match(ids: pd.Series, table: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The census row of each county id (NaN where none), and what was matched how.

    Returns
    -------
    (counts aligned to ``ids``' index with ``name_census``, ``via`` and ``source``; report with ``matched``,
    ``via_code_change`` and ``folded`` counts and ``missing`` ids)
    """
    key = ids.astype(str).str.strip().str.removesuffix(".0")
    t = table.set_index("county_id")
    found = key.isin(t.index)
    rows = t.reindex(key.to_numpy())
    rows.index = ids.index
    rows = rows.rename(columns={"name": "name_census"})
    report = {"counties": int(len(ids)), "matched": int(found.sum()),
              "via_code_change": int((rows["via"].fillna("") != "").sum()),
              "with_statistical_zones": int((rows["folded_zones"].fillna("") != "").sum()),
              "missing": key[~found].tolist()}
    return rows, report


def statistics(rows: pd.DataFrame) -> pd.DataFrame:
    """The model's census fields from matched counts: population (persons), urbanization_rate (% of residents in
    towns), agri_employment_share (% of the employed in farming, forestry, animal husbandry and fishery; from the
    10 % long-form sample) and ageing_share (% aged 65 and over)."""
    pop = rows["population"].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.DataFrame({
            "population": pop,
            "urbanization_rate": 100.0 * rows["urban_population"] / pop.where(pop > 0),
            "agri_employment_share": 100.0 * rows["employed_agri_sample"] /
            rows["employed_sample"].where(rows["employed_sample"] > 0),
            "ageing_share": 100.0 * rows["age65_population"] / pop.where(pop > 0),
        }, index=rows.index)


def overlay(census: pd.DataFrame, user: pd.DataFrame | None, user_source: str, census_source: pd.Series
            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The user's table with the census figures filled in where it has none, field by field and county by county,
    and where each figure came from (a column per field: ``user_source``, the census label or ""). A user's
    ``pop_density`` counts as their population figure."""
    merged = user.copy() if user is not None else pd.DataFrame(index=census.index)
    origin = pd.DataFrame(index=census.index)
    for c in census.columns:
        given = pd.to_numeric(merged[c], errors="coerce") if c in merged else pd.Series(np.nan, index=census.index)
        mine = given.notna()
        if c == "population" and "pop_density" in merged:
            mine |= pd.to_numeric(merged["pop_density"], errors="coerce").notna()
        merged[c] = given.where(given.notna(), census[c])
        origin[c] = np.where(mine, user_source, np.where(census[c].notna(), census_source, ""))
    return merged, origin


def describe(origin: pd.DataFrame) -> pd.Series:
    """Per county, fields grouped by where they came from: "population: stats.csv; urbanization_rate, …: census
    2020 (leiii)"."""
    if origin.empty:
        return pd.Series("", index=origin.index, dtype=object)
    codes, patterns = pd.MultiIndex.from_frame(origin.fillna("").astype(str)).factorize()
    said = [_describe(pd.Series(p, index=origin.columns)) for p in patterns]  # a handful of patterns
    return pd.Series(np.asarray(said, dtype=object)[codes], index=origin.index)


def _describe(row: pd.Series) -> str:
    by: dict[str, list[str]] = {}
    for field, src in row.items():
        if src:
            by.setdefault(src, []).append(field)
    return "; ".join(f"{', '.join(fields)}: {src}" for src, fields in by.items())
