"""Classification wiring: counties and rasters in, the ``zones`` layer out (:func:`classify`, :func:`run_classify`)."""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from layers import gpkg, raster as lraster, styles, zonal as lzonal

from .. import areas, classifier as cls, indicators as ind_mod, legends, model as model_mod, outputs, validate
from .. import rasters as raster_kinds, tiling
from ..errors import DataError, UsageError
from . import record
from .config import ClassifyOptions, load_legend, load_model
from .executors import county_groups, executor
from .. import census as census_mod
from .inputs import input_paths, load_counties, read_attributes
from .people import census_figures, people, place_population

log = logging.getLogger("zoning")


def compute_indicators(counties: gpd.GeoDataFrame, rasters: dict[str, str], model: model_mod.Model,
                       attributes: pd.DataFrame | None = None, progress: Callable | None = None,
                       legend: legends.Legend | None = None, memory_mb: float = 1024.0,
                       place_population: np.ndarray | None = None, cluster: str | None = None):
    """Indicator table (one row per county, same index) from rasters and an optional attribute table.

    Rasters of any size are streamed (:mod:`layers.zonal`): the land cover by exactextract itself, the DEM block by
    block; ``memory_mb`` bounds the cells held at once. Values are checked first (:mod:`zoning.legends`).
    ``cluster``: the raster indicators of groups of counties computed on a Dask cluster, each reading its window.
    """
    ind, info = raster_indicators(counties, rasters, model, progress, legend or legends.LEGENDS["igbp"], memory_mb,
                                  cluster)
    return people(ind, info, counties, attributes, model, place_population)


def raster_indicators(counties: gpd.GeoDataFrame, rasters: dict[str, str], model: model_mod.Model,
                      progress: Callable | None, legend: legends.Legend, memory_mb: float, cluster=None):
    """``area_km2`` and the indicators of every raster: the plan (every raster against all the counties), the
    groups of counties (:func:`.executors.county_groups`) through the executor, and the reduce."""
    for kind, path in rasters.items():  # the checks that need every county, made once here
        rinfo = lraster.raster_info(path, kind)
        box = tiling.to_crs_box(tuple(shapely.total_bounds(counties.geometry.values)), counties.crs,
                                rinfo["crs"].to_wkt())
        validate.check_overlap(box, rinfo["bounds"], f"counties ({counties.attrs.get('source', '')})",
                               f"{kind} raster {path}")
    parts, info = [], {"rasters": {}}
    with executor(cluster) as ex:
        ex.check_access(rasters.values())
        # the equal-area projection is fitted to the counties' extent: all of them, beside the rasters
        area = ex.pool.submit(areas.fast_area, counties.geometry.values, counties.crs)
        groups = county_groups(ex, shapely.bounds(counties.geometry.values).T)
        rasters = {kind: str(Path(path).absolute()) for kind, path in rasters.items()}  # workers: folders of their own
        jobs = ((counties.iloc[g][[counties.geometry.name]], rasters, model, legend, memory_mb,
                 progress if ex.local else None) for g in groups)
        for i, (df, inf) in enumerate(ex.map(_group_indicators, jobs, "raster indicators")):
            parts.append(df)
            for kind, r in inf.items():
                info["rasters"].setdefault(kind, {**r, "seconds": 0.0})["seconds"] += r["seconds"]
            if len(groups) > 1:
                record.step(progress, "raster indicators (groups of counties)", i + 1, len(groups))
        info.update(ex.info())
        area = area.result() / 1e6
    for r in info["rasters"].values():
        r["seconds"] = round(r["seconds"], 3)
    ind = pd.concat([pd.DataFrame({"area_km2": area}, index=counties.index),
                     pd.concat(parts).loc[counties.index]], axis=1)
    for kind, col in (("landcover", "landcover_valid_share"), ("dem", "dem_valid_share")):
        if kind in rasters and col in ind and not ind[col].fillna(0).gt(0).any():
            raise DataError(f"{kind} raster {rasters[kind]}: no valid cells under the counties (all nodata). Check "
                            "the raster's nodata value and that it covers the study area.")
    return ind, info


