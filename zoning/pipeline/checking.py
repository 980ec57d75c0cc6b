"""Control-line check wiring: layers in, :class:`CheckResult` out (:func:`check`), files out (:func:`run_check`)."""
from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers import gpkg, previous as lprevious, report as lreport, styles, vector as lvector
from layers.files import Output, check_target

from .. import areas, continuity, epochs, ledger, outputs, report as rep, validate, violations as vio
from ..errors import DataError, UsageError
from . import record, supervising
from .config import ReadOptions, load_rules
from .inputs import (collect, counties_for_check, input_paths, load_counties, load_polygons, parcels_extent,
                     raise_problems, source_name)

log = logging.getLogger("zoning")
LINE_ROLES = {"red_line": "red line 生态保护红线", "farmland": "permanent farmland 永久基本农田",
              "urban_boundary": "urban boundary 城镇开发边界"}
WORKERS = max(1, min(3, os.cpu_count() or 1))
TOP_N = 50  # most serious violations kept for the HTML report
OVERLAP_MARGIN_M = 100_000.0  # layers whose extents are further apart than this point to a CRS mix-up
DATE_FIELDS = ("detected_on", "date", "detect_date", "jcrq", "发现日期")


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


def _parcel_chunks(construction, chunk_size: int, read: ReadOptions):
    if isinstance(construction, gpd.GeoDataFrame):
        for start in range(0, max(len(construction), 1), chunk_size):
            part = construction.iloc[start:start + chunk_size].copy()
            part.attrs["source"] = construction.attrs.get("source", "construction (GeoDataFrame)")
            yield part
        return
    yield from lvector.iter_vector(construction, chunk_size, read.encoding, "construction")


def check(red_line, farmland, urban_boundary, *, construction=None, counties=None, rules=None,
          id_field: str | None = None, ids: dict | None = None, assume_crs: str | None = None,
          encoding: str | None = None, progress: Callable | None = None, sink: Callable | None = None,
          cropland=None, baseline=None, previous=None, landcover=None, landcover_previous=None,
          legend=None, cluster: str | None = None) -> CheckResult:
    """Check the three control lines for conflicts and construction encroachment.

    Parameters
    ----------
    red_line, farmland, urban_boundary : GeoDataFrame or vector path (``PATH`` or ``PATH:LAYER``)
    construction : construction parcels (GeoDataFrame or path; read in chunks of ``rules.chunk_size``)
    counties : county polygons (GeoDataFrame or path) to place findings and list every county in the summary
    rules : rules dict (:func:`zoning.load_rules`), a rules TOML path, or None for the defaults
    id_field, ids : id field of every layer, and per layer (``{"construction": "BSM", "county": "county_id"}``)
    progress : ``progress(stage, done, total)``; return False to cancel
    sink : ``sink(rows, ledger)`` receives violation rows and the parcel ledger chunk by chunk instead of keeping
        them (flat memory)
    cropland : cultivated land (耕地): the parcel ledger gains ``cropland_m2``/``_ha``/``_mu``
    landcover, landcover_previous : two land-cover rasters (with ``counties``): ``county_summary`` gains the built-up
        gain inside the red line and on farmland (``legend``: their legend, default IGBP)
    baseline : the construction parcels of the earlier survey: violations gain ``change`` and ``new_area_m2``
    previous : an earlier check's GeoPackage: findings keep their ids, gone ones are ``rectified``, the auditor's
        follow-up fields are carried to the same parcels
    cluster : ``local:N`` or ``tcp://HOST:PORT``: run on a Dask cluster (inputs must be files every worker reads);
        same results as one process
    """
    read = ReadOptions(id_field, dict(ids or {}), assume_crs, encoding)
    if not isinstance(rules, dict):
        rules = load_rules(rules)
    return _check({"red_line": red_line, "farmland": farmland, "urban_boundary": urban_boundary}, construction,
                  counties, read, rules, progress, sink,
                  extra={"cropland": cropland, "baseline": baseline, "previous": previous, "landcover": landcover,
                         "landcover_previous": landcover_previous, "legend": legend}, cluster=cluster,
                  need_lines=True)


