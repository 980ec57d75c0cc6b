"""The one module that wires the domain to files (:mod:`layers`): read, validate, compute, write."""
from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS

from layers import raster as lraster
from layers import vector as lvector

from . import areas, classify as cls, indicators as ind_mod, model as model_mod, validate
from .errors import DataError, UsageError

log = logging.getLogger("zoning")

COUNTY_ID_FIELDS = ("county_id", "adcode", "code", "id")
COUNTY_NAME_FIELDS = ("name", "county_name", "district", "NAME")
RASTER_KINDS = ("landcover", "dem")


def load_model(path: str | Path | None) -> model_mod.Model:
    if path is None:
        return model_mod.load_default()
    p = Path(path)
    if not p.exists():
        raise UsageError(f"model file not found: {p}")
    return model_mod.loads(p.read_text(encoding="utf-8"), source=str(p))


def load_polygons(spec, role: str, id_field: str | None, candidates: tuple[str, ...] = (),
                  require_id: bool = False, assume_crs: str | None = None,
                  encoding: str | None = None, allow_empty: bool = False) -> tuple[gpd.GeoDataFrame, dict]:
    """Read a polygon layer, give it a CRS, repair and identify its features."""
    gdf = lvector.read_vector(spec, encoding=encoding, role=role)
    if len(gdf) == 0 and not allow_empty:
        raise DataError(f"{role} layer {gdf.attrs['source']} has no features.")
    field = validate.pick_field(gdf, id_field, candidates, role, "--id-field") if candidates else id_field
    if field is not None and field not in gdf.columns and not candidates:
        if id_field == "id":  # the default: fall back to the feature id
            field = None
        else:
            validate.require_field(gdf, field, role)
    if require_id and field is None:
        raise DataError(f"{role} layer {gdf.attrs['source']}: none of the id fields {', '.join(candidates)} is "
                        f"present (fields: {', '.join(c for c in gdf.columns if c != 'geometry')}). "
                        "Name the id field with --id-field.")
    gdf = validate.ensure_crs(gdf, role, assume_crs)
    gdf, report = validate.clean_polygons(gdf, role, field, require_id=require_id)
    if len(gdf) == 0 and not allow_empty:
        raise DataError(f"{role} layer {gdf.attrs.get('source')}: no usable polygons after dropping empty ones.")
    report["id_field"] = field
    return gdf, report


