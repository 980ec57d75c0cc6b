"""The control-line check on a Dask cluster (``--cluster``): the same domain functions as one process, on parts.

The client checks every input without reading its geometry (fields, CRS, ids, extents), plans the work and writes
the outputs; workers read only their part:

- conflicts between the lines: a grid of tiles over the lines; a tile reads the features whose extent meets it and
  keeps the pairs whose extents' intersection starts inside it, so each pair is found once;
- construction: the parcels in Hilbert-ordered groups of ``chunk_size`` read by feature id, each with the control
  features, cultivated land and baseline parcels near it (read by extent), so no process holds a whole layer.

Results are identical to one process: each parcel and pair meets the same whole control features, cut into the
same tiles, and ids are functions of content.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS

from layers import vector as lvector

from .. import areas, controllines as cl, outputs, tiling, validate, violations as vio
from ..errors import DataError, UsageError
from . import cluster, parcels as parcel_step, record, supervising
from .parcels import OVERLAP_MARGIN_M
from .reduce import LINE_ROLES, CheckResult, deliver, empty_layer, run_info, summarize, year_on_year
from .config import CheckJob, ReadOptions
from .inputs import (PlannedLayer, collect, counties_for_check, load_counties, load_part, load_polygons,
                     plan_polygons, raise_problems)

log = logging.getLogger("zoning")
CONFLICT_FEATURES_PER_TILE = 20_000


@dataclass
class Plans:
    """Everything a task needs besides its part, sent once to every worker."""

    lines: dict[str, PlannedLayer]
    extras: dict[str, PlannedLayer]
    parcels: PlannedLayer | None
    counties: vio.Counties | None
    read: ReadOptions
    rules: dict
    out_crs: str
    run_date: str
    ledger: bool


class _Inline:
    """A pool without threads: a worker process runs one task on one thread."""

    def submit(self, fn, *args):
        fut = Future()
        fut.set_result(fn(*args))
        return fut

    def map(self, fn, items):
        return map(fn, items)


class _Hashes:
    """Stands in for the seen-id set of one process: ids are compared across tasks by the client, as hashes."""

    def __init__(self):
        self.hashes = np.zeros(0, dtype=np.uint64)

    def intersection(self, ids) -> set:
        return set()

    def update(self, ids) -> None:
        self.hashes = pd.util.hash_array(np.asarray(ids, dtype=object))


def _lines_near(plans: Plans, fids: dict[str, np.ndarray] | None = None, box=None, box_crs=None) -> vio.Lines:
    geoms, ids, labels = {}, {}, {}
    for k, pl in plans.lines.items():
        g = load_part(pl, fids=fids[k]) if fids is not None else \
            load_part(pl, bbox=tiling.to_crs_box(box, box_crs, pl.crs_wkt))
        geoms[k] = np.asarray(areas.to_crs(g.geometry.values, g.crs, areas.CHINA_ALBERS), dtype=object)
        ids[k] = g["_id"].astype(str).to_numpy(dtype=object)
        labels[k] = parcel_step.labels(g)
    return vio.Lines(geoms, ids, labels=labels)


def conflict_task(job) -> dict:
    """Conflicts of one tile (China Albers window) from the features whose extent meets it."""
    plans, fids, window = job
    lines, crs = _lines_near(plans, fids=fids), CRS.from_wkt(plans.out_crs)
    lines.window = window
    tally = vio.Tally()
    found = vio.line_conflicts(lines, plans.counties, plans.rules, crs, tally)
    # the union areas per county: every pair meeting the tile, clipped to it (tiles' parts add up to the union,
    # which the pairs of this tile alone would not give where conflicts overlap)
    lines.window, inside = None, vio.Tally(clip=window)
    vio.line_conflicts(lines, plans.counties, plans.rules, crs, inside)
    rows = [r.assign(area_m2=0.0) for r in tally.rows] + [r.assign(count=0) for r in inside.rows]
    return {"conflicts": found, "rows": rows, "slivers": tally.slivers}


def construction_task(job) -> dict:
    """The construction checks (and ledger) of one group of parcels, read by feature id."""
    plans, fids, box = job
    rules, read = plans.rules, plans.read
    chunk = lvector.read_part(plans.parcels.plan, fids=fids)
    if chunk.crs is None:
        chunk = chunk.set_crs(plans.parcels.crs_wkt)
    crs = plans.parcels.crs_wkt
    lines = _lines_near(plans, box=box, box_crs=crs).prepare(rules["rules"]["subdivide_m"])
    sup = supervising.Supervision(run_date=plans.run_date, ledger=plans.ledger, match=dict(rules["year_on_year"]))
    for key, pl in plans.extras.items():
        g = load_part(pl, bbox=tiling.to_crs_box(box, crs, pl.crs_wkt))
        geoms = np.asarray(areas.to_crs(g.geometry.values, g.crs, areas.CHINA_ALBERS), dtype=object)
        setattr(sup, key, cl.prepare_control(geoms, g["_id"].astype(str).to_numpy(dtype=object),
                                             rules["rules"]["subdivide_m"]))
    tally, seen = vio.Tally(), _Hashes()
    ctx = parcel_step.PartContext(read, lines, plans.counties, rules, CRS.from_wkt(plans.out_crs), sup)
    frame, ledger, _ = parcel_step.check_parcels(chunk, ctx, seen, tally, _Inline())
    return {"frame": frame, "ledger": ledger, "rows": tally.rows, "slivers": tally.slivers, "new": sup.new.rows,
            "distinct": tally.distinct,
            "hashes": seen.hashes, "n": len(chunk)}


def _refuse_frames(**specs) -> None:
    for name, spec in specs.items():
        if isinstance(spec, (gpd.GeoDataFrame, pd.DataFrame)):
            raise UsageError(f"{name}: on a cluster inputs are files the workers read (a path every worker can "
                             "reach), not GeoDataFrames in this process")


def plan_check(job: CheckJob, extra: dict):
    """Check every input on the client (no geometry read but the counties') and plan the parts."""
    line_specs, construction, counties, read, rules = job.lines, job.construction, job.counties, job.read, job.rules
    county_role, zones = job.county_role, job.zone_of
    _refuse_frames(**line_specs, construction=construction,
                   **{k: v for k, v in extra.items() if k in supervising.EXTRA_ROLES})
    problems, lines, boxes, extras = [], {}, {}, {}
    for key, role in {**LINE_ROLES, **supervising.EXTRA_ROLES}.items():
        spec = line_specs.get(key) if key in LINE_ROLES else extra.get(key)
        if spec is None:
            continue
        try:
            pl, fids, box = plan_polygons(spec, role, read, key)
        except DataError as exc:  # every bad input at once, as in one process
            problems.append(str(exc))
            continue
        if key in LINE_ROLES:
            lines[key] = pl
            boxes[key] = (fids, tiling.boxes_to_crs(box, pl.crs_wkt, areas.CHINA_ALBERS))
        else:
            extras[key] = pl
    cty = None if counties is None else collect(problems, load_counties, counties, read, county_role)
    parcels = pbox = pfids = None
    if construction is not None:
        try:
            parcels, pfids, pbox = plan_polygons(construction, "construction", read, "construction", check_ids=False)
            parcels = _construction_id(parcels, read)
        except DataError as exc:
            problems.append(str(exc))
    raise_problems(problems)
    names = list(LINE_ROLES)
    ext = {k: tiling.union_box(b) for k, (_, b) in boxes.items()}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            validate.check_overlap(ext[a], ext[b], f"{a} ({lines[a].plan.source})", f"{b} ({lines[b].plan.source})",
                                   margin=OVERLAP_MARGIN_M)
    if parcels is not None and pbox.shape[1]:  # the extent only: 10⁷ parcels' own boxes would take gigabytes
        pext = tiling.to_crs_box(tiling.union_box(pbox), parcels.crs_wkt, areas.CHINA_ALBERS)
        validate.check_overlap(pext, tiling.union_box(np.concatenate([b for _, b in boxes.values()], axis=1)),
                               f"construction ({parcels.plan.source})", "the control lines", margin=OVERLAP_MARGIN_M)
    cvio = counties_for_check(cty)
    if cvio is not None and zones:
        cvio.extra["zone"] = pd.Series(cvio.ids).map(zones).to_numpy()
    plans = Plans(lines, extras, parcels, cvio, read, rules, lines["red_line"].crs_wkt, time.strftime("%Y-%m-%d"),
                  bool(extra.get("ledger", True)))
    return plans, boxes, (pfids, pbox)


def _construction_id(pl: PlannedLayer, read: ReadOptions) -> PlannedLayer:
    """The parcels' id field by the rules of one process (``--construction-id``, else ``id``, else the index)."""
    fld = read.id_for("construction") or "id"
    if fld not in pl.plan.columns:
        if read.ids.get("construction") or (read.id_field and read.id_field != "id"):
            head = pd.DataFrame(columns=list(pl.plan.columns))
            head.attrs["source"] = pl.plan.source
            validate.require_field(head, fld, "construction", "--construction-id")
        fld = None
    return PlannedLayer(pl.plan, "construction", fld, pl.crs_wkt)


def conflict_jobs(boxes: dict[str, tuple[np.ndarray, np.ndarray]], plans_future):
    """Tiles of the conflict checks, each with the fids of the features whose China Albers extent meets it."""
    n = sum(b.shape[1] for _, b in boxes.values())
    extent = tiling.union_box(np.concatenate([b for _, b in boxes.values()], axis=1))
    for tile in tiling.tile_grid(extent, -(-n // CONFLICT_FEATURES_PER_TILE)):
        fids = {k: f[tiling.in_tile(b, tile)] for k, (f, b) in boxes.items()}
        if sum(len(f) for f in fids.values()) >= 2:
            yield plans_future, fids, tile


def construction_jobs(parcels: tuple[np.ndarray, np.ndarray], size: int, plans_future) -> list:
    """Hilbert-ordered groups of ``size`` parcels: their fids and extent (the parcels' bounds are not kept)."""
    fids, box = parcels
    return [(plans_future, fids[g], tiling.union_box(box, g)) for g in tiling.hilbert_groups(box, size)]


def check_on_cluster(job: CheckJob, progress, sink):
    """:func:`zoning.pipeline.checking.check_job` on the job's cluster: the same :class:`CheckResult`."""
    address, line_specs, counties = job.cluster, job.lines, job.counties
    read, rules, need_lines = job.read, job.rules, job.need_lines
    t0 = time.perf_counter()
    extra = {k: v for k, v in job.extra.items() if v is not None}
    if extra.get("landcover_previous") and (not extra.get("landcover") or counties is None):
        raise UsageError("the land-cover change (landcover_previous) needs the current land cover "
                         "(--raster landcover=PATH) and the counties (--counties or --zones)")
    plans, boxes, parcels = plan_check(job, extra)
    out_crs = CRS.from_wkt(plans.out_crs)
    sup = supervising.load({}, extra.get("previous"), out_crs, rules)
    sup.ledger = plans.ledger
    if plans.parcels is not None and parcels[1].shape[1]:
        pext = tiling.to_crs_box(tiling.union_box(parcels[1]), plans.parcels.crs_wkt, areas.CHINA_ALBERS)
        base = plans.extras.get("baseline")
        bext = None if base is None else tiling.to_crs_box(base.plan.bounds, base.crs_wkt, areas.CHINA_ALBERS)
        supervising.check_extents(pext, f"construction ({plans.parcels.plan.source})", sup, bext,
                                  base.plan.source if base is not None else "")
    paths = [pl.plan.path for pl in [*plans.lines.values(), *plans.extras.values()]]
    if plans.parcels is not None:
        paths.append(plans.parcels.plan.path)
    tally, timings, kept, ledgers = vio.Tally(), {}, [], []
    top, n_parcels, hashes = pd.DataFrame(columns=outputs.columns("violations")), 0, []
    with cluster.connect(address) as client:
        cluster.check_access(client, paths)
        shared = cluster.scatter(client, plans)
        frames = []
        ran = [c for c, s in outputs.CHECKS.items() if s.kind == "conflict" and
               rules["checks"].get(c, {}).get("enabled", True)]
        if ran:
            jobs = list(conflict_jobs(boxes, shared))
            for i, res in enumerate(cluster.ordered(client, conflict_task, jobs, "conflicts")):
                frames.append(res["conflicts"])
                tally.rows += res["rows"]
                tally.slivers += res["slivers"]
                record.step(progress, "conflicts between the lines (tiles)", i + 1, len(jobs))
        conflicts = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=out_crs) \
            if frames else empty_layer("conflicts", out_crs)
        timings["conflicts"] = round(time.perf_counter() - t0, 3)
        t1 = time.perf_counter()
        if plans.parcels is not None:
            total = plans.parcels.plan.count
            jobs = construction_jobs(parcels, int(rules["rules"]["chunk_size"]), shared)
            parcels = None  # 40 bytes a parcel: not held through the run
            for res in cluster.ordered(client, construction_task, jobs, "construction parcels"):
                frame, ledger = supervising.carry(res["frame"], res["ledger"], sup)
                tally.rows += res["rows"]
                tally.slivers += res["slivers"]
                for check, n in res["distinct"].items():
                    tally.distinct[check] = tally.distinct.get(check, 0) + n
                sup.new.rows += res["new"]
                hashes.append(res["hashes"])
                n_parcels += res["n"]
                top = deliver(frame, ledger, sink, kept, ledgers, top)
                record.step(progress, "checking construction parcels", n_parcels, total)
            _unique_ids(hashes, plans.parcels)
        timings["construction"] = round(time.perf_counter() - t1, 3)
        peaks = cluster.worker_peaks(client)
    whole: dict = {}

    def line_geoms() -> dict:  # only the urban expansion and land-cover change rows need whole lines
        if not whole:
            whole.update(_whole_lines(line_specs, read))
        return {k: np.asarray(areas.to_crs(g.geometry.values, g.crs, areas.CHINA_ALBERS), dtype=object)
                for k, g in whole.items()}

    summary = summarize(tally, sup, plans.counties, rules, extra, plans.parcels is not None, line_geoms)
    violations = parcels_out = None
    if sink is None:
        violations = gpd.GeoDataFrame(pd.concat(kept, ignore_index=True), geometry="geometry", crs=out_crs) \
            if kept else empty_layer("violations", out_crs)
        parcels_out = gpd.GeoDataFrame(pd.concat(ledgers, ignore_index=True), geometry="geometry", crs=out_crs) \
            if ledgers else None
    info = run_info(rules, n_parcels, timings, out_crs, summary)
    info["cluster"], info["worker_peak_mb"] = cluster.name(address), peaks
    info["client_peak_mb"] = round(cluster.peak_mb(), 1)
    lines = whole or (_whole_lines(line_specs, read) if need_lines else {})
    return year_on_year(CheckResult(conflicts, violations, summary, top, lines, rules, info, parcels_out), sup,
                        out_crs)


def _whole_lines(line_specs: dict, read: ReadOptions) -> dict:
    """The lines read whole on the client, for the outputs that draw them (reports, maps, ``zoning run``)."""

    return {k: load_polygons(line_specs[k], role, read, k) for k, role in LINE_ROLES.items()}


def _unique_ids(hashes: list[np.ndarray], parcels: PlannedLayer) -> None:
    """Parcel ids unique across every task (hashes compared; the ids themselves named when two match)."""
    h = np.sort(np.concatenate(hashes)) if hashes else np.zeros(0, dtype=np.uint64)
    if len(h) > 1 and (h[1:] == h[:-1]).any():
        ids = lvector.read_column(parcels.plan, parcels.id_field).to_frame() if parcels.id_field else None
        if ids is not None:
            ids.attrs["source"] = parcels.plan.source
            validate.feature_ids(ids, "construction", parcels.id_field)  # names the duplicates
        raise DataError(f"construction layer {parcels.plan.source}: duplicate ids. Ids must be unique.")
