"""Year-on-year supervision wiring: cultivated land, the baseline survey and the earlier run, loaded and applied
chunk by chunk to the check's findings (the domain is :mod:`zoning.epochs`)."""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers import previous as lprevious

from .. import areas, continuity, controllines as cl, epochs, outputs, report as rep, tiling, validate, violations as vio

log = logging.getLogger("zoning")


@dataclass
class Supervision:
    """What beside the three lines a check may use: cultivated land (耕地), the baseline survey's parcels, the
    earlier run's findings and ledger (year-on-year supervision), and what the earlier run became in this one."""

    cropland: cl.ControlIndex | None = None
    baseline: cl.ControlIndex | None = None
    run_date: str = field(default_factory=lambda: time.strftime("%Y-%m-%d"))
    new: vio.Tally = field(default_factory=vio.Tally)
    ledger: bool = True  # build the parcel ledger (``parcels``)
    match: dict = field(default_factory=lambda: {"min_share": 0.25, "tolerance_m": 2.0})
    # the earlier run (--previous): its findings and recorded ledger parcels on the ground
    previous_path: Path | None = None
    earlier: continuity.Earlier | None = None
    earlier_parcels: continuity.Earlier | None = None
    # over every chunk: earlier findings continued (by a finding with the same key), whose id was taken; earlier
    # ledger parcels whose follow-up was carried
    continued: np.ndarray | None = None
    by_id: np.ndarray | None = None
    taken: np.ndarray | None = None
    carried: np.ndarray | None = None  # over the recorded earlier parcels
    recorded: np.ndarray | None = None  # which earlier ledger rows hold an auditor's record
    claims: list = field(default_factory=list)  # every chunk's claims on earlier ids (continuity.final_ids)


EXTRA_ROLES = {"cropland": "cultivated land 耕地", "baseline": "baseline construction 基期建设图斑"}


def load(others: dict, previous, out_crs, rules: dict) -> Supervision:
    sup = Supervision(match=dict(rules["year_on_year"]))
    for key, g in others.items():
        if g.crs != out_crs:
            log.info("%s is in %s, the red line in %s: reprojecting", key, g.crs.to_string(), out_crs.to_string())
        geoms = np.asarray(areas.to_crs(g.geometry.values, g.crs, areas.CHINA_ALBERS), dtype=object)
        setattr(sup, key, cl.prepare_control(geoms, g["_id"].astype(str).to_numpy(dtype=object),
                                             rules["rules"]["subdivide_m"]))
    if previous is not None:
        prev = previous if isinstance(previous, dict) else lprevious.read_previous(previous, continuity.PREVIOUS_FIELDS)
        for note in prev.get("notes", []):
            log.warning("--previous %s: %s", prev["path"], note)
        v, p = prev["violations"], prev["parcels"]
        # held here from now on: the caller's copy of the earlier layers is released (they can be large)
        prev["violations"] = prev["parcels"] = None
        table = pd.DataFrame(v.drop(columns=v.geometry.name))
        # an earlier finding without a date of its own was first detected by the earlier run
        table["first_detected_on"] = continuity.first_dates(table).fillna(prev["run_date"] or sup.run_date)
        sup.previous_path = prev["path"]
        sup.earlier = continuity.Earlier.of(table, _albers(v), grouped=True)
        del v  # the rectified rows are read again by feature id at the end
        # only the parcels the auditor recorded something for carry anything: the rest would bring back defaults
        sup.recorded = continuity.follow_up_filled(p)
        p = p[sup.recorded]
        sup.earlier_parcels = continuity.Earlier.of(pd.DataFrame(p.drop(columns=p.geometry.name)), _albers(p))
        sup.continued, sup.by_id, sup.taken = (np.zeros(len(table), dtype=bool) for _ in range(3))
        sup.carried = np.zeros(len(p), dtype=bool)
        log.info("previous run %s (%s): %d findings, %d ledger parcels of which %d hold an auditor's record",
                 prev["path"], prev["run_date"] or "undated", len(table), len(sup.recorded), len(p))
    return sup


def _albers(gdf: gpd.GeoDataFrame) -> np.ndarray:
    return vio.valid_polygonal(np.asarray(areas.to_crs(gdf.geometry.values, gdf.crs, areas.CHINA_ALBERS),
                                          dtype=object))


def extent(geoms) -> tuple | None:
    """The China-Albers extent of geometries (None when there are none)."""
    geoms = np.asarray(geoms, dtype=object)
    return tuple(shapely.total_bounds(geoms)) if len(geoms) else None


def check_extents(parcels_box, parcels_name: str, sup: Supervision, baseline_box, baseline_name: str) -> None:
    """Refuse, before any work, an earlier run or a baseline that lies elsewhere than the current parcels: every
    finding would come out new or rectified (a survey of another place or in another CRS)."""
    if parcels_box is None:
        return
    if baseline_box is not None:
        validate.check_overlap(parcels_box, baseline_box, parcels_name, f"the baseline ({baseline_name})")
    if sup.earlier is not None:
        boxes = [b for b in (extent(sup.earlier.geoms), extent(sup.earlier_parcels.geoms)) if b is not None]
        if boxes:
            box = tiling.union_box(np.array(boxes, dtype=float).T)
            validate.check_overlap(parcels_box, box, parcels_name, f"the earlier run ({sup.previous_path})")


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


