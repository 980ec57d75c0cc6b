"""Year-on-year supervision wiring: cultivated land, the baseline survey and the earlier run, loaded and applied
chunk by chunk to the check's findings (the domain is :mod:`zoning.epochs`)."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers import gpkg

from .. import areas, controllines as cl, epochs, outputs, report as rep, violations as vio

log = logging.getLogger("zoning")


@dataclass
class Supervision:
    """What beside the three lines a check may use: cultivated land (耕地), the baseline survey's parcels, the
    earlier run's findings and ledger (year-on-year supervision)."""

    cropland: cl.ControlIndex | None = None
    baseline: cl.ControlIndex | None = None
    previous: pd.DataFrame | None = None  # the earlier findings by key (epochs.previous_lookup)
    previous_parcels: pd.DataFrame | None = None
    run_date: str = field(default_factory=lambda: time.strftime("%Y-%m-%d"))
    new: vio.Tally = field(default_factory=vio.Tally)
    previous_rows: pd.DataFrame | None = None  # the earlier run's violations (no geometry, fid index)
    previous_path: Path | None = None
    keys: list = field(default_factory=list)  # keys of this run's findings (to find the rectified ones)
    ledger: bool = True  # build the parcel ledger (``parcels``)


EXTRA_ROLES = {"cropland": "cultivated land 耕地", "baseline": "baseline construction 基期建设图斑"}


def load(others: dict, previous, out_crs, rules: dict) -> Supervision:
    sup = Supervision()
    for key, g in others.items():
        if g.crs != out_crs:
            log.info("%s is in %s, the red line in %s: reprojecting", key, g.crs.to_string(), out_crs.to_string())
        geoms = np.asarray(areas.to_crs(g.geometry.values, g.crs, areas.CHINA_ALBERS), dtype=object)
        setattr(sup, key, cl.prepare_control(geoms, g["_id"].astype(str).to_numpy(dtype=object),
                                             rules["rules"]["subdivide_m"]))
    if previous is not None:
        prev = previous if isinstance(previous, dict) else gpkg.read_previous(previous, epochs.PREVIOUS_FIELDS)
        sup.previous_rows = prev["violations"]
        sup.previous = epochs.previous_lookup(prev["violations"], prev["run_date"] or sup.run_date)
        sup.previous_parcels = prev["parcels"]
        sup.previous_path = prev["path"]
        log.info("previous run %s (%s): %d findings, %d parcels", prev["path"], prev["run_date"] or "undated",
                 len(sup.previous_rows), len(sup.previous_parcels))
    return sup


def with_new(summary: pd.DataFrame, sup: Supervision, lookup, checks: list[str]) -> pd.DataFrame:
    """``new_count`` and ``new_area_*`` per county and construction check (rows new or expanded since the
    baseline; each parcel's new area counted once)."""
    rows = pd.concat(sup.new.rows, ignore_index=True) if sup.new.rows else \
        pd.DataFrame({"check_id": [], "county_id": [], "area_m2": [], "count": [], "parcels": []})
    new = rep.county_summary(rows, None, lookup, checks)
    new = new.rename(columns={"count": "new_count", "area_m2": "new_area_m2", "area_ha": "new_area_ha",
                              "area_mu": "new_area_mu"})
    keep = ["check_id", "county_id", "new_count", "new_area_m2", "new_area_ha", "new_area_mu"]
    return summary.merge(new[keep], on=["check_id", "county_id"], how="left")


def rectified(sup: Supervision, out_crs) -> gpd.GeoDataFrame | None:
    """The earlier findings whose (check, parcel, control feature) no longer occurs, as the earlier run wrote them."""
    if sup.previous_rows is None:
        return None
    keys = pd.concat(sup.keys, ignore_index=True) if sup.keys else pd.Series([], dtype=object)
    gone = epochs.rectified(sup.previous_rows, keys)
    rows = gpkg.read_rows(sup.previous_path, "violations", sup.previous_rows.index.to_numpy()[gone])
    rows = rows.to_crs(out_crs) if rows.crs is not None and rows.crs != out_crs else rows
    rows["status"] = "已整改"
    cols = outputs.columns("rectified", rows.columns)
    return rows[[c for c in cols if c in rows.columns] + [rows.geometry.name]]


