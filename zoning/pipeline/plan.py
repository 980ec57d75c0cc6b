"""The plan of a check: every input checked before any work, and the parts the work is cut into.

In this process the layers are read whole and the parcels streamed in chunks of ``chunk_size`` in file order, the
conflicts checked in one part. On a cluster nothing but the counties is read here: the conflicts go in tiles of
about :data:`CONFLICT_FEATURES_PER_TILE` features, the parcels in Hilbert-ordered groups read by feature id, and
each part reads what is near it. Results are the same: each parcel and pair meets the same whole control features,
and ids are functions of content.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Iterable, Iterator

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers import parts as lparts, vector as lvector
from layers.postgis import is_uri

from .. import areas, outputs, tiling, validate, violations as vio
from ..errors import DataError, UsageError
from . import supervising
from .config import CheckJob, ReadOptions
from .inputs import (PlannedLayer, collect, counties_for_check, load_counties, load_polygons, parcels_extent,
                     plan_polygons, raise_problems, source_name)
from .parcels import OVERLAP_MARGIN_M, labels
from .reduce import LINE_ROLES
from .sources import Common, ConflictPart, ParcelPart, PlannedLayers, WholeLayers

log = logging.getLogger("zoning")
CONFLICT_FEATURES_PER_TILE = 20_000


@dataclass
class CheckPlan:
    """A check cut into parts: the ``source`` every part reads from, the conflict tiles, the parcel groups (None
    without a construction layer; ``total`` of them when known), and the client's supervision (the earlier run)."""

    source: WholeLayers | PlannedLayers
    conflicts: list[ConflictPart]
    parcels: Iterable[ParcelPart] | None
    total: int | None
    sup: supervising.Supervision
    construction: object  # as given: to name duplicate ids


def plan_check(job: CheckJob, local: bool, pool=None) -> CheckPlan:
    """Check every input of ``job`` and cut the work in parts: whole layers in this process (``local``, the lines
    prepared on ``pool``), planned layers for a cluster."""
    extra = {k: v for k, v in job.extra.items() if v is not None}
    if extra.get("landcover_previous") and (not extra.get("landcover") or job.counties is None):
        raise UsageError("the land-cover change (landcover_previous) needs the current land cover "
                         "(--raster landcover=PATH) and the counties (--counties or --zones)")
    plan = _whole(job, extra, pool) if local else _planned(job, extra)
    cvio = plan.source.common.counties
    if cvio is not None and job.zone_of:  # the county's zone in the parcel ledger
        cvio.extra["zone"] = pd.Series(cvio.ids).map(job.zone_of).to_numpy()
    plan.sup.ledger = plan.source.common.ledger
    ran = [c for c, s in outputs.CHECKS.items() if s.kind == "conflict" and
           job.rules["checks"].get(c, {}).get("enabled", True)]
    if not ran:
        plan.conflicts = []
    return plan


def _common(job: CheckJob, cty, crs_wkt: str, extra: dict) -> Common:
    return Common(counties_for_check(cty), job.read, job.rules, crs_wkt, time.strftime("%Y-%m-%d"),
                  bool(extra.get("ledger", True)))


def _refuse_overlaps(ext: dict, names: dict, parcels_box, parcels_name: str) -> None:
    """Layers whose extents lie far apart point to a CRS mix-up (China-Albers boxes)."""
    keys = list(LINE_ROLES)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            validate.check_overlap(ext[a], ext[b], f"{a} ({names[a]})", f"{b} ({names[b]})", margin=OVERLAP_MARGIN_M)
    if parcels_box is not None:
        lines = np.array([ext[k] for k in keys], dtype=float)
        whole = (lines[:, 0].min(), lines[:, 1].min(), lines[:, 2].max(), lines[:, 3].max())
        validate.check_overlap(tuple(parcels_box), whole, f"construction ({parcels_name})", "the control lines",
                               margin=OVERLAP_MARGIN_M)


