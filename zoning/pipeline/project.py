"""``zoning run`` (the whole job from a project file) and ``zoning map``."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from layers import gpkg, previous as lprevious, vector as lvector
from layers.files import Output, check_target
from layers.postgis import is_uri, mask, parse

from .. import continuity, policy_tables as policy, rasters as raster_kinds, report as rep
from ..errors import DataError, UsageError
from . import record
from .checking import write_check, write_report
from .classifying import classify_counties
from .config import CheckJob, ClassifyOptions, load_project, sample_project

log = logging.getLogger("zoning")
RUN_ENTRIES = ["zoning.gpkg", "zoning.qgz", "map.html", "report", "styles", "run.json", "zoning.log"]


def run_project(project: Path | None, outdir: Path, overwrite: bool = False, progress=None,
                cluster: str | None = None) -> dict:
    """``zoning run``: validate, classify, check, write gpkg, map, reports, run.json and zoning.log into OUTDIR.

    Everything is validated first, built in a temporary directory beside OUTDIR and moved into place at the end;
    an existing OUTDIR is replaced only with ``overwrite`` and only when it is an earlier zoning output.
    ``cluster`` (else the project's ``cluster`` option): classify and check on that Dask cluster.
    """

    from layers import webmap  # folium is slow to import: only when a map is drawn

    project = Path(project) if project else sample_project()
    outdir = Path(outdir)
    proj = load_project(project)  # every option, the model and the rules checked before any work
    inp, opt = proj.inputs, proj.options
    address = cluster or opt.get("cluster")
    if address:
        from .cluster import parse_address

        parse_address(address)  # a malformed address fails before any work
    inputs = [lvector.parse_source(v).path for v in inp.values()] + [project]
    check_target(outdir, overwrite, inputs)
    supervision = {k: inp[k] for k in ("cropland", "baseline", "previous", "landcover_previous") if inp.get(k)}
    if "landcover_previous" in supervision:  # the built-up gain in the lines between the two land covers
        supervision.update(landcover=inp["landcover"], legend=opt.get("legend"))
    if "previous" in supervision:  # a wrong earlier run fails before any work
        supervision["previous"] = lprevious.read_previous(supervision["previous"], continuity.PREVIOUS_FIELDS)
    timings = {}
    with Output(outdir, overwrite, directory=True, inputs=inputs) as tmp, record.log_file(tmp / "zoning.log"), \
            _cluster(address) as client:
        log.info("project %s (%s)", proj.name, project)
        prov = record.provenance({**inp, "project": project}, proj.name, proj.model.identity,
                                 f"{proj.rules['rules']['id']}@{proj.rules['rules']['version']}")
        hashes = {f["path"]: f for f in prov["inputs"] if "path" in f}
        t = time.perf_counter()
        rasters = {k: inp[k] for k in raster_kinds.KINDS if k in inp}
        points = {"population": inp["places"]} if "places" in inp else None
        zones, cinfo = classify_counties(inp["counties"], rasters, ClassifyOptions(
            attributes=inp.get("attributes"), model=proj.model, legend=proj.legend, read=proj.read,
            name_field=opt.get("name_field"), header_row=opt.get("header_row"),
            memory_mb=float(opt.get("memory_mb", 1024.0)), points=points,
            default_places=bool(opt.get("default_places", False)), census=bool(opt.get("census", True)),
            sensitivity=opt.get("sensitivity", 0), spread=opt.get("spread", 0.10), seed=opt.get("seed", 0),
            cluster=client, quota=opt.get("quota")), progress)
        timings["classify"] = round(time.perf_counter() - t, 3)
        for line in rep.zone_lines(zones) + policy.quota_lines(cinfo.get("quota"), zones):  # as the terminal shows
            log.info("%s", line, extra={"file_only": True})
        t = time.perf_counter()
        extra, comparison = {"zones": zones}, None
        if "reference" in inp:  # the official scheme named in the project: compare too
            from .. import compare as cmp
            from .comparing import comparison_layer, read_reference

            comparison = cmp.compare(zones, read_reference(inp["reference"], opt.get("reference_id_field"),
                                                           opt.get("reference_zone_field")))
            extra["comparison"] = comparison_layer(comparison, zones)
            log.info("agreement with %s: %.1f%% of %d counties, Cohen's kappa %.2f", inp["reference"],
                     100 * comparison.agreement, comparison.compared, comparison.kappa)
        if opt.get("compensate"):  # ecosystem service value and compensation priority beside the zones
            from .compensating import CompensateOptions, compensate_counties

            extra["compensation"], cinfo["compensation"] = compensate_counties(
                inp["counties"], inp["landcover"], CompensateOptions(
                    attributes=inp.get("attributes"), zones=zones, red_line=inp["red_line"], legend=proj.legend,
                    types=opt.get("esv_types"), equivalent_value=opt.get("equivalent_value"),
                    transfer_coefficient=opt.get("transfer_coefficient"), census=bool(opt.get("census", True)),
                    memory_mb=float(opt.get("memory_mb", 1024.0)), cluster=client, read=proj.read,
                    name_field=opt.get("name_field"), header_row=opt.get("header_row")), progress)
            for line in policy.ranked_lines(extra["compensation"]):
                log.info("%s", line, extra={"file_only": True})
        specs = {k: inp[k] for k in ("red_line", "farmland", "urban_boundary")}
        job = CheckJob(specs, inp.get("construction"), inp["counties"], read=proj.read, rules=proj.rules,
                       zone_of=dict(zip(zones["county_id"].astype(str), zones["zone"])), extra=supervision,
                       cluster=client)
        res, meta, qml = write_check(tmp / "zoning.gpkg", job, extra_layers=extra, include_lines=True,
                                     extra_meta={"model": cinfo["model"], "classify_area_method": cinfo["area_method"],
                                                 "project": proj.name, "provenance": prov,
                                                 **({"compensation": cinfo["compensation"]}
                                                    if "compensation" in cinfo else {})}, progress=progress,
                                     target=outdir / "zoning.gpkg")
        for line in rep.check_lines(res.county_summary):
            log.info("%s", line, extra={"file_only": True})
        (tmp / "report").mkdir()
        write_report(tmp / "report", tmp / "zoning.gpkg", res, meta)
        (tmp / "styles").mkdir()
        for name, text in qml.items():
            (tmp / "styles" / f"{name}.qml").write_text(text, encoding="utf-8")
        # every layer, styled and in order, for whoever opens the folder in QGIS
        import pyogrio
        from pyproj import CRS

        from layers import qgis_project

        held = {str(n): bool(g) for n, g in pyogrio.list_layers(tmp / "zoning.gpkg")
                if n not in ("layer_styles", "zoning_run")}
        qgis_project.write_project(tmp / "zoning.qgz", "zoning.gpkg", held, qml,
                                   CRS.from_user_input(res.info["crs"]).to_wkt(), proj.name)
        timings["check"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        map_layers = {**extra, **res.lines, "conflicts": res.conflicts,
                      "violations": webmap.read_findings(tmp / "zoning.gpkg")}
        if res.rectified is not None:
            map_layers["rectified"] = res.rectified
            map_layers["rectification_failed"] = webmap.read_failed(tmp / "zoning.gpkg")
        m = webmap.build_map(map_layers, basemap=opt.get("basemap", "none"), tianditu_key=opt.get("tianditu_key"),
                             simplify_m=opt.get("simplify_m", 100.0), title=f"{proj.name} · 三条控制线监管图",
                             provenance=prov)
        size = webmap.write_map(tmp / "map.html", m)
        timings["map"] = round(time.perf_counter() - t, 3)
        log.info("wrote map.html (%.1f MB)", size / 1e6, extra={"file_only": True})
        run = {"tool": "zoning", "project": {"name": proj.name, "path": str(project)},
               "run_date": prov["run_date"],
               "inputs": {k: _input_record(v, hashes) for k, v in inp.items()},
               "options": {**opt, **({"cluster": address} if address else {})},
               "default_places": cinfo.get("default_places"), "census": cinfo.get("census"),
               "compensation": cinfo.get("compensation"), "quota": cinfo.get("quota"),
               "model": proj.model.raw,
               "model_id": proj.model.id, "model_sha256": proj.model.sha256, "rules": proj.rules,
               "crs": res.info["crs"], "area_method": {"classify": cinfo["area_method"],
                                                       "check": res.info["area_method"]},
               "libraries": record.library_versions(), "timings_s": {**timings, **res.info["timings_s"]},
               "counts": {"counties": len(zones), "conflicts": len(res.conflicts),
                          "violations": res.info["violations"]},
               "outputs": {"geopackage": "zoning.gpkg", "qgis_project": "zoning.qgz", "map": "map.html",
                           "report": "report/", "styles": "styles/", "log": "zoning.log"}}
        if res.info.get("year_on_year"):  # what became of the earlier run, as the GeoPackage's zoning_run says
            run["year_on_year"] = res.info["year_on_year"]
        (tmp / "run.json").write_text(mask(json.dumps(run, ensure_ascii=False, indent=2, default=str)),
                                      encoding="utf-8")
    return {"outdir": outdir, "zones": zones, "check": res, "map_bytes": size, "timings": timings,
            "comparison": comparison}


def _input_record(spec, hashes: dict) -> dict:
    """An input of ``run.json``: a file's size, date and hash; a database table by its URI (no password)."""
    if is_uri(spec):
        return {"path": str(parse(spec)), "kind": "PostGIS table"}
    f = hashes[str(lvector.parse_source(spec).path.resolve())]
    return {"path": spec, "bytes": f["bytes"], "modified": f["modified"], "sha256": f["sha256"]}


def _provenance_of(sources: list) -> dict | None:
    """The provenance a zoning GeoPackage recorded (``zoning_run`` key ``provenance``), of the first that has one."""
    for src in sources:
        meta = gpkg.run_metadata(Path(src))
        if meta.get("provenance"):
            return meta["provenance"]
    return None


def _cluster(address: str | None):
    """One connection for every step (a local cluster started once)."""
    import contextlib

    if not address:
        return contextlib.nullcontext(None)
    from .cluster import connect

    return connect(address)


def run_map(sources: list, output, basemap: str = "none", tianditu_key=None, simplify_m: float = 100.0,
            overwrite: bool = False) -> int:
    """``zoning map``: draw the known layers of one or more GeoPackages (or PostGIS schemas zoning wrote) into an
    offline HTML map."""
    import tempfile

    from layers.pgwrite import fetch
    from layers.postgis import is_uri

    with tempfile.TemporaryDirectory(prefix="zoning-map-") as folder:  # schemas fetched into GeoPackages first
        sources = [fetch(s, Path(folder) / f"schema{i}.gpkg") if is_uri(s) else s for i, s in enumerate(sources)]
        return _map(sources, output, basemap, tianditu_key, simplify_m, overwrite)


def _map(sources: list, output, basemap: str, tianditu_key, simplify_m: float, overwrite: bool) -> int:
    import pyogrio

    from layers import webmap

    if basemap not in webmap.BASEMAPS:
        raise UsageError(f"--basemap: expected one of {', '.join(webmap.BASEMAPS)}, got {basemap!r}")
    if basemap == "tianditu" and not tianditu_key:
        raise UsageError("--basemap tianditu needs --tianditu-key")
    check_target(Path(output), overwrite, [Path(s) for s in sources])
    layers = {}
    for src in sources:
        p = Path(src)
        if not p.exists():
            raise DataError(f"map input not found: {p}")
        for name, gtype in pyogrio.list_layers(p):
            if name == "violations" and gtype:  # millions of findings: only those the map can show are read
                layers[name] = webmap.read_findings(p)
            elif name == "parcels" and gtype:  # the ledger itself is not drawn; its 整改不到位 parcels are
                failed = webmap.read_failed(p)
                if failed is not None:
                    layers["rectification_failed"] = failed
            elif name in webmap.LAYERS and gtype:
                layers[name] = lvector.read_vector(f"{p}:{name}", role=name)
    if not layers:
        raise DataError(f"none of {', '.join(map(str, sources))} holds a layer to map "
                        f"({', '.join(webmap.LAYERS)}).")
    if basemap != "none":
        log.warning("basemap %s: tiles come from the internet, and web tiles in GCJ-02 (AMap, Baidu) are offset "
                    "by hundreds of metres from CGCS2000/WGS84 data", basemap)
    m = webmap.build_map(layers, basemap, tianditu_key, simplify_m, provenance=_provenance_of(sources))
    with Output(Path(output), overwrite, inputs=[Path(s) for s in sources]) as tmp:
        return webmap.write_map(tmp, m)