def supervise(frame, collect: dict, parcels, ids, sup: Supervision, rules, news) -> gpd.GeoDataFrame:
    """Year-on-year columns of a chunk's findings: change since the baseline, ids and first detection carried."""
    method, sliver = rules["rules"]["area_method"], rules["rules"]["sliver_m2"]
    if sup.baseline is not None:
        alb = np.concatenate([np.asarray(a, dtype=object) for _, a in collect.values()]) if collect else \
            np.array([], dtype=object)
        pos = pd.Series(np.arange(len(ids)), index=ids).reindex(frame["parcel_id"].to_numpy()).to_numpy()
        frame, new = epochs.change_columns(frame, alb, pos, news.result(), sliver, method)
        grew = (frame["change"] != "existing").to_numpy() & ~shapely.is_missing(new)
        for check in pd.unique(frame["check_id"][grew]):
            sel = grew & (frame["check_id"] == check).to_numpy()
            sup.new.add(check, frame["county_id"].to_numpy()[sel], frame["parcel_id"].to_numpy()[sel], new[sel],
                        method, parcels=True, row_area=frame["new_area_m2"].to_numpy()[sel])
    return carry_previous(frame, sup)


def carry_previous(frame, sup: Supervision) -> gpd.GeoDataFrame:
    """Ids and first detection carried from the earlier run; this run's finding keys kept (for ``rectified``)."""
    frame = epochs.carry_ids(frame, sup.previous, sup.run_date)
    if sup.previous_rows is not None:
        sup.keys.append(epochs.finding_keys(frame))
    return frame[outputs.columns("violations", frame.columns) + ["geometry"]]


LANDCOVER_LINES = {"red_line": "builtup_gain_red_line", "farmland": "builtup_gain_farmland"}


def landcover_change(counties: vio.Counties | None, lines: dict, rasters: dict, legend_spec, method: str,
                     memory_mb: float = 1024.0) -> pd.DataFrame:
    """Per county, the built-up gain between two land covers inside the red line and on farmland
    (coverage-weighted shares × the true area of the county's part of each line)."""
    from layers import zonal as lzonal
    from layers.raster import raster_info

    from .. import indicators as ind_mod
    from ..errors import UsageError
    from .config import load_legend

    if counties is None:
        raise UsageError("landcover_previous needs the counties (--counties): the gain is reported per county")
    missing = [k for k in ("landcover", "landcover_previous") if not rasters.get(k)]
    if missing:
        raise UsageError(f"the land-cover change needs both --raster landcover=PATH and --raster "
                         f"landcover_previous=PATH; missing {', '.join(missing)}")
    legend = load_legend(legend_spec)
    frames = []
    for line, check in LANDCOVER_LINES.items():
        idx, geoms = epochs.line_in_counties(counties, lines[line])
        area = vio.area(geoms, method) if len(geoms) else np.zeros(0)
        shares = []
        for kind in ("landcover_previous", "landcover"):
            path = Path(rasters[kind])
            crs = raster_info(path, kind)["crs"].to_wkt()
            with lzonal.north_up(path) as p:
                g = areas.to_crs(geoms, areas.CHINA_ALBERS, crs) if len(geoms) else geoms
                codes, fracs, cells, _ = lzonal.landcover_fractions(p, np.asarray(g, dtype=object),
                                                                    max_cells=memory_mb * 1e6 / 200)
            shares.append(ind_mod.shares_from_fractions(codes, fracs, cells, legend)["built_up_share"].to_numpy()
                          if len(geoms) else np.zeros(0))
        frames.append(epochs.builtup_change(counties, check, idx, area, shares[0], shares[1]))
        log.info("built-up land in the %s: %+.2f ha between the two land covers", line,
                 frames[-1]["area_ha"].iloc[-1])
    return pd.concat(frames, ignore_index=True)