def _whole(job: CheckJob, extra: dict, pool) -> CheckPlan:
    """This process: every layer read and checked once, and held."""
    read, problems, lines, others = job.read, [], {}, {}
    for key, role in {**LINE_ROLES, **supervising.EXTRA_ROLES}.items():
        if key in supervising.EXTRA_ROLES and key not in extra:
            continue
        try:
            (lines if key in LINE_ROLES else others)[key] = load_polygons(
                job.lines[key] if key in LINE_ROLES else extra[key], role, read, key)
        except DataError as exc:  # report every bad input at once
            problems.append(str(exc))
    cty = None if job.counties is None else collect(problems, load_counties, job.counties, read, job.county_role)
    raise_problems(problems)
    out_crs = lines["red_line"].crs
    sup = supervising.load(others, extra.get("previous"), out_crs, job.rules)
    construction = job.construction
    pext = None if construction is None else parcels_extent(construction, read)
    if construction is not None:
        supervising.check_extents(pext, f"construction ({source_name(construction)})", sup,
                                  supervising.extent(sup.baseline.pieces) if sup.baseline is not None else None,
                                  source_name(extra.get("baseline")))
    alb = {k: areas.to_crs(g.geometry.values, g.crs, areas.CHINA_ALBERS) for k, g in lines.items()}
    for k, g in lines.items():
        if g.crs != out_crs:
            log.info("%s is in %s, the red line in %s: reprojecting", k, g.crs.to_string(), out_crs.to_string())
    _refuse_overlaps({k: tuple(shapely.total_bounds(a)) for k, a in alb.items()},
                     {k: g.attrs.get("source") for k, g in lines.items()}, pext, source_name(construction))
    lv = vio.Lines({k: np.asarray(alb[k], dtype=object) for k in LINE_ROLES},
                   {k: g["_id"].astype(str).to_numpy(dtype=object) for k, g in lines.items()},
                   labels={k: labels(g) for k, g in lines.items()})
    source = WholeLayers(_common(job, cty, out_crs.to_wkt(), extra), lines, lv, sup, pool)
    parts, total = None, None
    if construction is not None:  # the tiles for the parcels, cut beside the conflicts
        source.prepared = pool.submit(lv.prepare, job.rules["rules"]["subdivide_m"])
        parts = (ParcelPart(frame=c) for c in _chunks(construction, int(job.rules["rules"]["chunk_size"]), read))
        total = len(construction) if isinstance(construction, gpd.GeoDataFrame) else _count(construction)
    return CheckPlan(source, [ConflictPart()], parts, total, sup, construction)


def _count(construction) -> int | None:
    try:
        return lvector.count_features(construction)
    except Exception:  # noqa: BLE001 - some drivers cannot count quickly; progress then shows counts only
        return None


def _chunks(construction, chunk_size: int, read: ReadOptions) -> Iterator[gpd.GeoDataFrame]:
    """The parcels in file order, ``chunk_size`` at a time (memory follows the chunk size); none when empty."""
    if isinstance(construction, gpd.GeoDataFrame):
        chunks = (construction.iloc[s:s + chunk_size].copy() for s in range(0, max(len(construction), 1), chunk_size))
    else:
        chunks = lvector.iter_vector(construction, chunk_size, read.encoding, "construction")
    for chunk in chunks:
        if len(chunk) == 0:
            return
        if isinstance(construction, gpd.GeoDataFrame):
            chunk.attrs["source"] = construction.attrs.get("source", "construction (GeoDataFrame)")
        yield chunk


def _refuse_frames(**specs) -> None:
    for name, spec in specs.items():
        if isinstance(spec, (gpd.GeoDataFrame, pd.DataFrame)):
            raise UsageError(f"{name}: on a cluster inputs are files the workers read (a path every worker can "
                             "reach), not GeoDataFrames in this process")


