"""Read and validate inputs through :mod:`layers`: polygon layers with ids, counties, attribute tables."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers import parts as lparts, vector as lvector
from layers.postgis import is_uri

from .. import areas, indicators as ind_mod, tables, tiling, validate, violations as vio
from ..errors import DataError
from .config import ReadOptions

log = logging.getLogger("zoning")

COUNTY_ID_FIELDS = ("county_id", "adcode", "code", "id")
COUNTY_NAME_FIELDS = ("name", "county_name", "district", "NAME")


def _frame(spec, role: str, read: ReadOptions) -> gpd.GeoDataFrame:
    if isinstance(spec, gpd.GeoDataFrame):
        gdf = spec.copy()
        gdf.attrs.setdefault("source", f"{role} (GeoDataFrame)")
        return gdf
    return lvector.read_vector(spec, encoding=read.encoding, role=role)


def load_polygons(spec, role: str, read: ReadOptions, id_role: str, candidates: tuple[str, ...] = (),
                  require_id: bool = False, allow_empty: bool = False) -> gpd.GeoDataFrame:
    """Read a polygon layer (path or GeoDataFrame), give it a CRS, repair it and identify its features (``_id``).

    The id field is the layer's own option (``ReadOptions.ids``), else ``--id-field``, else the first of
    ``candidates``; without any, plain layers fall back to the feature id (``id`` when absent).
    """
    gdf = _frame(spec, role, read)
    if len(gdf) == 0 and not allow_empty:
        raise DataError(f"{role} layer {gdf.attrs['source']} has no features.")
    field = _id_field(gdf, role, read, id_role, candidates, require_id)
    gdf = validate.ensure_crs(gdf, role, read.assume_crs)
    gdf, report = validate.clean_polygons(gdf, role, field, require_id=require_id)
    if len(gdf) == 0 and not allow_empty:
        raise DataError(f"{role} layer {gdf.attrs.get('source')}: no usable polygons after dropping empty ones.")
    gdf.attrs["report"] = {**report, "id_field": field}
    return gdf


def _id_field(gdf, role: str, read: ReadOptions, id_role: str, candidates: tuple[str, ...],
              require_id: bool) -> str | None:
    """The id field of a layer by the rules of :func:`load_polygons` (None: the feature index)."""
    explicit = read.ids.get(id_role)
    default = read.id_field
    if candidates:
        # --id-field is the default for every layer; counties without that field keep their usual id fields
        wanted = explicit or (default if default and default in gdf.columns else None)
        field = validate.pick_field(gdf, wanted, candidates, role, f"--{id_role.replace('_', '-')}-id")
    else:
        field = explicit or default or "id"
        if field not in gdf.columns:
            if explicit is None and (default is None or default == "id"):
                field = None  # the default: fall back to the feature id
            else:
                validate.require_field(gdf, field, role, f"--{id_role.replace('_', '-')}-id")
    if require_id and field is None:
        raise DataError(f"{role} layer {gdf.attrs['source']}: none of the id fields {', '.join(candidates)} is "
                        f"present (fields: {', '.join(c for c in gdf.columns if c != 'geometry')}). "
                        f"Name the id field with --{id_role.replace('_', '-')}-id.")
    return field


def load_counties(spec, read: ReadOptions, role: str = "counties", name_field: str | None = None):
    """Counties with ``_id`` and ``_name``."""
    gdf = load_polygons(spec, role, read, "county", COUNTY_ID_FIELDS, require_id=True)
    nfield = validate.pick_field(gdf, name_field, COUNTY_NAME_FIELDS, role, "--name-field")
    gdf["_name"] = gdf[nfield].astype(str) if nfield else ""
    gdf.attrs["name_field"] = nfield
    return gdf


def counties_for_check(gdf: gpd.GeoDataFrame | None) -> vio.Counties | None:
    if gdf is None:
        return None
    alb = np.asarray(areas.to_crs(gdf.geometry.values, gdf.crs, areas.CHINA_ALBERS), dtype=object)
    shapely.prepare(alb)  # before the checks' threads share them (parts cut along county borders)
    extra = pd.DataFrame(gdf.drop(columns="geometry")).reset_index(drop=True)
    return vio.Counties(gdf["_id"].astype(str).to_numpy(dtype=object), gdf["_name"].to_numpy(dtype=object),
                        np.asarray(alb, dtype=object), extra)


def read_attributes(spec, counties: gpd.GeoDataFrame, header_row: int | None = None) -> pd.DataFrame:
    """Align an attribute table (path or DataFrame) to the counties by id; unreadable rows are reported."""
    if isinstance(spec, pd.DataFrame):
        raw, source = pd.DataFrame([list(spec.columns)] + spec.astype(object).values.tolist()), "attributes"
    else:
        raw, source = lvector.read_table(spec), str(spec)
    table, notes = tables.clean_table(raw, source, tuple(ind_mod.ATTRIBUTE_COLUMNS), header_row)
    for n in notes:
        log.warning("%s", n)
    bad = ind_mod.out_of_range(table)
    if bad:
        raise DataError(f"attributes {source}: {len(bad)} value(s) no county can have; correct them in the table "
                        "(nothing was written)", bad)
    return join_attributes(counties, table.drop(columns="_row"), source)


def join_attributes(counties: gpd.GeoDataFrame, table: pd.DataFrame, source: str) -> pd.DataFrame:
    """Align an attribute table to the counties by id (first column named like an id field, else the first)."""
    key = next((c for c in COUNTY_ID_FIELDS if c in table.columns), table.columns[0])
    t = table.copy()
    t[key] = t[key].astype(str).str.strip().str.removesuffix(".0")  # 510104.0 from a numeric cell is 510104
    dup = t[key][t[key].duplicated()]
    if len(dup):
        raise DataError(f"attributes {source}: duplicate county ids in column {key!r}: {', '.join(dup[:10])}")
    unknown = sorted(set(t[key]) - set(counties["_id"]))
    if unknown:
        log.warning("attributes %s: %d ids match no county (e.g. %s)", source, len(unknown), ", ".join(unknown[:5]))
    aligned = t.set_index(key).reindex(counties["_id"].to_numpy())
    aligned.index = counties.index
    log.info("attributes %s: %d of %d counties matched (column %s)", source,
             int(counties["_id"].isin(set(t[key])).sum()), len(counties), key)
    known = [c for c in aligned.columns if c in ind_mod.ATTRIBUTE_COLUMNS]
    if not known:
        raise DataError(f"attributes {source}: none of the expected columns "
                        f"({', '.join(ind_mod.ATTRIBUTE_COLUMNS)}) is present; columns are {', '.join(t.columns)}")
    return aligned[known]


@dataclass(frozen=True)
class PlannedLayer:
    """A polygon layer checked and planned on the client, read in parts by the workers (:func:`load_part`)."""

    plan: lparts.LayerPlan
    role: str
    id_field: str | None
    crs_wkt: str


def plan_polygons(spec, role: str, read: ReadOptions, id_role: str, candidates: tuple[str, ...] = (),
                  require_id: bool = False, check_ids: bool = True):
    """Check a polygon layer like :func:`load_polygons` without reading its geometry: fields, CRS and (with
    ``check_ids``) ids present and unique. Returns the :class:`PlannedLayer`, and every feature's fids and bounds."""
    plan, fids, box = lparts.plan_layer(spec, read.encoding, role)
    if plan.count == 0:
        raise DataError(f"{role} layer {plan.source} has no features.")
    head = gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in plan.columns}, geometry=[], crs=plan.crs_wkt)
    head.attrs["source"] = plan.source
    field = _id_field(head, role, read, id_role, candidates, require_id)
    head = validate.ensure_crs(head, role, read.assume_crs)
    if field is not None and check_ids:
        ids = lparts.read_column(plan, field).to_frame()
        ids.attrs["source"] = plan.source
        validate.feature_ids(ids, role, field, require_id)
    return PlannedLayer(plan, role, field, head.crs.to_wkt()), fids, box