def with_rectification(summary: pd.DataFrame, sup: Supervision, counties: vio.Counties | None,
                       checks: list[str]) -> pd.DataFrame:
    """``previous_count``, ``rectified_count`` and ``rectification_rate`` per county and construction check; the
    earlier findings are placed in today's counties by their ground (county codes change)."""
    if sup.earlier is None:
        return summary
    if counties is not None:
        county = counties.locate(sup.earlier.geoms)[0]
        ids = counties.ids
    else:
        county = np.full(len(sup.earlier), vio.NO_COUNTY, dtype=object)
        ids = np.array([vio.NO_COUNTY], dtype=object)
    rect = continuity.rectification_summary(county, sup.earlier.table["check_id"].astype(str).to_numpy(),
                                        ~sup.continued, ids, checks)
    return summary.merge(rect, on=["check_id", "county_id"], how="left")


def rectified(sup: Supervision, out_crs) -> gpd.GeoDataFrame | None:
    """The earlier findings that no current finding of the same check and control feature continues on the
    ground (gone: 已整改), as the earlier run wrote them, with the follow-up of their parcel."""
    if sup.earlier is None:
        return None
    gone = sup.earlier.table[~sup.continued]
    geoms = lprevious.read_geometry(sup.previous_path, "violations", gone["_fid"].to_numpy())
    rows = gpd.GeoDataFrame(gone.drop(columns="_fid").reset_index(drop=True), geometry=geoms.values,
                            crs=geoms.crs)
    rows = rows.to_crs(out_crs) if rows.crs is not None and rows.crs != out_crs else rows
    geom = rows.geometry.name
    rows = continuity.with_follow_up(rows, sup.earlier_parcels.table)
    cols = outputs.columns("rectified", [c for c in rows.columns if c != geom])
    known = [c for c in cols if c in outputs.FIELDS]  # the earlier run's own extras are not carried
    return gpd.GeoDataFrame(rows[known], geometry=rows[geom].values, crs=out_crs).reset_index(drop=True)


def year_on_year(sup: Supervision) -> dict | None:
    """What happened to the earlier run, for the log, ``run.json`` and the reports."""
    if sup.earlier is None:
        return None
    pid = sup.earlier_parcels.table["parcel_id"].astype(str).to_numpy()
    lost = sorted(set(pid[~sup.carried]))
    info = {"previous": str(sup.previous_path), "previous_findings": int(len(sup.earlier)),
            "continued": int(sup.continued.sum()), "continued_by_id": int(sup.by_id.sum()),
            "continued_by_ground": int((sup.continued & ~sup.by_id).sum()),
            "rectified": int((~sup.continued).sum()),
            "rectification_rate": round(float((~sup.continued).mean()), 4) if len(sup.earlier) else None,
            "follow_up_records": int(len(pid)), "follow_up_carried": int(sup.carried.sum()),
            "follow_up_not_carried": int((~sup.carried).sum()), "follow_up_not_carried_ids": lost[:50]}
    log.info("earlier findings: %d, of which %d continue (%d by equal id, %d by ground only) and %d are rectified "
             "(gone from the ground)", info["previous_findings"], info["continued"], info["continued_by_id"],
             info["continued_by_ground"], info["rectified"])
    if not sup.ledger:
        info.update(follow_up_carried=None, follow_up_not_carried=None, follow_up_not_carried_ids=[])
        log.warning("the ledger is not written (--no-ledger): the follow-up recorded for %d earlier parcels is not "
                    "carried into this run", info["follow_up_records"])
    else:
        log.info("auditor's follow-up: %d earlier parcels carried a record, %d carried to current parcels, %d not "
                 "(no current parcel on their ground)%s", info["follow_up_records"], info["follow_up_carried"],
                 info["follow_up_not_carried"], f": {', '.join(lost[:10])}" if lost else "")
    if len(sup.earlier) and not sup.continued.any():
        log.warning("no earlier finding continues in this run: is --previous the check of the same place and lines?")
    return info


def supervise(frame, alb: np.ndarray, parcels, ids, sup: Supervision, rules, news) -> gpd.GeoDataFrame:
    """Year-on-year columns of a chunk's findings (``alb``: their China-Albers geometries, in the rows' order):
    change since the baseline; first detection (this run's)."""
    method, sliver = rules["rules"]["area_method"], rules["rules"]["sliver_m2"]
    if sup.baseline is not None:
        pos = pd.Series(np.arange(len(ids)), index=ids).reindex(frame["parcel_id"].to_numpy()).to_numpy()
        frame, new = epochs.change_columns(frame, alb, pos, news.result(), sliver, method)
        grew = (frame["change"] != "existing").to_numpy() & ~shapely.is_missing(new)
        for check in pd.unique(frame["check_id"][grew]):
            sel = grew & (frame["check_id"] == check).to_numpy()
            sup.new.add(check, frame["county_id"].to_numpy()[sel], frame["parcel_id"].to_numpy()[sel], new[sel],
                        method, parcels=True, row_area=frame["new_area_m2"].to_numpy()[sel])
    frame = continuity.first_detected(frame, sup.run_date)
    return frame[outputs.columns("violations", frame.columns) + ["geometry"]]