def _planned(job: CheckJob, extra: dict) -> CheckPlan:
    """A cluster: every input checked here without reading its geometry (but the counties'), then planned."""
    read = job.read
    _refuse_frames(**job.lines, construction=job.construction,
                   **{k: v for k, v in extra.items() if k in supervising.EXTRA_ROLES})
    problems, lines, boxes, extras = [], {}, {}, {}
    for key, role in {**LINE_ROLES, **supervising.EXTRA_ROLES}.items():
        spec = job.lines.get(key) if key in LINE_ROLES else extra.get(key)
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
    cty = None if job.counties is None else collect(problems, load_counties, job.counties, read, job.county_role)
    parcels = pbox = pfids = None
    if job.construction is not None:
        try:
            parcels, pfids, pbox = plan_polygons(job.construction, "construction", read, "construction",
                                                 check_ids=False)
            parcels = _construction_id(parcels, read)
        except DataError as exc:
            problems.append(str(exc))
    raise_problems(problems)
    pext = None
    if parcels is not None and pbox.shape[1]:  # the extent only: 10⁷ parcels' own boxes would take gigabytes
        pext = tiling.to_crs_box(tiling.union_box(pbox), parcels.crs_wkt, areas.CHINA_ALBERS)
    _refuse_overlaps({k: tiling.union_box(b) for k, (_, b) in boxes.items()},
                     {k: pl.plan.source for k, pl in lines.items()}, pext, parcels.plan.source if parcels else "")
    common = _common(job, cty, lines["red_line"].crs_wkt, extra)
    sup = supervising.load({}, extra.get("previous"), common.crs, job.rules)
    if pext is not None:
        base = extras.get("baseline")
        bext = None if base is None else tiling.to_crs_box(base.plan.bounds, base.crs_wkt, areas.CHINA_ALBERS)
        supervising.check_extents(pext, f"construction ({parcels.plan.source})", sup, bext,
                                  base.plan.source if base is not None else "")
    source = PlannedLayers(common, lines, extras, parcels, dict(job.lines))
    groups = None if parcels is None else \
        [ParcelPart(fids=pfids[g], box=tiling.union_box(pbox, g))
         for g in tiling.hilbert_groups(pbox, int(job.rules["rules"]["chunk_size"]))]
    return CheckPlan(source, list(_tiles(boxes)), groups, None if parcels is None else parcels.plan.count, sup,
                     parcels)


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


def _tiles(boxes: dict[str, tuple[np.ndarray, np.ndarray]]) -> Iterator[ConflictPart]:
    """Tiles of the conflict checks, each with the fids of the features whose China-Albers extent meets it."""
    n = sum(b.shape[1] for _, b in boxes.values())
    extent = tiling.union_box(np.concatenate([b for _, b in boxes.values()], axis=1))
    for tile in tiling.tile_grid(extent, -(-n // CONFLICT_FEATURES_PER_TILE)):
        fids = {k: f[tiling.in_tile(b, tile)] for k, (f, b) in boxes.items()}
        if sum(len(f) for f in fids.values()) >= 2:
            yield ConflictPart(fids, tile)


def refuse_duplicate_ids(hashes: list[np.ndarray], plan: CheckPlan, read: ReadOptions) -> None:
    """Parcel ids unique across every part (their hashes compared; the ids themselves named when two match)."""
    h = np.sort(np.concatenate(hashes)) if hashes else np.zeros(0, dtype=np.uint64)
    if len(h) < 2 or not (h[1:] == h[:-1]).any():
        return
    given = plan.construction
    if is_uri(given):  # a table read in one process: read again, on this error path only
        given = lvector.read_vector(given, read.encoding, "construction")
    if isinstance(given, PlannedLayer):
        layer, fld = given.plan, given.id_field
    elif isinstance(given, gpd.GeoDataFrame):
        layer, fld = None, read.id_for("construction") or "id"
    else:
        layer = lparts.plan_layer(given, read.encoding, "construction", bounds=False)[0]
        fld = read.id_for("construction") or "id"
    columns = given.columns if layer is None else layer.columns
    if fld in columns:
        ids = given[[fld]] if layer is None else lparts.read_column(layer, fld).to_frame()
        ids.attrs["source"] = source_name(given) if layer is None else layer.source
        validate.feature_ids(ids, "construction", fld)  # names the duplicates
    raise DataError(f"construction layer {source_name(given) if layer is None else layer.source}: duplicate ids. "
                    "Ids must be unique.")