def compute_indicators(counties: gpd.GeoDataFrame, rasters: dict[str, str], model: model_mod.Model,
                       attributes: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """Indicator table (one row per county, same index) from rasters and an optional attribute table."""
    info: dict = {"rasters": {}}
    geoms_src = counties.geometry.values
    area = areas.geodesic_area(geoms_src, counties.crs) / 1e6
    parts = [pd.DataFrame({"area_km2": area}, index=counties.index)]
    for kind, path in rasters.items():
        rinfo = lraster.raster_info(path, kind)
        rcrs = rinfo["crs"]
        if rcrs is None:
            raise DataError(f"{kind} raster {path} has no CRS. Assign one with gdal_edit.py -a_srs.")
        target = CRS.from_epsg(4326) if CRS.from_user_input(rcrs.to_wkt()).is_geographic else rcrs
        geoms = areas.to_crs(geoms_src, counties.crs, target)
        if counties.crs != target:
            log.info("reprojecting counties from %s to the %s raster's CRS %s for zonal statistics",
                     counties.crs.to_string(), kind, CRS.from_user_input(target).to_string())
        bounds = tuple(gpd.GeoSeries(geoms).total_bounds)
        validate.check_overlap(bounds, rinfo["bounds"], f"counties ({counties.attrs.get('source', '')})",
                               f"{kind} raster {path}")
        win = lraster.read_window(path, bounds, kind)
        if not np.isfinite(win.data).any():
            raise DataError(f"{kind} raster {path}: no valid cells under the counties (all nodata). Check the "
                            "raster's nodata value and that it covers the study area.")
        t0 = time.perf_counter()
        df, rinfo_k = ind_mod.raster_indicators(geoms, {"data": win.data, "transform": win.transform,
                                                        "crs": win.crs}, kind,
                                                model.settings["coarse_steep_relief_m"])
        df.index = counties.index
        rinfo_k["seconds"] = round(time.perf_counter() - t0, 3)
        info["rasters"][kind] = {"path": str(path), **rinfo_k}
        parts.append(df)
    ind = pd.concat(parts, axis=1)
    if attributes is not None:
        ind = pd.concat([ind, ind_mod.attribute_indicators(attributes, ind["area_km2"],
                                                           model.settings["national_gdp_per_capita"])], axis=1)
    return ind, info


def join_attributes(counties: gpd.GeoDataFrame, table: pd.DataFrame, source: str) -> pd.DataFrame:
    """Align an attribute table to the counties by id (first column named like an id field, else the first)."""
    key = next((c for c in COUNTY_ID_FIELDS if c in table.columns), table.columns[0])
    t = table.copy()
    t[key] = t[key].astype(str).str.strip()
    dup = t[key][t[key].duplicated()]
    if len(dup):
        raise DataError(f"attributes {source}: duplicate county ids in column {key!r}: {', '.join(dup[:10])}")
    unknown = sorted(set(t[key]) - set(counties["_id"]))
    if unknown:
        log.warning("attributes %s: %d ids match no county (e.g. %s)", source, len(unknown), ", ".join(unknown[:5]))
    aligned = t.set_index(key).reindex(counties["_id"].to_numpy())
    aligned.index = counties.index
    known = [c for c in aligned.columns if c in ind_mod.ATTRIBUTE_COLUMNS]
    if not known:
        raise DataError(f"attributes {source}: none of the expected columns "
                        f"({', '.join(ind_mod.ATTRIBUTE_COLUMNS)}) is present; columns are {', '.join(t.columns)}")
    return aligned[known]


def classify_counties(counties_spec, rasters: dict[str, str], attributes: str | None = None,
                      id_field: str | None = None, name_field: str | None = None, model_path=None,
                      sensitivity: int = 0, sensitivity_spread: float = 0.10, seed: int = 0,
                      assume_crs: str | None = None, encoding: str | None = None) -> tuple[gpd.GeoDataFrame, dict]:
    """Read counties and rasters, compute indicators, classify; return the ``zones`` layer and run info."""
    unknown = set(rasters) - set(RASTER_KINDS)
    if unknown:
        raise UsageError(f"--raster: unknown kind(s) {', '.join(sorted(unknown))}; use landcover=PATH and dem=PATH")
    if "landcover" not in rasters:
        raise UsageError("--raster landcover=PATH is required (an IGBP-coded land-cover raster such as MCD12C1)")
    model = load_model(model_path)
    counties, report = load_polygons(counties_spec, "counties", id_field, COUNTY_ID_FIELDS, require_id=True,
                                     assume_crs=assume_crs, encoding=encoding)
    nfield = validate.pick_field(counties, name_field, COUNTY_NAME_FIELDS, "counties", "--name-field")
    names = counties[nfield].astype(str) if nfield else pd.Series("", index=counties.index)
    attrs = None
    if attributes:
        table = lvector.read_table(attributes)
        attrs = join_attributes(counties, table, str(attributes))
    log.info("computing indicators for %d counties", len(counties))
    ind, info = compute_indicators(counties, rasters, model, attrs)
    ind["admin_type"] = ind_mod.admin_type(names)
    log.info("classifying with model %s", model.id)
    res = cls.classify(ind, model)
    zones = gpd.GeoDataFrame({"county_id": counties["_id"].astype(str), "name": names}, index=counties.index,
                             geometry=counties.geometry.values, crs=counties.crs)
    for c in res.columns:
        zones[c] = res[c]
    zones["area_km2"] = ind["area_km2"]
    for c in ind.columns:
        if c not in zones.columns:
            zones[c] = ind[c]
    if sensitivity:
        log.info("sensitivity: %d perturbed runs (±%.0f%%, seed %d)", sensitivity, sensitivity_spread * 100, seed)
        s = cls.sensitivity(ind, model, sensitivity, sensitivity_spread, seed, res["zone"].to_numpy(),
                            on_run=lambda done, total: log.info(
                                "sensitivity run %d/%d", done, total,
                                extra={"progress": ("sensitivity runs", done, total)}))
        zones["stability"] = s["stability"]
        zones["alt_zone"] = s["alt_zone"]
    zones["review"] = zones["review"].astype(bool)
    zones["low_confidence"] = zones["low_confidence"].astype(bool)
    zones = zones.reset_index(drop=True)
    info.update({"model": model.id, "model_source": model.source, "counties": report,
                 "name_field": nfield, "area_method": "geodesic (GRS80)", "crs": counties.crs.to_string()})
    return zones, info


def _layer_titles() -> dict:
    return {
        "zones": ("Main function zones 主体功能区", "County classification by zoning; one row per county."),
        "conflicts": ("Control-line conflicts 三线冲突", "Overlaps between and within the three control lines."),
        "violations": ("Construction violations 违法建设图斑", "Construction parcels in the red line, on "
                       "permanent farmland or outside the urban development boundary."),
        "county_summary": ("County summary 县级汇总", "Count and area per county and check."),
        "red_line": ("Ecological protection red line 生态保护红线", ""),
        "farmland": ("Permanent basic farmland 永久基本农田", ""),
        "urban_boundary": ("Urban development boundary 城镇开发边界", ""),
    }


def write_outputs(path, layers: dict, overwrite: bool, metadata: dict) -> Path:
    """Write layers to a GeoPackage with QGIS default styles and ``styles/<layer>.qml`` beside it."""
    from layers import gpkg, styles

    qml = {name: styles.qml_for(name, df) for name, df in layers.items() if isinstance(df, gpd.GeoDataFrame)}
    qml = {k: v for k, v in qml.items() if v}
    out = gpkg.write_layers(Path(path), layers, overwrite=overwrite, metadata=metadata, styles=qml,
                            titles=_layer_titles())
    styles.write_qml_files(Path(path).parent / "styles", qml)
    return out


def run_classify(counties, rasters, output, overwrite: bool = False, spread: float = 0.10, **kwargs):
    """``zoning classify``: classify and write the ``zones`` layer. Returns (output path, zones)."""
    from layers import gpkg

    gpkg.check_target(Path(output), overwrite)
    zones, info = classify_counties(counties, rasters, sensitivity_spread=spread, **kwargs)
    meta = {"tool": "zoning", "version": _version(), "run_time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **{k: v for k, v in info.items() if k != "counties"}}
    path = write_outputs(output, {"zones": zones}, overwrite, meta)
    return path, zones


def _version() -> str:
    from . import __version__

    return __version__


# --------------------------------------------------------------------------------------------------------------
# Control-line checks
LINE_LAYERS = (("red_line", "red line 生态保护红线"), ("farmland", "permanent farmland 永久基本农田"),
               ("urban_boundary", "urban boundary 城镇开发边界"))
WORKERS = max(1, min(3, os.cpu_count() or 1))
TOP_N = 50  # most serious violations kept for the HTML report
OVERLAP_MARGIN_M = 100_000.0  # layers whose extents are further apart than this point to a CRS mix-up
DATE_FIELDS = ("detected_on", "date", "detect_date", "jcrq", "发现日期")
VIOLATION_COLUMNS = ["violation_id", "check_id", "severity", "parcel_id", "control_id", "county_id", "county_name",
                     "area_m2", "area_ha", "area_mu", "centroid_lon", "centroid_lat", "detected_on", "note"]
CONFLICT_COLUMNS = ["violation_id", "check_id", "severity", "layer", "control_id", "other_layer",
                    "other_control_id", "county_id", "county_name", "area_m2", "area_ha", "area_mu", "centroid_lon",
                    "centroid_lat", "note"]


def load_rules(path) -> dict:
    from . import rules as rules_mod

    if path is None:
        return rules_mod.loads(None, "default rules")
    p = Path(path)
    if not p.exists():
        raise UsageError(f"rules file not found: {p}")
    return rules_mod.loads(p.read_text(encoding="utf-8"), str(p))


def _areas(geoms_alb: np.ndarray, planar: np.ndarray, method: str) -> np.ndarray:
    if method == "geodesic":
        return areas.geodesic_area(geoms_alb, areas.CHINA_ALBERS)
    return planar


def _finish_rows(df: pd.DataFrame, geoms_alb: np.ndarray, planar: np.ndarray, rules: dict, out_crs,
                 counties: gpd.GeoDataFrame | None, counties_alb: np.ndarray | None,
                 known: np.ndarray | None = None):
    """Areas in three units, centroid lon/lat, county, geometry in the output CRS.

    ``known``: output-CRS geometries already at hand (None where not), e.g. a parcel that lies wholly inside a
    line, so that only the cut parts are transformed back.
    """
    import shapely

    from . import controllines as cl

    a = _areas(geoms_alb, planar, rules["rules"]["area_method"])
    u = areas.units(a)
    for k, v in u.items():
        df[k] = v
    cen = areas.to_crs(shapely.centroid(geoms_alb), areas.CHINA_ALBERS, areas.CGCS2000)

    df["centroid_lon"] = np.round(shapely.get_x(cen), 7)
    df["centroid_lat"] = np.round(shapely.get_y(cen), 7)
    ci = cl.assign_county(geoms_alb, counties_alb)
    if counties is not None:
        cid = counties["_id"].to_numpy(dtype=object)
        cname = counties["_name"].to_numpy(dtype=object)
        df["county_id"] = np.where(ci >= 0, cid[np.maximum(ci, 0)], cl.NO_COUNTY)
        df["county_name"] = np.where(ci >= 0, cname[np.maximum(ci, 0)], "")
    else:
        df["county_id"] = cl.NO_COUNTY
        df["county_name"] = ""
    if known is None:
        out = areas.to_crs(geoms_alb, areas.CHINA_ALBERS, out_crs)
    else:
        out = np.asarray(known, dtype=object).copy()
        todo = np.array([g is None for g in out], dtype=bool)
        if todo.any():
            out[todo] = areas.to_crs(geoms_alb[todo], areas.CHINA_ALBERS, out_crs)
    return gpd.GeoDataFrame(df, geometry=out, crs=out_crs)


def _load_counties_for_check(counties_spec, zones_spec, id_field, assume_crs, encoding):
    spec = counties_spec or zones_spec
    if spec is None:
        return None
    role = "counties" if counties_spec else "zones"
    explicit = id_field if id_field and id_field != "id" else None
    gdf, _ = load_polygons(spec, role, explicit, COUNTY_ID_FIELDS, require_id=True, assume_crs=assume_crs,
                           encoding=encoding)
    nfield = validate.pick_field(gdf, None, COUNTY_NAME_FIELDS, role, "--name-field")
    gdf["_name"] = gdf[nfield].astype(str) if nfield else ""
    return gdf


def check_lines(line_specs: dict, construction=None, counties=None, zones=None, id_field: str = "id",
                rules_path=None, assume_crs=None, encoding=None, sink=None) -> dict:
    """Run every enabled check. Violation rows are streamed to ``sink(gdf)`` chunk by chunk when given.

    Returns a dict with ``conflicts`` (GeoDataFrame), ``violations`` (attributes only, no geometry, when a sink is
    used), ``county_summary``, ``lines`` (the cleaned line layers), ``rules`` and ``info``.
    """
    import shapely

    from layers import vector as lv

    from . import controllines as cl, report as rep

    rules = load_rules(rules_path)
    checks = rules["checks"]
    tile = rules["rules"]["subdivide_m"]
    sliver = rules["rules"]["sliver_m2"]
    t0 = time.perf_counter()
    timings = {}
    problems = []
    lines = {}
    for key, role in LINE_LAYERS:
        try:
            lines[key], _ = load_polygons(line_specs[key], role, id_field, require_id=False, assume_crs=assume_crs,
                                          encoding=encoding)
        except DataError as exc:  # report every bad input at once
            problems.append(str(exc))
    cty = None
    try:
        cty = _load_counties_for_check(counties, zones, id_field, assume_crs, encoding)
    except DataError as exc:
        problems.append(str(exc))
    if problems:
        raise DataError(f"{len(problems)} input problem(s)", problems) if len(problems) > 1 \
            else DataError(problems[0])
    out_crs = lines["red_line"].crs
    alb = {k: areas.to_crs(g.geometry.values, g.crs, areas.CHINA_ALBERS) for k, g in lines.items()}
    for k, g in lines.items():
        if g.crs != out_crs:
            log.info("%s is in %s, the red line in %s: reprojecting", k, g.crs.to_string(), out_crs.to_string())
    names = [k for k, _ in LINE_LAYERS]
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            validate.check_overlap(tuple(shapely.total_bounds(alb[a])), tuple(shapely.total_bounds(alb[b])),
                                   f"{a} ({lines[a].attrs.get('source')})", f"{b} ({lines[b].attrs.get('source')})",
                                   margin=OVERLAP_MARGIN_M)
    cty_alb = areas.to_crs(cty.geometry.values, cty.crs, areas.CHINA_ALBERS) if cty is not None else None
    ids = {k: g["_id"].to_numpy(dtype=object) for k, g in lines.items()}

    # line-vs-line conflicts
    conflict_frames, sliver_rows = [], []
    pairs = [("red_line_farmland_overlap", "red_line", "farmland"), ("red_line_urban_overlap", "red_line",
             "urban_boundary"), ("farmland_urban_overlap", "farmland", "urban_boundary")]
    jobs = [(c, a, b) for c, a, b in pairs if checks[c]["enabled"]]
    if checks["self_overlap"]["enabled"]:
        jobs += [("self_overlap", k, k) for k in names]
    for check, a, b in jobs:
        ov = cl.line_overlaps(alb[a], alb[b], same=(a == b))
        small = ov["area"] < sliver
        if small.any():
            sliver_rows.append((check, _sliver_counties(ov[small], cty_alb, cty)))
        ov = ov[~small]
        df = pd.DataFrame({"check_id": check, "severity": checks[check]["severity"], "layer": a,
                           "control_id": ids[a][ov["a"].to_numpy(dtype=int)], "other_layer": b,
                           "other_control_id": ids[b][ov["b"].to_numpy(dtype=int)],
                           "note": checks[check]["label_zh"]})
        conflict_frames.append(_finish_rows(df, ov["geometry"].to_numpy(), ov["area"].to_numpy(), rules, out_crs,
                                            cty, cty_alb))
    conflicts = pd.concat(conflict_frames, ignore_index=True) if conflict_frames else \
        gpd.GeoDataFrame({c: [] for c in CONFLICT_COLUMNS}, geometry=[], crs=out_crs)
    conflicts = gpd.GeoDataFrame(conflicts, geometry="geometry", crs=out_crs)
    counters: dict = {}
    conflicts["violation_id"] = cl.number(conflicts["county_id"].to_numpy(dtype=object),
                                          conflicts["check_id"].to_numpy(dtype=object),
                                          [conflicts["control_id"].astype(str).to_numpy(),
                                           conflicts["other_control_id"].astype(str).to_numpy(),
                                           conflicts["layer"].to_numpy(dtype=object)], counters)
    conflicts = conflicts[CONFLICT_COLUMNS + ["geometry"]]
    timings["conflicts"] = round(time.perf_counter() - t0, 3)

    # construction encroachment, streamed in chunks
    t1 = time.perf_counter()
    idx = {k: cl.prepare_control(alb[k], ids[k], tile) for k in names}
    attrs_rows, agg_rows = [], []
    top = pd.DataFrame({c: [] for c in VIOLATION_COLUMNS})
    n_parcels = 0
    seen_ids: set = set()
    total = None
    if construction is not None:
        try:
            total = lv.count_features(construction)
        except Exception:  # some drivers cannot count quickly; progress then shows counts only
            total = None
        for chunk in lv.iter_vector(construction, rules["rules"]["chunk_size"], encoding, "construction"):
            if len(chunk) == 0:
                break
            chunk = validate.ensure_crs(chunk, "construction", assume_crs)
            field = id_field if id_field in chunk.columns else None
            chunk, _ = validate.clean_polygons(chunk, "construction", field)
            dup = seen_ids.intersection(chunk["_id"])
            if dup:
                raise DataError(f"construction layer {chunk.attrs.get('source')}: duplicate ids "
                                f"{', '.join(sorted(dup)[:10])}. Ids must be unique.")
            seen_ids.update(chunk["_id"])
            if n_parcels == 0:
                validate.check_overlap(tuple(chunk.to_crs(areas.CHINA_ALBERS).total_bounds),
                                       tuple(shapely.total_bounds(np.concatenate(list(alb.values())))),
                                       f"construction ({chunk.attrs.get('source')})", "the control lines",
                                       margin=OVERLAP_MARGIN_M)
            n_parcels += len(chunk)
            frame = _construction_chunk(chunk, idx, ids, rules, sliver, out_crs, cty, cty_alb, counters, sliver_rows)
            if sink is not None:
                # Streamed: the rows go to the sink; keep only per-(check, county) sums and the most serious
                # rows for the report, so memory follows the chunk size, not the parcel count.
                sink(frame)
                agg = frame.groupby(["check_id", "county_id"], sort=False).agg(
                    count=("area_m2", "size"), area_m2=("area_m2", "sum")).reset_index()
                agg_rows.append(agg)
                top = rep.top_violations(pd.concat([top, pd.DataFrame(frame.drop(columns="geometry"))]),
                                         TOP_N) if len(frame) else top
            else:
                attrs_rows.append(frame)
            # ``progress`` lets the CLI draw a bar on a terminal; elsewhere this is a plain log line
            log.info("construction: %s parcels checked%s", f"{n_parcels:,}",
                     f" of {total:,} ({n_parcels / total:.0%})" if total else "",
                     extra={"progress": ("checking construction parcels", n_parcels, total)})
        if n_parcels == 0:
            log.warning("construction layer %s is empty: zero violations", construction)
    violations = pd.concat(attrs_rows, ignore_index=True) if attrs_rows else \
        pd.DataFrame({c: [] for c in VIOLATION_COLUMNS})
    if sink is None:
        agg_rows = [violations[["check_id", "county_id", "area_m2"]].assign(count=1)] if len(violations) else []
        top = rep.top_violations(pd.DataFrame(violations.drop(columns="geometry", errors="ignore")), TOP_N)
    timings["construction"] = round(time.perf_counter() - t1, 3)

    # county summary (reconciled)
    slv = pd.concat([fr.assign(check_id=c, slivers=1) for c, fr in sliver_rows], ignore_index=True) \
        if sliver_rows else None
    all_rows = pd.concat([pd.DataFrame(conflicts.drop(columns="geometry"))[["county_id", "check_id", "area_m2"]]
                          .assign(count=1)] + agg_rows, ignore_index=True)
    lookup = None if cty is None else pd.DataFrame({"county_id": cty["_id"], "county_name": cty["_name"]})
    summary = rep.county_summary(all_rows, slv, lookup)
    summary = _append_expansion(summary, cty, cty_alb, alb["urban_boundary"], checks["urban_expansion"], rules)
    info = {"rules": f"{rules['rules']['id']}@{rules['rules']['version']}", "area_method":
            {"albers": "planar, China Albers equal-area (GRS80)", "geodesic": "ellipsoidal (GRS80)"}[
                rules["rules"]["area_method"]], "parcels": n_parcels, "timings_s": timings,
            "crs": out_crs.to_string()}
    info["violations"] = int(summary.loc[(summary["county_id"] == "TOTAL") & summary["check_id"].str.startswith(
        "construction"), "count"].sum()) if len(summary) else 0
    return {"conflicts": conflicts, "violations": violations if sink is None else None, "top_violations": top,
            "county_summary": summary, "lines": lines, "rules": rules, "info": info}


def _construction_chunk(chunk, idx, ids, rules, sliver, out_crs, cty, cty_alb, counters, sliver_rows):
    from . import controllines as cl

    checks = rules["checks"]
    parcels = areas.to_crs(chunk.geometry.values, chunk.crs, areas.CHINA_ALBERS)
    # the parcels as read, reusable as output geometry where a parcel is wholly inside or outside a line
    src = np.asarray(chunk.geometry.values, dtype=object) if chunk.crs == out_crs else None
    pid = chunk["_id"].to_numpy(dtype=object)
    dfield = next((f for f in DATE_FIELDS if f in chunk.columns), None)
    dates = chunk[dfield].astype(str).to_numpy(dtype=object) if dfield else np.full(len(chunk), None, dtype=object)
    frames = []
    # The three overlays are independent and shapely releases the GIL in its array functions: run them on both
    # cores.
    jobs_layer = {"construction_in_red_line": "red_line", "construction_on_farmland": "farmland"}
    jobs = {c: (cl.overlay_parts, idx[layer]) for c, layer in jobs_layer.items() if checks[c]["enabled"]}
    if checks["construction_outside_urban_boundary"]["enabled"]:
        jobs["construction_outside_urban_boundary"] = (cl.outside_parts, idx["urban_boundary"])
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = {c: pool.submit(fn, parcels, ctrl) for c, (fn, ctrl) in jobs.items()}
        results = {c: f.result() for c, f in futures.items()}
    for check, part in results.items():
        small = part["area"].to_numpy() < sliver
        if small.any():
            sliver_rows.append((check, _sliver_counties(part[small], cty_alb, cty)))
        part = part[~small]
        p = part["parcel"].to_numpy(dtype=int)
        rule = checks[check]
        if check == "construction_outside_urban_boundary":
            sev, control, note = rule["severity"], None, rule["note"]
        else:
            layer = jobs_layer[check]
            control, note = ids[layer][part["control"].to_numpy(dtype=int)], rule["label_zh"]
            sev = rule["severity"]
            if check == "construction_on_farmland":
                sev = cl.severity_on_farmland(p, part["area"].to_numpy(), rule["critical_mu"], rule["severity"],
                                              rule["critical_severity"])
        df = pd.DataFrame({"check_id": check, "severity": sev, "parcel_id": pid[p], "control_id": control,
                           "detected_on": dates[p], "note": note})
        frames.append((df, part["geometry"].to_numpy(), part["area"].to_numpy(), _known(src, p, part["whole"])))
    if not frames:
        return gpd.GeoDataFrame({c: [] for c in VIOLATION_COLUMNS}, geometry=[], crs=out_crs)
    parts = [_finish_rows(df, g, a, rules, out_crs, cty, cty_alb, known) for df, g, a, known in frames]
    res = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=out_crs)
    res["violation_id"] = cl.number(res["county_id"].to_numpy(dtype=object), res["check_id"].to_numpy(dtype=object),
                                    [res["parcel_id"].astype(str).to_numpy(),
                                     res["control_id"].fillna("").astype(str).to_numpy()], counters)
    return res[VIOLATION_COLUMNS + ["geometry"]]


def _known(src, p, whole) -> np.ndarray | None:
    if src is None:
        return None
    out = np.full(len(p), None, dtype=object)
    w = np.asarray(whole, dtype=bool)
    out[w] = src[p[w]]
    return out


def _sliver_counties(df, cty_alb, cty):
    from . import controllines as cl

    ci = cl.assign_county(df["geometry"].to_numpy(), cty_alb)
    if cty is None:
        return pd.DataFrame({"county_id": [cl.NO_COUNTY] * len(df)})
    cid = cty["_id"].to_numpy(dtype=object)
    return pd.DataFrame({"county_id": np.where(ci >= 0, cid[np.maximum(ci, 0)], cl.NO_COUNTY)})


def _append_expansion(summary, cty, cty_alb, urban_alb, rule, rules) -> pd.DataFrame:
    """Urban boundary expansion factor per county, where the counties carry an existing-construction figure."""
    import shapely

    from . import report as rep

    field = rule["existing_field"]
    if not rule["enabled"] or cty is None or field not in cty.columns:
        return summary
    tree = shapely.STRtree(urban_alb)
    ic, iu = tree.query(cty_alb, predicate="intersects")
    inter = shapely.area(shapely.intersection(cty_alb[ic], urban_alb[iu]))
    per = pd.Series(inter).groupby(ic).sum().reindex(range(len(cty)), fill_value=0.0)
    existing = pd.to_numeric(cty[field], errors="coerce").reset_index(drop=True)
    ef = rep.expansion_factor(per, existing, rule["cap"])
    rows = pd.DataFrame({"county_id": cty["_id"].to_numpy(), "county_name": cty["_name"].to_numpy(),
                         "check_id": "urban_expansion", "check_zh": rep.CHECK_ZH["urban_expansion"],
                         "count": ef["exceeded"].astype(int).to_numpy(), "slivers": 0,
                         "area_m2": np.round(per.to_numpy(), 2),
                         "area_ha": np.round(per.to_numpy() / 1e4, 2), "area_mu": np.round(per.to_numpy() / (1e4 / 15), 2),
                         "expansion_factor": np.round(ef["value"].to_numpy(), 4), "expansion_cap": rule["cap"]})
    rows = rows[existing.notna().to_numpy()]
    return pd.concat([summary, rows], ignore_index=True)


def run_check(line_specs: dict, output, construction=None, counties=None, zones=None, id_field: str = "id",
              rules_path=None, report_dir=None, overwrite: bool = False, assume_crs=None, encoding=None,
              extra_layers: dict | None = None, include_lines: bool = False, extra_meta: dict | None = None) -> dict:
    """``zoning check``: run the checks, write ``conflicts``, ``violations``, ``county_summary`` (and reports)."""
    from layers import gpkg, report as lreport, styles

    out = Path(output)
    gpkg.check_target(out, overwrite)
    if report_dir:
        lreport.check_report_dir(Path(report_dir), overwrite)
    load_rules(rules_path)  # a bad rules file fails before any work
    with gpkg.atomic_path(out, overwrite) as tmp:
        w = gpkg.GpkgWriter(tmp)
        res = check_lines(line_specs, construction, counties, zones, id_field, rules_path, assume_crs, encoding,
                          sink=lambda f: w.write("violations", f, append=True))
        if "violations" not in w.layers:
            w.write("violations", gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in VIOLATION_COLUMNS},
                                                   geometry=[], crs=res["conflicts"].crs))
        w.write("conflicts", res["conflicts"])
        w.write("county_summary", res["county_summary"])
        for name, df in (extra_layers or {}).items():
            w.write(name, df)
        if include_lines:
            for name, df in res["lines"].items():
                w.write(name, df.drop(columns="_id"))
        meta = {"tool": "zoning", "version": _version(), "run_time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                **res["info"], **(extra_meta or {})}
        qml = {n: styles.qml_for(n, df) for n, df in w.layers.items() if isinstance(df, gpd.GeoDataFrame)}
        qml = {k: v for k, v in qml.items() if v}
        w.finish(meta, qml, _layer_titles())
    styles.write_qml_files(out.parent / "styles", qml)
    res["output"] = out
    if report_dir:
        import pyogrio

        res["violations"] = pyogrio.read_dataframe(out, layer="violations", read_geometry=False)
        res["reports"] = lreport.write_reports(Path(report_dir), res["violations"],
                                               pd.DataFrame(res["conflicts"].drop(columns="geometry")),
                                               res["county_summary"], meta, overwrite)
    res["meta"] = meta
    return res


# --------------------------------------------------------------------------------------------------------------
# The whole job from a project file
PROJECT_INPUTS = {"counties": True, "landcover": True, "dem": False, "attributes": False, "red_line": True,
                  "farmland": True, "urban_boundary": True, "construction": False}
PROJECT_OPTIONS = {"model": str, "rules": str, "id_field": str, "county_id_field": str, "name_field": str,
                   "sensitivity": int, "seed": int, "spread": float, "simplify_m": float, "basemap": str,
                   "tianditu_key": str, "crs": str, "encoding": str}


def sample_project() -> Path:
    """The bundled sample project file (installed as package data)."""
    from importlib import resources

    try:
        return Path(str(resources.files("zoning.sample_data").joinpath("project.toml")))
    except ModuleNotFoundError:  # a source checkout that is not installed
        return Path(__file__).resolve().parents[1] / "sample_data" / "project.toml"


def load_project(path: Path) -> dict:
    """Read and validate a project file; every problem (unknown key, missing input file) is reported at once."""
    import tomllib

    from .errors import ConfigError

    path = Path(path)
    if not path.exists():
        raise UsageError(f"project file not found: {path}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    problems = []
    for k in raw:
        if k not in ("project", "inputs", "options"):
            problems.append(f"{k}: unknown section; expected project, inputs, options")
    inputs = raw.get("inputs", {})
    opts = raw.get("options", {})
    base = path.parent
    resolved = {}
    for k, v in inputs.items():
        if k not in PROJECT_INPUTS:
            problems.append(f"inputs.{k}: unknown input; known: {', '.join(PROJECT_INPUTS)}")
        elif not isinstance(v, str):
            problems.append(f"inputs.{k}: expected a path string")
        elif v:
            p = Path(v)
            layer = None
            if ":" in v and not (base / v).exists():
                p_str, _, layer = v.rpartition(":")
                p = Path(p_str)
            full = p if p.is_absolute() else base / p
            if not full.exists():
                problems.append(f"inputs.{k}: file not found: {full}")
            resolved[k] = f"{full}:{layer}" if layer else str(full)
    for k, req in PROJECT_INPUTS.items():
        if req and k not in inputs:
            problems.append(f"inputs.{k}: missing (required)")
    for k, v in opts.items():
        if k not in PROJECT_OPTIONS:
            problems.append(f"options.{k}: unknown option; known: {', '.join(PROJECT_OPTIONS)}")
        elif not isinstance(v, PROJECT_OPTIONS[k]) and not (PROJECT_OPTIONS[k] is float and isinstance(v, int)):
            problems.append(f"options.{k}: expected {PROJECT_OPTIONS[k].__name__}, got {type(v).__name__}")
    for k in ("model", "rules"):
        if isinstance(opts.get(k), str) and opts[k]:
            p = Path(opts[k]) if Path(opts[k]).is_absolute() else base / opts[k]
            if not p.exists():
                problems.append(f"options.{k}: file not found: {p}")
            opts[k] = str(p)
    if problems:
        raise ConfigError(f"{path}: {len(problems)} problem(s) in the project", problems)
    return {"name": raw.get("project", {}).get("name", path.stem), "inputs": resolved, "options": opts,
            "path": path}


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def library_versions() -> dict:
    import folium
    import pyogrio
    import pyproj
    import rasterio
    import shapely

    return {"zoning": _version(), "geopandas": gpd.__version__, "shapely": shapely.__version__,
            "GEOS": shapely.geos_version_string, "pyproj": pyproj.__version__, "PROJ": pyproj.proj_version_str,
            "rasterio": rasterio.__version__, "GDAL": rasterio.__gdal_version__, "pyogrio": pyogrio.__version__,
            "folium": folium.__version__, "numpy": np.__version__, "pandas": pd.__version__}


def run_project(project: Path | None, outdir: Path, overwrite: bool = False) -> dict:
    """``zoning run``: validate, classify, check, write gpkg, map, reports, run.json and zoning.log into OUTDIR.

    Everything is built in a temporary directory beside OUTDIR and moved into place at the end; an existing OUTDIR
    is refused without ``overwrite`` and left intact if anything fails.
    """
    import json
    import shutil
    import tempfile

    from layers import webmap

    from layers import gpkg

    project = Path(project) if project else sample_project()
    outdir = Path(outdir)
    gpkg.check_target(outdir, overwrite)
    parent = outdir.parent if str(outdir.parent) else Path(".")
    proj = load_project(project)
    inp, opt = proj["inputs"], proj["options"]
    model = load_model(opt.get("model") or None)  # bad model or rules fail before any work
    load_rules(opt.get("rules") or None)
    tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", suffix=".part", dir=parent))
    handler = logging.FileHandler(tmp / "zoning.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    timings = {}
    try:
        log.info("project %s (%s)", proj["name"], project)
        t = time.perf_counter()
        rasters = {k: inp[k] for k in ("landcover", "dem") if k in inp}
        zones, cinfo = classify_counties(inp["counties"], rasters, attributes=inp.get("attributes"),
                                         id_field=opt.get("county_id_field"), name_field=opt.get("name_field"),
                                         model_path=opt.get("model") or None,
                                         sensitivity=opt.get("sensitivity", 0), seed=opt.get("seed", 0),
                                         sensitivity_spread=opt.get("spread", 0.10), assume_crs=opt.get("crs"),
                                         encoding=opt.get("encoding"))
        timings["classify"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        specs = {k: inp[k] for k in ("red_line", "farmland", "urban_boundary")}
        res = run_check(specs, tmp / "zoning.gpkg", construction=inp.get("construction"), counties=inp["counties"],
                        id_field=opt.get("id_field", "id"), rules_path=opt.get("rules") or None,
                        report_dir=tmp / "report", assume_crs=opt.get("crs"), encoding=opt.get("encoding"),
                        extra_layers={"zones": zones}, include_lines=True,
                        extra_meta={"model": cinfo["model"], "classify_area_method": cinfo["area_method"],
                                    "project": proj["name"]})
        timings["check"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        map_layers = {"zones": zones, **{k: res["lines"][k] for k in ("red_line", "farmland", "urban_boundary")},
                      "conflicts": res["conflicts"]}
        import pyogrio

        map_layers["violations"] = pyogrio.read_dataframe(tmp / "zoning.gpkg", layer="violations")
        m = webmap.build_map(map_layers, basemap=opt.get("basemap", "none"), tianditu_key=opt.get("tianditu_key"),
                             simplify_m=opt.get("simplify_m", 100.0))
        size = webmap.write_map(tmp / "map.html", m)
        timings["map"] = round(time.perf_counter() - t, 3)
        log.info("wrote map.html (%.1f MB)", size / 1e6)
        rules = res["rules"]
        run = {"project": {"name": proj["name"], "path": str(project)},
               "inputs": {k: {"path": v, "bytes": lvector.parse_source(v).path.stat().st_size,
                              "sha256": _sha256(lvector.parse_source(v).path)} for k, v in inp.items()},
               "options": opt, "model": model.raw, "model_id": model.id, "rules": rules,
               "crs": res["info"]["crs"], "area_method": {"classify": cinfo["area_method"],
                                                          "check": res["info"]["area_method"]},
               "libraries": library_versions(), "timings_s": {**timings, **res["info"]["timings_s"]},
               "counts": {"counties": len(zones), "conflicts": len(res["conflicts"]),
                          "violations": res["info"]["violations"]},
               "outputs": {"geopackage": "zoning.gpkg", "map": "map.html", "report": "report/",
                           "styles": "styles/", "log": "zoning.log"}}
        (tmp / "run.json").write_text(json.dumps(run, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
        log.removeHandler(handler)
        handler.close()
        if outdir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", suffix=".old", dir=parent))
            os.replace(outdir, old / "x")
            os.replace(tmp, outdir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, outdir)
    except BaseException:
        log.removeHandler(handler)
        handler.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"outdir": outdir, "zones": zones, "check": res, "map_bytes": size, "timings": timings}


def run_map(sources: list, output, basemap: str = "none", tianditu_key=None, simplify_m: float = 100.0,
            overwrite: bool = False) -> int:
    """``zoning map``: draw the known layers of one or more GeoPackages into an offline HTML map."""
    import pyogrio

    from layers import gpkg, webmap

    gpkg.check_target(Path(output), overwrite)
    layers = {}
    for src in sources:
        p = Path(src)
        if not p.exists():
            raise DataError(f"map input not found: {p}")
        for name, gtype in pyogrio.list_layers(p):
            if name in webmap.LAYERS and gtype:
                layers[name] = lvector.read_vector(f"{p}:{name}", role=name)
    if not layers:
        raise DataError(f"none of {', '.join(map(str, sources))} holds a layer to map "
                        f"({', '.join(webmap.LAYERS)}).")
    if basemap != "none":
        log.warning("basemap %s: tiles come from the internet, and web tiles in GCJ-02 (AMap, Baidu) are offset "
                    "by hundreds of metres from CGCS2000/WGS84 data", basemap)
    try:
        m = webmap.build_map(layers, basemap, tianditu_key, simplify_m)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return webmap.write_map(Path(output), m)
