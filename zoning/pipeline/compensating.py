"""``zoning compensate``: counties and a land-cover raster in, the ``compensation`` layer out — ecosystem service
value per service (:mod:`zoning.compensation`), the compensation priority and the transfer terms the tool can
supply. The land cover is read by the classification's streaming engine, in this process or on a cluster."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers import gpkg, styles
from layers import raster as lraster
from layers import vector as lvector
from layers import zonal as lzonal

from .. import areas, controllines, legends, outputs, tables, validate
from .. import compensation as comp
from ..errors import UsageError
from . import record
from .comparing import read_zones
from .config import MAX_MEMORY_MB, ReadOptions, load_legend, options_of
from .executors import county_groups, executor
from .inputs import input_paths, load_counties, load_polygons, read_attributes
from .people import census_figures

log = logging.getLogger("zoning")


@dataclass(frozen=True)
class CompensateOptions:
    """How ``zoning compensate`` runs (``zoning compensate --help``): one value per option.

    ``legend``: a shipped legend name or a legend TOML; ``types``: a TOML mapping codes to ecosystem types (default:
    the shipped mapping of the legend); ``equivalent_value``: D in yuan/hm² (default: the factor table's, 3,406.50);
    ``crops``: a table of the main grain crops from which D is computed instead; ``transfer_coefficient``: times
    the attributes' ``fiscal_gap``, an estimate of the transfer.
    """

    attributes: object = None
    zones: object = None
    red_line: object = None
    legend: object = None
    types: str | None = None
    equivalent_value: float | None = None
    crops: str | None = None
    transfer_coefficient: float | None = None
    census: bool = True
    memory_mb: float = 1024.0
    cluster: object = None
    id_field: str | None = None
    name_field: str | None = None
    assume_crs: str | None = None
    encoding: str | None = None
    header_row: int | None = None
    read: ReadOptions | None = None

    @classmethod
    def of(cls, options: dict) -> CompensateOptions:
        return options_of(cls, options, "compensation")

    def __post_init__(self) -> None:
        if self.equivalent_value is not None:
            comp.check_equivalent_value(self.equivalent_value)
        if self.equivalent_value is not None and self.crops:
            raise UsageError("--equivalent-value and --crops both give the value of one standard equivalent; give one")
        if self.transfer_coefficient is not None and not (np.isfinite(self.transfer_coefficient) and
                                                          self.transfer_coefficient >= 0):
            raise UsageError(f"--transfer-coefficient {self.transfer_coefficient}: expected a number ≥ 0")
        if not 64 <= self.memory_mb <= MAX_MEMORY_MB:
            raise UsageError(f"--memory-mb {self.memory_mb:g}: expected 64 to {MAX_MEMORY_MB:,} MB")

    def reading(self) -> ReadOptions:
        return self.read or ReadOptions(None, {"county": self.id_field} if self.id_field else {}, self.assume_crs, self.encoding)


def method(opts: CompensateOptions) -> tuple[comp.Factors, comp.TypeMap, legends.Legend, float, str]:
    """The factor table, the type mapping, the legend and D (with where D comes from), every file checked."""
    factors = comp.load_factors()
    legend = opts.legend if isinstance(opts.legend, legends.Legend) else load_legend(opts.legend)
    if opts.types:
        p = Path(opts.types)
        if not p.exists():
            raise UsageError(f"--types {p}: file not found")
        types = comp.load_types(legend.name, factors, p.read_text(encoding="utf-8-sig"), str(p))
    else:
        types = comp.load_types(legend.name, factors)
    if opts.equivalent_value is not None:
        d, d_source = float(opts.equivalent_value), "--equivalent-value"
    elif opts.crops:
        d, d_source = comp.equivalent_value(_crop_table(opts.crops)), f"computed from {opts.crops}"
    else:
        d, d_source = factors.equivalent_value, factors.equivalent_value_source
    return factors, types, legend, d, d_source


def _crop_table(path) -> pd.DataFrame:
    if not Path(path).exists():
        raise UsageError(f"--crops {path}: file not found")
    table, notes = tables.clean_table(lvector.read_table(path, role="crops"), f"crop table {path}", comp.CROP_COLUMNS)
    for n in notes:
        log.warning("%s", n)
    return table


def _fractions_of(job):
    """The step of a group of counties (all of them in this process): their land-cover codes and true-area
    fractions."""
    path, geoms, max_cells, progress = job
    geoms = shapely.from_wkb(geoms) if len(geoms) and isinstance(geoms[0], bytes) else geoms  # WKB to a cluster
    tick = None if progress is None else \
        (lambda f: record.step(progress, "land cover (counties)", int(round(f * len(geoms))), len(geoms)))
    with lzonal.north_up(Path(path)) as p:
        codes, fracs, _, nodata = lzonal.landcover_fractions(p, geoms, max_cells, progress=tick)
    return codes, fracs, nodata


def land_cover(cty: gpd.GeoDataFrame, path: str, opts: CompensateOptions, progress: Callable | None):
    """Per county, the land-cover codes and their true-area fractions (nodata included), and the raster's nodata;
    streamed in memory ``opts.memory_mb``, on a cluster when one is given."""
    rinfo = lraster.raster_info(path, "landcover")
    geoms = areas.to_crs(cty.geometry.values, cty.crs, rinfo["crs"].to_wkt())
    validate.check_overlap(tuple(shapely.total_bounds(geoms)), rinfo["bounds"],
                           f"counties ({cty.attrs.get('source', '')})", f"landcover raster {path}")
    max_cells = opts.memory_mb * 1e6 / 200  # as the classification: ~5 M cells per GB, measured
    codes, fracs, nodata = [None] * len(geoms), [None] * len(geoms), None
    with executor(opts.cluster) as ex:
        ex.check_access([path])
        groups = county_groups(ex, shapely.bounds(geoms).T)
        jobs = ((str(Path(path).absolute()), geoms[g] if ex.local else shapely.to_wkb(geoms[g]), max_cells,
                 progress if ex.local else None)
                for g in groups)
        for i, (g, (c, f, nodata)) in enumerate(zip(groups, ex.map(_fractions_of, jobs, "land cover"))):
            for j, k in enumerate(g):
                codes[k], fracs[k] = c[j], f[j]
            if len(groups) > 1:
                record.step(progress, "land cover (groups of counties)", i + 1, len(groups))
    return codes, fracs, nodata


def red_line_km2(cty: gpd.GeoDataFrame, red_line, read: ReadOptions) -> np.ndarray:
    """Area of the red line in each county, km², overlapping red-line features counted once (ellipsoidal)."""
    rl = load_polygons(red_line, "red_line", read, "red_line")
    rl_geoms = areas.to_crs(rl.geometry.values, rl.crs, cty.crs)
    c_geoms = np.asarray(cty.geometry.values)
    ci, ri = shapely.STRtree(rl_geoms).query(c_geoms, predicate="intersects")
    out = np.zeros(len(cty))
    if len(ci):
        keys, merged = controllines.group_reduce(ci, shapely.intersection(c_geoms[ci], rl_geoms[ri]))
        out[keys] = areas.fast_area(merged, cty.crs) / 1e6
    return out


def compensate_counties(counties, landcover: str, opts: CompensateOptions, progress: Callable | None = None):
    """The ``compensation`` layer and the run facts."""
    factors, types, legend, d, d_source = method(opts)
    read = opts.reading()
    cty = load_counties(counties, read, name_field=opts.name_field)
    attrs = read_attributes(opts.attributes, cty, opts.header_row) if opts.attributes is not None else \
        pd.DataFrame(index=cty.index)
    info = {"legend": legend.name, "types": types.source, "factors": factors.name,
            "equivalent_value_yuan_per_ha": d, "equivalent_value_source": d_source}
    pop = pd.to_numeric(attrs.get("population", pd.Series(np.nan, index=cty.index)), errors="coerce")
    if opts.census:
        cstats, _, census_info = census_figures(cty)
        pop = pop.fillna(cstats["population"])
        info["census"] = {k: census_info[k] for k in ("matched", "counties")}
    gdp = pd.to_numeric(attrs.get("gdp", pd.Series(np.nan, index=cty.index)), errors="coerce")
    if "gdp_per_capita" in attrs:
        gdp = gdp.fillna(pd.to_numeric(attrs["gdp_per_capita"], errors="coerce") * pop)
    log.info("land cover %s: %d counties, legend %s, one standard equivalent %.2f yuan/hm² (%s)", landcover, len(cty),
             legend.name, d, d_source)
    codes, fracs, nodata = land_cover(cty, landcover, opts, progress)
    area_ha = areas.fast_area(cty.geometry.values, cty.crs) / 1e4
    flat = np.concatenate(codes) if codes else np.zeros(0)
    weight = np.concatenate([f * a for f, a in zip(fracs, area_ha)]) if codes else np.zeros(0)
    comp.check_mapped(flat, weight, types, tuple(legend.nodata) + ((nodata,) if nodata is not None else ()),
                      str(landcover))
    # the mapping decides which codes count (a --types file may add some): the legend check is left the rest, a
    # resampled (non-integer) raster and an undeclared fill
    known = legends.Legend(legend.name, {c: "natural" for c in [*types.shares, *types.valueless]}, legend.nodata,
                           legend.source)
    for w in legends.check_codes(flat, weight, known, str(landcover), nodata):
        log.warning("%s", w)
    paddy = pd.to_numeric(attrs["paddy_share"], errors="coerce").to_numpy() / 100 if "paddy_share" in attrs else None
    type_ha = comp.type_areas(codes, fracs, area_ha, types, factors, paddy)
    type_ha.index = cty.index
    values = comp.service_values(type_ha, factors, d)
    out = gpd.GeoDataFrame({"county_id": cty["_id"].astype(str), "name": cty["_name"]}, index=cty.index,
                           geometry=cty.geometry.values, crs=cty.crs)
    if opts.zones is not None:
        zones = opts.zones if isinstance(opts.zones, pd.DataFrame) else read_zones(opts.zones)
        z = zones.assign(county_id=zones["county_id"].astype(str)).drop_duplicates("county_id")
        out["zone"] = out["county_id"].map(z.set_index("county_id")["zone"])
        out["zone_zh"] = out["zone"].map({k: c.zh for k, c in outputs.ZONES.items()})
        info["zones"] = "the run's zones" if isinstance(opts.zones, pd.DataFrame) else str(opts.zones)
    out = pd.concat([out, values], axis=1)
    area_km2 = area_ha / 100
    out["area_km2"] = area_km2
    out["esv_per_km2_yuan"] = values["esv_yuan"] / area_km2
    out["population"] = pop
    out["esv_per_capita_yuan"] = values["esv_yuan"] / pop.where(pop > 0)
    out["gdp"] = gdp
    pr = comp.priority(values["esv_nonmarket_yuan"], gdp if gdp.notna().any() else None, pop)
    out = pd.concat([out, pr], axis=1)
    info["priority_basis"] = "non-market ESV per yuan of GDP" if gdp.notna().any() else \
        "non-market ESV per resident"
    eco = [k for k, t in factors.types.items() if t["ecological"]]
    out["ecological_land_km2"] = type_ha[eco].sum(axis=1) / 100
    if opts.red_line is not None:
        out["red_line_km2"] = red_line_km2(cty, opts.red_line, read)
        out["red_line_share"] = out["red_line_km2"] / area_km2
        info["red_line"] = str(opts.red_line)
    if "fiscal_gap" in attrs:
        out["fiscal_gap"] = pd.to_numeric(attrs["fiscal_gap"], errors="coerce")
        if opts.transfer_coefficient is not None:
            out["transfer_estimate_yuan"] = out["fiscal_gap"] * opts.transfer_coefficient
            info["transfer_coefficient"] = opts.transfer_coefficient
    reason = comp.reasons(comp.type_values(type_ha, factors, d), factors)
    no_pop = pop.isna() | ~(pop > 0)
    reason = reason.where(~no_pop, reason + "；无常住人口数据,人均价值为空 · no population figure: no per-capita value")
    out["reason"] = reason
    for k in factors.types:
        out[f"{k}_ha"] = type_ha[k]
    out = out.reset_index(drop=True)
    out = out[outputs.columns("compensation", out.columns) + ["geometry"]]
    info["counties"] = len(out)
    info["esv_total_yuan"] = float(values["esv_yuan"].sum())
    return out, info


def compensate(counties, landcover: str, *, progress: Callable | None = None, **options) -> gpd.GeoDataFrame:
    """Ecosystem service value and compensation priority of every county (the ``compensation`` layer).

    Parameters
    ----------
    counties : GeoDataFrame or vector path
    landcover : land-cover raster path (its legend: ``legend``)
    **options : :class:`CompensateOptions`
    """
    layer, info = compensate_counties(counties, landcover, CompensateOptions.of(options), progress)
    layer.attrs["info"] = info
    return layer


def run_compensate(counties, landcover: str, output, overwrite: bool = False, progress=None, **options):
    """``zoning compensate``: compute and write the ``compensation`` layer. Returns (output path, layer)."""
    from layers.files import check_target

    opts = CompensateOptions.of(options)
    inputs = input_paths(counties, opts.attributes, opts.zones, opts.red_line, opts.crops) + [Path(landcover)]
    check_target(output, overwrite, inputs, suffix=".gpkg")
    method(opts)  # a bad mapping, legend, crop table or D fails before any work
    if isinstance(opts.cluster, str):
        from .cluster import parse_address

        parse_address(opts.cluster)
    layer, info = compensate_counties(counties, landcover, opts, progress)
    meta = {**record.metadata(), "compensation": info}
    path = gpkg.write_layers(output, {"compensation": layer}, overwrite, meta,
                             styles.qml_for_layers({"compensation": layer}), inputs=inputs)
    return path, layer
