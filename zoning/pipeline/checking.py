"""Control-line check wiring: layers in, :class:`CheckResult` out (:func:`check`), files out (:func:`run_check`)."""
from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import replace
import time
from pathlib import Path
from typing import Callable

import geopandas as gpd
import pandas as pd

from layers import gpkg, previous as lprevious, report as lreport, styles
from layers.files import Output, check_target, open_output, target
from layers.pgwrite import fetch
from layers.postgis import is_uri

from .. import continuity, outputs, violations as vio
from ..errors import UsageError
from . import record, steps, supervising
from .config import CheckJob, ReadOptions, load_rules
from .executors import executor
from .inputs import input_paths, source_name
from .plan import plan_check, refuse_duplicate_ids
from .reduce import CheckResult, deliver, empty_layer, run_info, summarize, year_on_year

log = logging.getLogger("zoning")


CHECK_OPTIONS = ("construction", "counties", "rules", "id_field", "ids", "assume_crs", "encoding", "cropland",
                 "baseline", "previous", "landcover", "landcover_previous", "legend", "cluster")


def check(red_line, farmland, urban_boundary, *, progress: Callable | None = None, sink: Callable | None = None,
          **options) -> CheckResult:
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
    unknown = sorted(set(options) - set(CHECK_OPTIONS))
    if unknown:
        raise UsageError(f"unknown check option(s) {', '.join(unknown)}; known: {', '.join(CHECK_OPTIONS)}")
    o = dict.fromkeys(CHECK_OPTIONS) | options
    read = ReadOptions(o["id_field"], dict(o["ids"] or {}), o["assume_crs"], o["encoding"])
    rules = o["rules"] if isinstance(o["rules"], dict) else load_rules(o["rules"])
    job = CheckJob({"red_line": red_line, "farmland": farmland, "urban_boundary": urban_boundary},
                   o["construction"], o["counties"], read=read, rules=rules, cluster=o["cluster"], need_lines=True,
                   extra={k: o[k] for k in ("cropland", "baseline", "previous", "landcover", "landcover_previous",
                                            "legend")})
    return check_job(job, progress, sink)


def check_job(job: CheckJob, progress=None, sink=None) -> CheckResult:
    """The check of ``job`` in this process, or on its cluster; ``sink(rows, ledger)`` takes the findings part by
    part (the writer) instead of keeping them.

    One engine for both: the plan (:mod:`.plan`), the step of each part (:mod:`.steps`) run by the executor
    (:mod:`.executors`), and the reduce here, part after part in order.
    """
    t0 = time.perf_counter()
    rules, timings = job.rules, {}
    with executor(job.cluster) as ex:
        plan = plan_check(job, ex.local, ex.pool)
        src, sup = plan.source, plan.sup
        if not ex.local:
            ex.check_access(src.paths())
        shared = ex.share(src)
        tally, frames = vio.Tally(), []
        for i, res in enumerate(ex.map(steps.conflicts_of, ((shared, p) for p in plan.conflicts), "conflicts")):
            frames.append(res["conflicts"])
            tally.rows += res["rows"]
            tally.slivers += res["slivers"]
            if len(plan.conflicts) > 1:
                record.step(progress, "conflicts between the lines (tiles)", i + 1, len(plan.conflicts))
        out_crs = src.common.crs
        conflicts = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=out_crs) \
            if frames else empty_layer("conflicts", out_crs)
        timings["conflicts"] = round(time.perf_counter() - t0, 3)
        t1 = time.perf_counter()
        kept, ledgers, top, n_parcels, hashes = [], [], pd.DataFrame(columns=outputs.columns("violations")), 0, []
        if plan.parcels is not None:
            for res in ex.map(steps.parcels_of, ((shared, p) for p in plan.parcels), "construction parcels"):
                frame, ledger_rows = supervising.carry(res["frame"], res["ledger"], sup, res["albers"])
                tally.rows += res["rows"]
                tally.slivers += res["slivers"]
                for check, n in res["distinct"].items():
                    tally.distinct[check] = tally.distinct.get(check, 0) + n
                sup.new.rows += res["new"]
                hashes.append(res["hashes"])
                n_parcels += res["n"]
                top = deliver(frame, ledger_rows, sink, kept, ledgers, top)
                record.step(progress, "checking construction parcels", n_parcels, plan.total)
            refuse_duplicate_ids(hashes, plan, job.read)
            if n_parcels == 0:
                log.warning("construction layer %s is empty: zero violations", source_name(job.construction))
        timings["construction"] = round(time.perf_counter() - t1, 3)
        ran_on = ex.info()
    summary = summarize(tally, sup, src.common.counties, rules, {k: v for k, v in job.extra.items() if v is not None},
                        plan.parcels is not None, src.line_geoms)
    violations = parcels = None
    if sink is None:
        violations = gpd.GeoDataFrame(pd.concat(kept, ignore_index=True), geometry="geometry", crs=out_crs) if kept \
            else empty_layer("violations", out_crs)
        parcels = gpd.GeoDataFrame(pd.concat(ledgers, ignore_index=True), geometry="geometry", crs=out_crs) \
            if ledgers else None
    info = {**run_info(rules, n_parcels, timings, out_crs, summary), **ran_on}
    return year_on_year(CheckResult(conflicts, violations, summary, top, src.whole_lines(job.need_lines), rules,
                                    info, parcels), sup, out_crs)


