"""The one reduce of a check: the parts' findings, tallies and ledgers into a :class:`CheckResult`, whichever
executor ran the parts (:mod:`.checking`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import geopandas as gpd
import pandas as pd

from .. import outputs, report as rep, violations as vio
from . import supervising

LINE_ROLES = {"red_line": "red line 生态保护红线", "farmland": "permanent farmland 永久基本农田",
              "urban_boundary": "urban boundary 城镇开发边界"}
TOP_N = 50  # most serious violations kept for the HTML report


@dataclass
class CheckResult:
    """What :func:`check` found. ``violations`` is None when the rows went to a ``sink``."""

    conflicts: gpd.GeoDataFrame
    violations: gpd.GeoDataFrame | None
    county_summary: pd.DataFrame
    top_violations: pd.DataFrame
    lines: dict[str, gpd.GeoDataFrame]
    rules: dict
    info: dict = field(default_factory=dict)
    parcels: gpd.GeoDataFrame | None = None  # the parcel ledger (None when streamed to a sink)
    rectified: gpd.GeoDataFrame | None = None  # earlier findings that no longer occur (with ``previous``)
    id_changes: dict = field(default_factory=dict)  # ids settled after the rows went to a sink (year on year)


def year_on_year(res: CheckResult, sup: supervising.Supervision, out_crs) -> CheckResult:
    """The rectified findings, the ids settled across chunks, and what became of the earlier run in the run
    facts."""
    res.rectified = supervising.rectified(sup, out_crs)
    if res.rectified is not None:
        res.info["rectified"] = len(res.rectified)
        res.info["year_on_year"] = supervising.year_on_year(sup)
        res.id_changes = supervising.id_changes(sup)
        res.violations = supervising.rename(res.violations, res.id_changes)
        res.parcels = supervising.rename(res.parcels, res.id_changes, "violation_ids")
        res.top_violations = supervising.rename(res.top_violations, res.id_changes)
    return res


def deliver(frame, ledger_rows, sink, kept: list, ledgers: list, top: pd.DataFrame) -> pd.DataFrame:
    """A chunk's findings and ledger to the ``sink`` (the writer: only tallies and the most serious rows stay here)
    or kept; returns the most serious findings so far."""
    if sink is not None:
        sink(frame, ledger_rows)
    else:
        kept.append(frame)
        if ledger_rows is not None:
            ledgers.append(ledger_rows)
    if len(frame):
        top = rep.top_violations(pd.concat([top, pd.DataFrame(rep.top_violations(frame, TOP_N).drop(
            columns="geometry"))]), TOP_N)
    return top


def summarize(tally: vio.Tally, sup: supervising.Supervision, cvio, rules: dict, extra: dict,
              has_construction: bool, line_geoms: Callable[[], dict]) -> pd.DataFrame:
    """The ``county_summary`` layer from the tallies of every chunk (or cluster task); ``line_geoms()`` gives the
    whole lines in China Albers, asked for only by the rows that need them (urban expansion, land-cover change)."""
    rows = pd.concat(tally.rows, ignore_index=True) if tally.rows else \
        pd.DataFrame({"check_id": [], "county_id": [], "area_m2": [], "count": [], "parcels": []})
    slv = pd.concat(tally.slivers, ignore_index=True) if tally.slivers else None
    lookup = None if cvio is None else pd.DataFrame({"county_id": cvio.ids, "county_name": cvio.names})
    ran = [c for c, spec in outputs.CHECKS.items() if spec.kind == "conflict" or
           (spec.kind == "construction" and has_construction)]
    ran = [c for c in ran if rules["checks"].get(c, {}).get("enabled", True)]
    summary = rep.county_summary(rows, slv, lookup, ran)
    for check, n in tally.distinct.items():  # a parcel across a county border is one parcel in the total
        summary.loc[(summary["check_id"] == check) & (summary["county_id"] == "TOTAL"), "parcels"] = n
    built = [c for c in ran if outputs.CHECKS[c].kind == "construction"]
    if extra.get("baseline") is not None:
        summary = supervising.with_new(summary, sup, lookup, built)
    if has_construction:
        summary = supervising.with_rectification(summary, sup, cvio, built)
    exp = None
    if cvio is not None and cvio.extra is not None and \
            rules["checks"]["urban_expansion"].get("existing_field") in cvio.extra:
        exp = rep.expansion_rows(cvio, line_geoms()["urban_boundary"], rules["checks"]["urban_expansion"])
    if exp is not None:
        summary = pd.concat([summary, exp], ignore_index=True)
    if extra.get("landcover_previous"):
        summary = pd.concat([summary, supervising.landcover_change(
            cvio, line_geoms(), {k: extra.get(k) for k in ("landcover", "landcover_previous")}, extra.get("legend"),
            rules["rules"]["area_method"])], ignore_index=True)
    return summary[outputs.columns("county_summary", summary.columns)]


def run_info(rules: dict, n_parcels: int, timings: dict, out_crs, summary: pd.DataFrame) -> dict:
    """The run facts of a check (``zoning_run`` metadata)."""
    n_viol = int(summary.loc[(summary["county_id"] == "TOTAL") & summary["check_id"].str.startswith(
        "construction"), "count"].sum()) if len(summary) else 0
    info = {"rules": f"{rules['rules']['id']}@{rules['rules']['version']}", "area_method":
            {"albers": "planar, China Albers equal-area (GRS80)", "geodesic": "ellipsoidal (GRS80)"}[
                rules["rules"]["area_method"]], "parcels": n_parcels, "timings_s": timings,
            "crs": out_crs.to_string(), "violations": n_viol}
    return info


def empty_layer(layer: str, crs) -> gpd.GeoDataFrame:
    cols = [c for c in outputs.columns(layer) if c not in outputs.EPOCH_FIELDS or c == "first_detected_on"]
    return gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in cols}, geometry=[], crs=crs)