def _check(line_specs: dict, construction, counties, read: ReadOptions, rules: dict, progress, sink,
           county_role: str = "counties", zones: dict | None = None, extra: dict | None = None,
           cluster: str | None = None, need_lines: bool = False) -> CheckResult:
    if cluster:
        from .partitions import check_on_cluster

        return check_on_cluster(cluster, line_specs, construction, counties, read, rules, progress, sink,
                                county_role, zones, extra, need_lines)
    t0 = time.perf_counter()
    timings, problems, lines, others = {}, [], {}, {}
    extra = {k: v for k, v in (extra or {}).items() if v is not None}
    if extra.get("landcover_previous") and (not extra.get("landcover") or counties is None):
        raise UsageError("the land-cover change (landcover_previous) needs the current land cover "
                         "(--raster landcover=PATH) and the counties (--counties or --zones)")
    for key, role in {**LINE_ROLES, **supervising.EXTRA_ROLES}.items():
        if key in supervising.EXTRA_ROLES and key not in extra:
            continue
        try:
            (lines if key in LINE_ROLES else others)[key] = load_polygons(
                line_specs[key] if key in LINE_ROLES else extra[key], role, read, key)
        except DataError as exc:  # report every bad input at once
            problems.append(str(exc))
    cty = None if counties is None else collect(problems, load_counties, counties, read, county_role)
    raise_problems(problems)
    out_crs = lines["red_line"].crs
    sup = supervising.load(others, extra.get("previous"), out_crs, rules)
    sup.ledger = bool(extra.get("ledger", True))
    if construction is not None:
        supervising.check_extents(parcels_extent(construction, read), f"construction ({source_name(construction)})", sup,
                                  supervising.extent(sup.baseline.pieces) if sup.baseline is not None else None,
                                  source_name(extra.get("baseline")))
    alb = {k: areas.to_crs(g.geometry.values, g.crs, areas.CHINA_ALBERS) for k, g in lines.items()}
    for k, g in lines.items():
        if g.crs != out_crs:
            log.info("%s is in %s, the red line in %s: reprojecting", k, g.crs.to_string(), out_crs.to_string())
    names = list(LINE_ROLES)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            validate.check_overlap(tuple(shapely.total_bounds(alb[a])), tuple(shapely.total_bounds(alb[b])),
                                   f"{a} ({lines[a].attrs.get('source')})", f"{b} ({lines[b].attrs.get('source')})",
                                   margin=OVERLAP_MARGIN_M)
    cvio = counties_for_check(cty)
    if cvio is not None and zones:  # the county's zone in the parcel ledger
        cvio.extra["zone"] = pd.Series(cvio.ids).map(zones).to_numpy()
    lv = vio.Lines({k: np.asarray(alb[k], dtype=object) for k in names},
                   {k: g["_id"].astype(str).to_numpy(dtype=object) for k, g in lines.items()},
                   labels={k: _labels(g) for k, g in lines.items()})
    tally = vio.Tally()
    with ThreadPoolExecutor(max_workers=1) as prep:  # the tiles for the parcels, cut beside the conflicts
        prepared = prep.submit(lv.prepare, rules["rules"]["subdivide_m"]) if construction is not None else None
        conflicts = vio.line_conflicts(lv, cvio, rules, out_crs, tally)
        timings["conflicts"] = round(time.perf_counter() - t0, 3)
        t1 = time.perf_counter()
        if prepared is not None:
            prepared.result()
    kept, ledgers, top, n_parcels, seen = [], [], pd.DataFrame(columns=outputs.columns("violations")), 0, set()
    total = None
    if construction is not None:
        if not isinstance(construction, gpd.GeoDataFrame):
            try:
                total = lvector.count_features(construction)
            except Exception:  # some drivers cannot count quickly; progress then shows counts only
                total = None
        else:
            total = len(construction)
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            for chunk in _parcel_chunks(construction, rules["rules"]["chunk_size"], read):
                if len(chunk) == 0:
                    break
                frame, ledger_rows, geoms = _chunk(chunk, n_parcels == 0, read, seen, lv, alb, cvio, rules, out_crs,
                                                   tally, pool, sup)
                frame, ledger_rows = supervising.carry(frame, ledger_rows, sup, geoms)
                n_parcels += len(chunk)
                top = deliver(frame, ledger_rows, sink, kept, ledgers, top)
                record.step(progress, "checking construction parcels", n_parcels, total)
        if n_parcels == 0:
            log.warning("construction layer %s is empty: zero violations", construction)
    timings["construction"] = round(time.perf_counter() - t1, 3)

    summary = summarize(tally, sup, cvio, rules, extra, construction is not None, lambda: lv.geoms)
    violations = None
    if sink is None:
        violations = gpd.GeoDataFrame(pd.concat(kept, ignore_index=True), geometry="geometry", crs=out_crs) if kept \
            else _empty("violations", out_crs)
        parcels = gpd.GeoDataFrame(pd.concat(ledgers, ignore_index=True), geometry="geometry", crs=out_crs) \
            if ledgers else None
    info = run_info(rules, n_parcels, timings, out_crs, summary)
    return year_on_year(CheckResult(conflicts, violations, summary, top, lines, rules, info,
                                    parcels if sink is None else None), sup, out_crs)


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
        exp = vio.expansion_rows(cvio, line_geoms()["urban_boundary"], rules["checks"]["urban_expansion"])
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