def write_check(path: Path, job: CheckJob, *, extra_layers=None, include_lines=False, extra_meta=None,
                progress=None, target=None):
    """Run the check of ``job`` and write the GeoPackage at ``path`` (a temporary path inside an :class:`Output`).

    Returns (result, metadata, QML styles by layer).
    """
    w = gpkg.GpkgWriter(path, target)
    try:
        res = check_job(replace(job, need_lines=job.need_lines or include_lines), progress,
                        lambda f, lg: (w.append("violations", f), lg is not None and w.append("parcels", lg)))
    except BaseException:
        w.discard()
        raise
    if "violations" not in w.layers:
        w.write("violations", empty_layer("violations", res.conflicts.crs))
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


def run_check(job: CheckJob, output, rules_path=None, report_dir=None, overwrite: bool = False,
              progress=None) -> dict:
    """``zoning check``: run the checks, write ``conflicts``, ``violations``, ``parcels``, ``county_summary``
    (``rectified`` with a previous run) and the reports. ``job.counties`` may be a zones layer
    (``job.county_role = "zones"``)."""
    line_specs, construction, counties, cluster = job.lines, job.construction, job.counties, job.cluster
    out = target(output)
    extra = {k: v for k, v in job.extra.items() if v is not None}
    inputs = input_paths(*line_specs.values(), construction, counties,
                         *(v for k, v in extra.items() if k in ("cropland", "baseline", "previous")))
    inputs += [Path(extra[k]) for k in ("landcover", "landcover_previous") if extra.get(k)]
    held = contextlib.ExitStack()
    if extra.get("previous") is not None:  # a wrong --previous fails before any work
        previous = extra["previous"]
        if is_uri(previous):  # a schema an earlier run published: back into a GeoPackage for this run
            folder = Path(held.enter_context(tempfile.TemporaryDirectory(prefix="zoning-previous-")))
            previous = fetch(previous, folder / "previous.gpkg")
        extra["previous"] = lprevious.read_previous(previous, continuity.PREVIOUS_FIELDS)
    if report_dir and isinstance(out, Path) and Path(report_dir).resolve() == out.resolve():
        raise UsageError(f"-o and --report both name {out}: the GeoPackage and the report folder need paths of "
                         f"their own (e.g. --report {out.with_suffix('')}-report). Nothing was written.")
    check_target(out, overwrite, inputs, suffix=".gpkg")
    if report_dir:
        check_target(Path(report_dir), overwrite, inputs, "report directory")
    rules = load_rules(rules_path)  # a bad rules file fails before any work
    if cluster:
        from .cluster import parse_address

        parse_address(cluster)  # a malformed address fails before any work
    # what the results were made from — every input's file, date and hash — for the reports and maps filed later
    prov = record.provenance({**line_specs, "construction": construction, job.county_role: counties,
                              **{k: extra.get(k) for k in ("cropland", "baseline", "landcover", "landcover_previous")}},
                             rules=f"{rules['rules']['id']}@{rules['rules']['version']}")
    with held, open_output(out, overwrite, inputs=inputs) as tmp:
        job = replace(job, rules=rules, extra=extra, need_lines=bool(report_dir))
        res, meta, _ = write_check(tmp, job, progress=progress, target=out, extra_meta={"provenance": prov})
        reports = []
        if report_dir:
            with Output(Path(report_dir), overwrite, directory=True, inputs=inputs, what="report directory") as rtmp:
                write_report(rtmp, tmp, res, meta)
            reports = [Path(report_dir) / f for f in lreport.REPORT_FILES]
    return {"result": res, "output": out, "reports": reports, "meta": meta}