def _group_indicators(job):
    """The step of a group of counties (all of them in this process): every raster's indicators, the rasters read
    at the same time on two threads with the memory budget shared between them."""
    counties, rasters, model, legend, memory_mb, progress = job
    projected: dict[str, np.ndarray] = {}  # counties in each raster CRS, transformed once
    todo = []
    for kind, path in rasters.items():
        rinfo = lraster.raster_info(path, kind)
        target = CRS.from_user_input(rinfo["crs"].to_wkt())
        if target.to_wkt() not in projected:
            projected[target.to_wkt()] = areas.to_crs(counties.geometry.values, counties.crs, target)
            if counties.crs != target:
                log.info("reprojecting counties from %s to the %s raster's CRS %s for zonal statistics",
                         counties.crs.to_string(), kind, target.to_string())
        geoms = projected[target.to_wkt()]
        todo.append((kind, path, rinfo, target, geoms, tuple(shapely.total_bounds(geoms))))
    share = memory_mb / max(1, len(todo))
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(_raster, *t, legend, model, share, progress) for t in todo]
        frames, info = [], {}
        for (kind, path, rinfo, *_), fut in zip(todo, futures):
            df, rinfo_k = fut.result()
            df.index = counties.index
            info[kind] = {"path": str(path), "shape": list(rinfo["shape"]), **rinfo_k}
            frames.append(df)
    return pd.concat(frames, axis=1) if frames else pd.DataFrame(index=counties.index), info


def _raster(kind, path, rinfo, target, geoms, bounds, legend, model, memory_mb: float, progress):
    """Indicators of one raster, streamed."""
    t0 = time.perf_counter()
    h, w = rinfo["shape"]
    log.info("%s raster %s: %s × %s cells, streamed (about %.0f MB at a time)", kind, Path(path).name,
             f"{w:,}", f"{h:,}", memory_mb)
    try:
        with lzonal.north_up(Path(path)) as p:
            reader = raster_kinds.KINDS[kind].reader
            if reader == "categorical":
                df, rinfo_k = _landcover(p, geoms, legend, str(path), memory_mb, progress)
            elif reader in ("sum", "mean"):
                df, rinfo_k = _summed(kind, reader, p, geoms, str(path), memory_mb, progress)
            else:
                df, rinfo_k = _dem(p, geoms, target, bounds, str(path), rinfo["unit"], model, memory_mb, progress)
    except MemoryError:
        raise DataError(f"{kind} raster {path} ({w:,} × {h:,} cells): out of memory even in blocks of about "
                        f"{memory_mb:.0f} MB. Lower memory_mb (--memory-mb) or free memory.") from None
    rinfo_k["seconds"] = round(time.perf_counter() - t0, 3)
    return df, rinfo_k


def _summed(kind: str, reader: str, path: Path, geoms, source: str, memory_mb: float, progress):
    """Per county, the coverage-weighted sum of the cells (people per cell, radiance) or their mean (an index)."""
    total, cells, low = lzonal.raster_sums(
        path, geoms, max_cells=memory_mb * 1e6 / 200,
        progress=lambda f: record.step(progress, f"{kind} (counties)", int(round(f * len(geoms))), len(geoms)))
    if reader == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            return pd.DataFrame({f"{kind}_mean": np.where(cells > 0, total / cells, np.nan)}), \
                {"statistic": "coverage-weighted mean"}
    if np.nanmin(low, initial=0.0) < 0:
        raise DataError(f"{kind} raster {source}: negative values (down to {np.nanmin(low):g}) — probably an "
                        "undeclared nodata value. Declare it (gdal_edit.py -a_nodata VALUE) and run again.")
    return pd.DataFrame({f"{kind}_sum": np.where(cells > 0, total, np.nan)}), {"statistic": "coverage-weighted sum"}


def _landcover(path: Path, geoms, legend, source: str, memory_mb: float, progress):
    codes, fracs, cells, nodata = lzonal.landcover_fractions(
        path, geoms, max_cells=memory_mb * 1e6 / 200,  # ~5 M cells per GB: measured, with headroom
        progress=lambda f: record.step(progress, "land cover (counties)", int(round(f * len(geoms))), len(geoms)))
    flat_codes = np.concatenate(codes) if codes else np.zeros(0)
    weight = np.concatenate([f * c for f, c in zip(fracs, cells)]) if codes else np.zeros(0)
    for wmsg in legends.check_codes(flat_codes, weight, legend, source, nodata):
        log.warning("%s", wmsg)
    df = ind_mod.shares_from_fractions(codes, fracs, cells, legend)
    return df, {"legend": legend.name, "nodata": nodata}


def _dem(path: Path, geoms, crs, bounds, source: str, unit, model, memory_mb: float, progress):
    block = max(256, int(np.sqrt(memory_mb * 1e6 / 200)))
    total = lzonal.count_blocks(path, bounds, block)
    said: set = set()
    done = [0]

    def cleaned():
        for data, tr, halo in lzonal.iter_blocks(path, bounds, block):
            data, warns = legends.dem_metres(data, source, unit)
            for wmsg in warns:
                kind = wmsg.split(":", 1)[1][:12]
                if kind not in said:  # once per kind, not once per block
                    said.add(kind)
                    log.warning("%s", wmsg)
            yield data, tr, halo

    def tick():
        done[0] += 1
        record.step(progress, "DEM (blocks)", done[0], total)

    df, method = ind_mod.terrain_from_blocks(np.asarray(geoms, dtype=object), cleaned(), crs,
                                             model.settings["coarse_steep_relief_m"], tick)
    return df, {"steep_method": method, "unit": unit or "metre", "block_cells": block}