def _labels(g: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """A control layer's feature names and codes (empty where the layer has no such field)."""
    def pick(cands):
        f = next((c for c in cands if c in g.columns), None)
        return g[f].fillna("").astype(str).to_numpy(dtype=object) if f else np.full(len(g), "", dtype=object)
    return pick(("name", "NAME", "mc", "MC", "名称")), pick(("code", "CODE", "dm", "DM", "bh", "BH", "编号"))


def _empty(layer: str, crs) -> gpd.GeoDataFrame:
    cols = [c for c in outputs.columns(layer) if c not in outputs.EPOCH_FIELDS or c == "first_detected_on"]
    return gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in cols}, geometry=[], crs=crs)


def _chunk(chunk, first: bool, read, seen: set, lv, alb, cvio, rules, out_crs, tally, pool,
           sup: supervising.Supervision):
    chunk = validate.ensure_crs(chunk, "construction", read.assume_crs)
    fld = read.id_for("construction") or "id"
    if fld not in chunk.columns:
        if read.ids.get("construction") or (read.id_field and read.id_field != "id"):
            validate.require_field(chunk, fld, "construction", "--construction-id")
        fld = None
    chunk, _ = validate.clean_polygons(chunk, "construction", fld)
    ids = chunk["_id"].astype(str).to_numpy(dtype=object)
    dup = seen.intersection(ids)
    if dup:
        raise DataError(f"construction layer {chunk.attrs.get('source')}: duplicate ids "
                        f"{', '.join(sorted(map(str, dup))[:10])}. Ids must be unique.")
    seen.update(ids)
    if first:
        validate.check_overlap(tuple(chunk.to_crs(areas.CHINA_ALBERS).total_bounds),
                               tuple(shapely.total_bounds(np.concatenate(list(alb.values())))),
                               f"construction ({chunk.attrs.get('source')})", "the control lines",
                               margin=OVERLAP_MARGIN_M)
    parcels = areas.to_crs(chunk.geometry.values, chunk.crs, areas.CHINA_ALBERS)
    src = np.asarray(chunk.geometry.values, dtype=object) if chunk.crs == out_crs else None
    dfield = next((f for f in DATE_FIELDS if f in chunk.columns), None)
    dates = chunk[dfield].astype(str).to_numpy(dtype=object) if dfield else np.full(len(chunk), None, dtype=object)
    collect: dict = {}
    parcels = np.asarray(parcels, dtype=object)
    # what each parcel adds to the baseline does not depend on the findings: worked out beside them
    news = None if sup.baseline is None else pool.submit(epochs.parcel_news, parcels, sup.baseline,
                                                          rules["rules"]["area_method"])
    frame = vio.construction_findings(parcels, ids, dates, lv, cvio, rules, out_crs, tally, src, pool.map, collect)
    # the findings' China-Albers geometries, in the rows' order (each check's rows, in the order of the checks)
    alb = np.concatenate([np.asarray(a, dtype=object) for _, a in collect.values()]) if collect else \
        np.zeros(0, dtype=object)
    frame = supervising.supervise(frame, alb, parcels, ids, sup, rules, news)
    ledger_rows = _ledger(chunk, parcels, ids, collect, cvio, rules, out_crs, src, sup) if sup.ledger else None
    return frame, ledger_rows, (alb, parcels)


def _ledger(chunk, parcels, ids, collect, cvio, rules, out_crs, src,
            sup: supervising.Supervision) -> gpd.GeoDataFrame:
    """The parcel ledger of a chunk, with the parcel's own fields carried through (prefixed where names clash)."""
    method = rules["rules"]["area_method"]
    crop = None if sup.cropland is None else epochs.covered_area(parcels, sup.cropland, method)
    table = ledger.parcel_ledger(parcels, ids, collect, cvio, method, crop)
    own = pd.DataFrame(chunk.drop(columns=[chunk.geometry.name, "_id"])).reset_index(drop=True)
    own.columns = ledger.own_names(list(own.columns), set(table.columns))
    geoms = src if src is not None else vio.valid_polygonal(areas.to_crs(parcels, areas.CHINA_ALBERS, out_crs))
    return gpd.GeoDataFrame(pd.concat([table, own], axis=1), geometry=list(geoms), crs=out_crs)