def load_part(layer: PlannedLayer, fids=None, bbox=None) -> gpd.GeoDataFrame:
    """Features of a planned layer by fid or extent, repaired and identified (``_id``) as :func:`load_polygons`
    does for the whole layer."""
    gdf = lparts.read_part(layer.plan, fids, bbox)
    if gdf.crs is None:
        gdf = gdf.set_crs(layer.crs_wkt)
    gdf, _ = validate.clean_polygons(gdf, layer.role, layer.id_field)
    return gdf


def collect(problems: list, fn, *args, **kwargs):
    """``fn(*args)``, or None with its DataError added to ``problems``: every bad input is reported at once."""
    try:
        return fn(*args, **kwargs)
    except DataError as exc:
        problems.append(str(exc))
        return None


def raise_problems(problems: list) -> None:
    if problems:
        raise DataError(f"{len(problems)} input problem(s)", problems) if len(problems) > 1 else DataError(problems[0])


def input_paths(*specs) -> list:
    """File paths behind input specs (GeoDataFrames and None skipped), for the output-safety checks."""
    out = []
    for s in specs:
        if s is None or isinstance(s, (pd.DataFrame, gpd.GeoDataFrame)) or is_uri(s):
            continue
        out.append(lvector.parse_source(s).path)
    return out


def parcels_extent(construction, read: ReadOptions):
    """The China-Albers extent of the construction parcels, read from the layer's header (None when unknown)."""
    if isinstance(construction, gpd.GeoDataFrame):
        if len(construction) == 0 or construction.crs is None:
            return None
        geoms = areas.to_crs(construction.geometry.values, construction.crs, areas.CHINA_ALBERS)
        return tuple(shapely.total_bounds(geoms))
    box, crs = lvector.layer_extent(construction)
    crs = crs or read.assume_crs
    if box is None or crs is None:
        return None
    return tiling.to_crs_box(box, crs, areas.CHINA_ALBERS)


def source_name(spec) -> str:
    """How an input is named in messages."""
    if spec is None:
        return ""
    return spec.attrs.get("source", "GeoDataFrame") if isinstance(spec, gpd.GeoDataFrame) else str(spec)