def carry(frame: gpd.GeoDataFrame, ledger_rows: gpd.GeoDataFrame | None, sup: Supervision,
          albers: tuple | None = None):
    """The earlier run carried into a chunk's findings and ledger by ground (on the client, chunk after chunk, in
    one process and on a cluster alike): ids and first detection, the auditor's follow-up.

    ``albers``: the findings' and the parcels' China-Albers geometries when at hand (one process), else they are
    projected here. The ledger is matched in a thread beside the findings (shapely releases the GIL).
    """
    if sup.earlier is None:
        return frame, ledger_rows
    frame_alb, ledger_alb = albers or (None, None)
    follow = None
    if ledger_rows is not None:
        geoms = ledger_alb if ledger_alb is not None else _albers_of(ledger_rows)
        follow = _POOL.submit(continuity.carry_follow_up, pd.DataFrame(ledger_rows.drop(columns="geometry")), geoms,
                              sup.earlier_parcels, sup.match)
    before = frame["violation_id"].to_numpy(dtype=object)
    frame, got = continuity.continue_findings(frame, frame_alb if frame_alb is not None else _albers_of(frame),
                                              sup.earlier, sup.match, sup.taken)
    sup.taken[got["taken"]] = True
    sup.continued[got["continued"]] = True
    sup.by_id[got["by_id"]] = True
    sup.claims.append(got["claims"])
    frame = frame[outputs.columns("violations", frame.columns) + ["geometry"]]
    if follow is not None:
        table, used = follow.result()
        sup.carried[used] = True
        table["violation_ids"] = continuity.remap_ids(table["violation_ids"], before,
                                                      frame["violation_id"].to_numpy(dtype=object))
        ledger_rows = gpd.GeoDataFrame(table, geometry=ledger_rows.geometry.values, crs=ledger_rows.crs)
    return frame, ledger_rows


_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoning-ledger")


def id_changes(sup: Supervision) -> dict[str, str]:
    """The ids given chunk by chunk that the whole run decides otherwise ({} but where parcels overlap)."""
    if sup.earlier is None:
        return {}
    changes = continuity.final_ids(sup.claims, sup.earlier.table["violation_id"].astype(str).to_numpy(dtype=object))
    if changes:
        log.info("%d finding id(s) settled across chunks (overlapping parcels claimed one earlier finding)",
                 len(changes))
    return changes


def rename(frame: pd.DataFrame | None, changes: dict, column: str = "violation_id") -> pd.DataFrame | None:
    """``changes`` applied to a table of findings (``violation_id``) or to the ledger (``violation_ids``)."""
    if frame is None or not changes or column not in frame:
        return frame
    frame = frame.copy()
    if column == "violation_id":
        frame[column] = frame[column].map(lambda v: changes.get(v, v))  # a handful of rows change
    else:
        frame[column] = continuity.remap_ids(frame[column], np.array(list(changes), dtype=object),
                                             np.array(list(changes.values()), dtype=object))
    return frame


def _albers_of(gdf: gpd.GeoDataFrame) -> np.ndarray:
    return np.asarray(areas.to_crs(gdf.geometry.values, gdf.crs, areas.CHINA_ALBERS), dtype=object)


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
        shares, covered = [], []
        for kind in ("landcover_previous", "landcover"):
            path = Path(rasters[kind])
            info = raster_info(path, kind)
            crs = info["crs"].to_wkt()
            with lzonal.north_up(path) as p:
                g = areas.to_crs(geoms, areas.CHINA_ALBERS, crs) if len(geoms) else geoms
                codes, fracs, cells, _ = lzonal.landcover_fractions(p, np.asarray(g, dtype=object),
                                                                    max_cells=memory_mb * 1e6 / 200)
            if len(geoms):
                table = ind_mod.shares_from_fractions(codes, fracs, cells, legend)
                shares.append(table["built_up_share"].to_numpy())
                # cells outside the raster count as missing whether or not the raster declares a nodata value
                inside = epochs.share_inside(geoms, tiling.to_crs_box(info["bounds"], crs, areas.CHINA_ALBERS))
                covered.append(inside * table["landcover_valid_share"].fillna(0).to_numpy())
            else:
                shares.append(np.zeros(0))
                covered.append(np.zeros(0))
        frames.append(epochs.builtup_change(counties, check, idx, area, shares[0], shares[1],
                                            covered[0], covered[1]))
        log.info("built-up land in the %s: %+.2f ha between the two land covers", line,
                 frames[-1]["area_ha"].iloc[-1])
    return pd.concat(frames, ignore_index=True)