def write_check(path: Path, line_specs, construction, counties, read, rules, *, county_role="counties",
                extra_layers=None, include_lines=False, extra_meta=None, progress=None, target=None, zones=None,
                extra=None, cluster=None, need_lines=False):
    """Run the checks and write the GeoPackage at ``path`` (a temporary path inside an :class:`Output`).

    Returns (result, metadata, QML styles by layer).
    """
    w = gpkg.GpkgWriter(path, target)
    try:
        res = _check(line_specs, construction, counties, read, rules, progress,
                     sink=lambda f, lg: (w.append("violations", f), lg is not None and w.append("parcels", lg)),
                     county_role=county_role, zones=zones, extra=extra, cluster=cluster,
                     need_lines=need_lines or include_lines)
    except BaseException:
        w.discard()
        raise
    if "violations" not in w.layers:
        w.write("violations", _empty("violations", res.conflicts.crs))
    if res.rectified is not None:
        w.write("rectified", res.rectified)
    w.write("conflicts", res.conflicts)
    w.write("county_summary", res.county_summary)
    for name, df in (extra_layers or {}).items():
        w.write(name, df)
    if include_lines:
        for name, df in res.lines.items():
            w.write(name, df.drop(columns="_id"))
    meta = {**record.metadata(), **res.info, **(extra_meta or {})}
    qml = styles.qml_for_layers(w.layers)
    w.finish(meta, qml)
    if res.id_changes:  # the rows went out chunk by chunk: the few ids settled at the end are renamed in place
        gpkg.rename_ids(path, res.id_changes)
    return res, meta, qml


def write_report(directory: Path, gpkg_path: Path, res: CheckResult, meta: dict) -> list[Path]:
    """Reports streamed from the written GeoPackage (flat memory)."""
    return lreport.write_reports(directory, gpkg_path, pd.DataFrame(res.conflicts.drop(columns="geometry")),
                                 res.county_summary, meta, res.lines)


def run_check(line_specs: dict, output, construction=None, counties=None, zones=None, read: ReadOptions | None = None,
              rules_path=None, report_dir=None, overwrite: bool = False, progress=None, extra=None,
              cluster: str | None = None) -> dict:
    """``zoning check``: run the checks, write ``conflicts``, ``violations``, ``parcels``, ``county_summary``
    (``rectified`` with a previous run) and the reports. ``extra``: cropland, baseline, previous."""
    read = read or ReadOptions()
    out = Path(output)
    extra = {k: v for k, v in (extra or {}).items() if v is not None}
    inputs = input_paths(*line_specs.values(), construction, counties, zones,
                         *(v for k, v in extra.items() if k in ("cropland", "baseline", "previous")))
    inputs += [Path(extra[k]) for k in ("landcover", "landcover_previous") if extra.get(k)]
    if extra.get("previous") is not None:  # a wrong --previous fails before any work
        extra["previous"] = lprevious.read_previous(extra["previous"], continuity.PREVIOUS_FIELDS)
    if report_dir and Path(report_dir).resolve() == out.resolve():
        raise UsageError(f"-o and --report both name {out}: the GeoPackage and the report folder need paths of "
                         f"their own (e.g. --report {out.with_suffix('')}-report). Nothing was written.")
    check_target(out, overwrite, inputs, suffix=".gpkg")
    if report_dir:
        check_target(Path(report_dir), overwrite, inputs, "report directory")
    rules = load_rules(rules_path)  # a bad rules file fails before any work
    if cluster:
        from .cluster import parse_address

        parse_address(cluster)  # a malformed address fails before any work
    with Output(out, overwrite, inputs=inputs) as tmp:
        res, meta, _ = write_check(tmp, line_specs, construction, zones if counties is None else counties, read,
                                rules, county_role="zones" if counties is None else "counties", progress=progress,
                                target=out, extra=extra, cluster=cluster, need_lines=bool(report_dir))
        reports = []
        if report_dir:
            with Output(Path(report_dir), overwrite, directory=True, inputs=inputs, what="report directory") as rtmp:
                write_report(rtmp, tmp, res, meta)
            reports = [Path(report_dir) / f for f in lreport.REPORT_FILES]
    return {"result": res, "output": out, "reports": reports, "meta": meta}