def _city_distance(cty: gpd.GeoDataFrame, names: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each county's administrative type and 区位: how far it is from a city district (the prefecture-level cities'
    core, from the names; 0 for a district)."""
    admin = ind_mod.admin_type(names)
    central = (np.asarray(admin) == "DISTRICT")
    distance = ind_mod.city_distance_km(
        areas.to_crs(shapely.point_on_surface(cty.geometry.values), cty.crs, areas.CHINA_ALBERS),
        areas.to_crs(cty.geometry.values[central], cty.crs, areas.CHINA_ALBERS))
    distance = np.where(central, 0.0, distance)
    return admin, distance


def classify(counties, rasters: dict[str, str], *, progress: Callable | None = None, **options) -> gpd.GeoDataFrame:
    """Classify county polygons into main function zones (城镇化地区 / 农产品主产区 / 重点生态功能区).

    Parameters
    ----------
    counties : GeoDataFrame or vector path (``PATH`` or ``PATH:LAYER``)
    rasters : ``{"landcover": PATH, "dem": PATH, "population": PATH, "nightlights": PATH}`` (only landcover
        required; :data:`zoning.rasters.KINDS`)
    progress : ``progress(stage, done, total)``; return False to cancel (raises :class:`zoning.errors.Cancelled`)
    **options : :class:`~zoning.pipeline.config.ClassifyOptions`, among them
        ``attributes`` (DataFrame or CSV/XLSX path joined on county id; overrides the census field by field),
        ``census`` (the built-in 2020 census where ``attributes`` gives no figure, default True),
        ``model`` (:class:`zoning.model.Model`, a model TOML path, or None for the shipped default),
        ``legend`` (``igbp``, ``esa_worldcover``, ``clcd``, ``globeland30`` or a legend TOML),
        ``points`` (``{"population": "PATH[:FIELD]"}``), ``default_places``, ``memory_mb``,
        ``sensitivity``/``spread``/``seed``, ``cluster`` (``local:N`` or ``tcp://HOST:PORT``), ``id_field``,
        ``name_field``, ``assume_crs``, ``encoding``.

    Returns
    -------
    GeoDataFrame: the ``zones`` layer, one row per county (``attrs["info"]`` holds the run details).
    """
    zones, info = classify_counties(counties, rasters, ClassifyOptions.of(options), progress)
    zones.attrs["info"] = info
    return zones


def classify_counties(counties, rasters: dict, opts: ClassifyOptions, progress: Callable | None = None):
    """:func:`classify` with its options resolved: the zones and the run facts (``info``)."""
    model = opts.model if isinstance(opts.model, model_mod.Model) else load_model(opts.model)
    legend = opts.legend if isinstance(opts.legend, legends.Legend) else load_legend(opts.legend)
    read, points, cluster = opts.reading(), opts.points, opts.cluster
    unknown = set(rasters) - set(raster_kinds.KINDS)
    if unknown:
        raise UsageError(f"--raster: unknown kind(s) {', '.join(sorted(unknown))}; use "
                         f"{', '.join(k + '=PATH' for k in raster_kinds.KINDS)}")
    unknown = set(points or {}) - {"population"}
    if unknown:
        raise UsageError(f"--points: unknown kind(s) {', '.join(sorted(unknown))}; use population=PATH[:FIELD]")
    if "landcover" not in rasters:
        raise UsageError("--raster landcover=PATH is required (an IGBP-coded land-cover raster such as MCD12C1)")
    cty = load_counties(counties, read, name_field=opts.name_field)
    names = cty["_name"]
    attrs = read_attributes(opts.attributes, cty, opts.header_row) if opts.attributes is not None else None
    user_source = "statistics table" if opts.attributes is None or isinstance(opts.attributes, pd.DataFrame) else \
        Path(str(opts.attributes)).name
    origin = None
    if opts.census:
        cstats, clabel, census_info = census_figures(cty)
        attrs, origin = census_mod.overlay(cstats.drop(columns="population"), attrs, user_source, clabel)
        attrs["census_population"] = cstats["population"]  # after the user's own sources of people (people.people)
    places = None
    if points and points.get("population"):
        places = place_population(points["population"], cty, read)
    elif opts.default_places:  # where neither statistics nor a raster have a figure, where people live from GeoNames
        from layers.places import PROVENANCE, default_places as embedded

        pts = embedded()
        geoms = areas.to_crs(pts.geometry.values, pts.crs, cty.crs)
        places = ind_mod.sum_points(np.asarray(cty.geometry.values), np.asarray(geoms),
                                    pts["population"].to_numpy(dtype=float))
        if opts.census:  # a partial sum of places is no match for a census count
            places = np.where(cstats["population"].notna().to_numpy(), 0.0, places)
        log.info("embedded populated places: %d counties hold one (--no-default-places turns them off)",
                 int((places > 0).sum()))
    log.info("computing indicators for %d counties", len(cty))
    with ThreadPoolExecutor(max_workers=1) as beside:  # 区位 needs the outlines only: worked out beside the rasters
        located = beside.submit(_city_distance, cty, names)
        ind, info = compute_indicators(cty, rasters, model, attrs, progress, legend, opts.memory_mb, places, cluster)
        admin, distance = located.result()
    if places is not None and not (points and points.get("population")):
        info["default_places"] = {**PROVENANCE, "counties_with_a_place": int((places > 0).sum())}
    if "pop_density_source" in ind:  # the statistics by their name, the census by its source
        src = ind["pop_density_source"].replace({"statistics": user_source})
        if opts.census:
            src = src.mask(src.eq("census 2020"), clabel)
            info["census"] = census_info
        ind["pop_density_source"] = src
    if origin is not None:  # which statistics figure came from where, county by county
        origin.insert(0, "population", ind.get("pop_density_source", pd.Series("", index=ind.index)).fillna(""))
        ind["statistics_source"] = census_mod.describe(origin)
    ind["admin_type"], ind["city_distance_km"] = admin, distance
    log.info("classifying with model %s", model.identity)
    res = cls.classify(ind, model)
    zones = gpd.GeoDataFrame({"county_id": cty["_id"].astype(str), "name": names}, index=cty.index,
                             geometry=cty.geometry.values, crs=cty.crs)
    for c in res.columns:
        zones[c] = res[c]
    for c in ind.columns:
        if c not in zones.columns:
            zones[c] = ind[c]
    if opts.sensitivity:
        log.info("sensitivity: %d perturbed runs (±%.0f%%, seed %d)", opts.sensitivity, opts.spread * 100,
                 opts.seed)
        s = cls.sensitivity(ind, model, opts.sensitivity, opts.spread, opts.seed, res["zone"].to_numpy(),
                            on_run=lambda done, total: record.step(progress, "sensitivity runs", done, total))
        zones["stability"] = s["stability"]
        zones["alt_zone"] = s["alt_zone"]
        zones["review"], zones["review_reasons"] = cls.flag_unstable(
            zones["review"].astype(bool), zones["review_reasons"].fillna(""), zones["stability"],
            model.settings["min_stability"])
    zones["review"] = zones["review"].astype(bool)
    zones["low_confidence"] = zones["low_confidence"].astype(bool)
    if opts.quota is not None:  # the provincial and national quotas, at the least cost to the scores
        from . import quotas

        zones, info["quota"] = quotas.apply(zones, cty.drop(columns=cty.geometry.name), opts.quota)
    zones = zones.reset_index(drop=True)
    zones = zones[outputs.columns("zones", zones.columns) + ["geometry"]]
    info.update({"model": model.id, "model_sha256": model.sha256, "model_source": model.source,
                 "counties": cty.attrs["report"],
                 "name_field": cty.attrs.get("name_field"),
                 "area_method": "ellipsoidal (GRS80), Albers equal-area fitted to the counties",
                 "crs": cty.crs.to_string()})
    return zones, info




def run_classify(counties, rasters, output, overwrite: bool = False, progress=None, **options):
    """``zoning classify``: classify and write the ``zones`` layer (options: :class:`ClassifyOptions`). Returns
    (output path, zones)."""
    opts = ClassifyOptions.of(options)
    inputs = input_paths(counties, opts.attributes) + [Path(p) for p in rasters.values()]
    if opts.quota is not None:  # a bad quota file fails before any work
        from . import quotas

        opts = replace(opts, quota=quotas.load(opts.quota))
        inputs += [Path(opts.quota.source)] + ([Path(opts.quota.lock)] if opts.quota.lock else [])
    from layers.files import check_target

    check_target(output, overwrite, inputs, suffix=".gpkg")
    # a bad model or legend, or a malformed cluster address, fails before any work
    opts = replace(opts, model=load_model(opts.model) if not isinstance(opts.model, model_mod.Model) else opts.model,
                   legend=load_legend(opts.legend) if not isinstance(opts.legend, legends.Legend) else opts.legend)
    if isinstance(opts.cluster, str):
        from .cluster import parse_address

        parse_address(opts.cluster)
    zones, info = classify_counties(counties, rasters, opts, progress)
    meta = {**record.metadata(), **{k: v for k, v in info.items() if k != "counties"}}
    path = gpkg.write_layers(output, {"zones": zones}, overwrite, meta, styles.qml_for_layers({"zones": zones}),
                             inputs=inputs)
    zones.attrs["info"] = info
    return path, zones
