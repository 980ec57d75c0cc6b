"""Where each county's people and statistics come from: the user's table, a population raster, populated places,
the built-in 2020 census — each figure from the first source that has one, and said per county."""
from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd

from layers import vector as lvector

from .. import areas, census as census_mod, indicators as ind_mod, rasters as raster_kinds, validate
from ..errors import DataError
from .config import ReadOptions

log = logging.getLogger("zoning")
POINT_FIELDS = ("population", "pop", "POP", "人口", "pop_max")


def census_figures(cty: gpd.GeoDataFrame) -> tuple[pd.DataFrame, pd.Series, dict]:
    """The built-in census figures of each county (NaN where it has no row), a label per county naming the source
    ("census 2020 (leiii)"), and what matched, for the log and the run record."""
    from layers.census import builtin_census

    table, changes, sources = builtin_census()
    t = census_mod.apply_code_changes(census_mod.fold_statistical_zones(census_mod.prepare(table)), changes)
    rows, report = census_mod.match(cty["_id"], t)
    label = ("census 2020 (" + rows["source"].fillna("") + ")").where(rows["source"].notna(), "")
    names = cty["_name"].where(cty["_name"].notna(), "").astype(str)
    gone = set(report["missing"])
    missing = [f"{i} {n}".strip() for i, n in zip(cty["_id"].astype(str), names) if i in gone]
    log.info("census 2020: %d of %d counties matched (%d through a code change, %d with statistical zones folded "
             "in)", report["matched"], report["counties"], report["via_code_change"],
             report["with_statistical_zones"])
    if missing:
        log.warning("census 2020: %d counties have no census row (no statistics unless --attributes gives them): "
                    "%s", len(missing), ", ".join(missing[:12]) + (" …" if len(missing) > 12 else ""))
    info = {**{k: v for k, v in report.items() if k != "missing"}, "missing": missing, "sources": sources,
            "file": "zoning/data/census_county_2020.csv", "made_by": "sample_data/make_census.py"}
    return census_mod.statistics(rows), label, info


def people(ind: pd.DataFrame, info: dict, counties, attributes, model, place_population):
    area = ind["area_km2"].to_numpy()
    # people from every source the user has: the statistics table first, then a population raster, then places
    pop_sources = []
    if attributes is not None:
        att = ind_mod.attribute_indicators(attributes, ind["area_km2"], model.settings["national_gdp_per_capita"])
        pop_sources.append(("statistics", att.pop("pop_density")))
        ind = pd.concat([ind, att], axis=1)
    extra = pd.DataFrame(index=counties.index)
    for kind in raster_kinds.KINDS.values():  # the summed and averaged rasters' indicators
        if f"{kind.name}_sum" in ind:
            extra[kind.indicator] = ind_mod.per_km2(ind.pop(f"{kind.name}_sum").to_numpy(), area)
        elif f"{kind.name}_mean" in ind:
            extra[kind.indicator] = ind.pop(f"{kind.name}_mean").to_numpy()
    if "pop_density" in extra:
        pop_sources.append(("population raster", extra.pop("pop_density")))
    if place_population is not None:
        places = pd.Series(np.asarray(place_population) / area, index=counties.index)
        pop_sources.append(("populated places", places.where(places > 0)))
    if attributes is not None and "census_population" in attributes:  # built in: after what the user brings
        pop_sources.append(("census 2020", attributes["census_population"] / area))
    if pop_sources:
        ind["pop_density"], ind["pop_density_source"] = ind_mod.combine_sources(pop_sources)
    for c in extra.columns:
        ind[c] = extra[c]
    return ind, info


def place_population(spec: str, counties: gpd.GeoDataFrame, read: ReadOptions) -> np.ndarray:
    """People per county from populated places: ``PATH[:FIELD]`` (PATH may be ``FILE:LAYER``)."""
    field = None
    src = str(spec)
    if not lvector.parse_source(src).path.exists() or (":" in src and lvector.parse_source(src).layer):
        head, _, tail = src.rpartition(":")
        if head and lvector.parse_source(head).path.exists() and "/" not in tail:
            src, field = head, tail
    pts = lvector.read_vector(src, encoding=read.encoding, role="populated places")
    field = validate.pick_field(pts, field, POINT_FIELDS, "populated places", "--points population=PATH:FIELD")
    if field is None:
        raise DataError(f"populated places {pts.attrs['source']}: no population field ({', '.join(POINT_FIELDS)}); "
                        "name it as --points population=PATH:FIELD.")
    pts = validate.ensure_crs(pts, "populated places", read.assume_crs)
    geoms = areas.to_crs(pts.geometry.values, pts.crs, counties.crs)
    values = pd.to_numeric(pts[field], errors="coerce").to_numpy(dtype=float)
    log.info("populated places %s: %d points, field %s", pts.attrs["source"], len(pts), field)
    return ind_mod.sum_points(np.asarray(counties.geometry.values), np.asarray(geoms), values)
