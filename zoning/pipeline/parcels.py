"""A group of construction parcels against the control lines: findings and ledger out (the domain of one part of a
check; :mod:`.steps` gives it its features wherever it runs)."""
from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

from .. import areas, epochs, ledger, validate, violations as vio
from . import supervising

OVERLAP_MARGIN_M = 100_000.0  # layers whose extents are further apart than this point to a CRS mix-up
DATE_FIELDS = ("detected_on", "date", "detect_date", "jcrq", "发现日期")


def labels(g: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """A control layer's feature names and codes (empty where the layer has no such field)."""
    def pick(cands):
        f = next((c for c in cands if c in g.columns), None)
        return g[f].fillna("").astype(str).to_numpy(dtype=object) if f else np.full(len(g), "", dtype=object)
    return pick(("name", "NAME", "mc", "MC", "名称")), pick(("code", "CODE", "dm", "DM", "bh", "BH", "编号"))


@dataclass(frozen=True)
class PartContext:
    """What every part of one check shares: how parcels are read, the prepared lines, the counties, the rules, the
    output CRS and the supervision (baseline, earlier run, cropland)."""

    read: object
    lines: vio.Lines
    counties: vio.Counties | None
    rules: dict
    out_crs: object
    sup: supervising.Supervision


def check_parcels(chunk, ctx: PartContext, tally: vio.Tally, pool):
    """The findings, ledger rows, China-Albers geometries and ids of one group of parcels."""
    read, lv, cvio, rules, out_crs, sup = ctx.read, ctx.lines, ctx.counties, ctx.rules, ctx.out_crs, ctx.sup
    chunk = validate.ensure_crs(chunk, "construction", read.assume_crs)
    fld = read.id_for("construction") or "id"
    if fld not in chunk.columns:
        if read.ids.get("construction") or (read.id_field and read.id_field != "id"):
            validate.require_field(chunk, fld, "construction", "--construction-id")
        fld = None
    chunk, _ = validate.clean_polygons(chunk, "construction", fld)
    ids = chunk["_id"].astype(str).to_numpy(dtype=object)
    parcels = areas.to_crs(chunk.geometry.values, chunk.crs, areas.CHINA_ALBERS)
    src = np.asarray(chunk.geometry.values, dtype=object) if chunk.crs == out_crs else None
    dfield = next((f for f in DATE_FIELDS if f in chunk.columns), None)
    dates = chunk[dfield].astype(str).to_numpy(dtype=object) if dfield else np.full(len(chunk), None, dtype=object)
    collect: dict = {}
    parcels = np.asarray(parcels, dtype=object)
    # what each parcel adds to the baseline does not depend on the findings: worked out beside them
    news = None if sup.baseline is None else pool.submit(epochs.parcel_news, parcels, sup.baseline,
                                                          rules["rules"]["area_method"])
    frame = vio.construction_findings(vio.ParcelChunk(parcels, ids, dates, src), lv, cvio, rules, out_crs, tally,
                                      pool.map, collect)
    # the findings' China-Albers geometries, in the rows' order (each check's rows, in the order of the checks)
    alb = np.concatenate([np.asarray(a, dtype=object) for _, a in collect.values()]) if collect else \
        np.zeros(0, dtype=object)
    frame = supervising.supervise(frame, alb, parcels, ids, sup, rules, news)
    rows = ledger_rows(chunk, parcels, ids, collect, cvio, rules, out_crs, src, sup) if sup.ledger else None
    return frame, rows, (alb, parcels), ids


def ledger_rows(chunk, parcels, ids, collect, cvio, rules, out_crs, src,
            sup: supervising.Supervision) -> gpd.GeoDataFrame:
    """The parcel ledger of a chunk, with the parcel's own fields carried through (prefixed where names clash)."""
    method = rules["rules"]["area_method"]
    crop = None if sup.cropland is None else epochs.covered_area(parcels, sup.cropland, method)
    table = ledger.parcel_ledger(parcels, ids, collect, cvio, method, crop)
    own = pd.DataFrame(chunk.drop(columns=[chunk.geometry.name, "_id"])).reset_index(drop=True)
    own.columns = ledger.own_names(list(own.columns), set(table.columns))
    geoms = src if src is not None else vio.valid_polygonal(areas.to_crs(parcels, areas.CHINA_ALBERS, out_crs))
    return gpd.GeoDataFrame(pd.concat([table, own], axis=1), geometry=list(geoms), crs=out_crs)
