"""Reading a layer in parts, for a cluster's tasks: a plan made on the client (ids and extents only, flat memory in
the geometry), then each task's features by feature id or by extent. Files through GDAL; PostGIS tables by key
(:mod:`layers.pgread`)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from zoning.errors import UsageError

from . import pgread, postgis
from .vector import CHINESE_FALLBACK, key_column, parse_source, read_vector

log = logging.getLogger("zoning")


@dataclass(frozen=True)
class LayerPlan:
    """What a worker needs to read parts of a layer by feature id or by extent, without reading it whole.

    ``positions``: each feature's position in the layer's order (the fallback id of layers without an id field);
    None when the feature ids run ``fid0, fid0 + 1, …`` and the position is ``fid - fid0``.
    """

    path: Path | postgis.PgTable
    layer: str | None
    encoding: str
    crs_wkt: str | None
    columns: tuple[str, ...]
    count: int
    fid0: int
    bounds: tuple[float, float, float, float]
    source: str
    fids: object = None  # sorted feature ids when they are not contiguous (with ``positions``)
    positions: object = None
    key: str | None = None  # a named primary-key column, read as a field (:func:`key_column`)
    table: pgread.TableInfo | None = None  # a PostGIS table: its columns, geometry and key


def plan_layer(spec, encoding: str | None = None, role: str = "input", bounds: bool = True):
    """A :class:`LayerPlan` and, with ``bounds``, every feature's (fids, bounds (4, n) in the layer's CRS).

    Reads ids and extents only (flat memory in the geometry). GeoParquet is refused: parts of it cannot be read
    through GDAL here; convert it (``ogr2ogr out.gpkg in.parquet``) or run without a cluster.
    """
    if postgis.is_uri(spec):
        return _plan_table(postgis.parse(spec), role)
    src = spec if not isinstance(spec, str | Path) else parse_source(spec)
    path = src.path
    if path.suffix.lower() in (".parquet", ".geoparquet"):
        raise UsageError(f"{role}: {path} is GeoParquet; on a cluster layers are read part by part through GDAL. "
                         f"Convert it (ogr2ogr {path.with_suffix('.gpkg').name} {path.name}) or run without "
                         "--cluster.")
    head = read_vector(src, encoding, role, _slice=(0, 1))  # every check of read_vector, on one feature
    layer, used = head.attrs.get("layer"), head.attrs["encoding"]
    if path.suffix.lower() == ".shp" and not encoding and used == "utf-8":
        try:  # the first feature may be plain ASCII: detect the encoding on every attribute
            pyogrio.read_dataframe(path, layer=layer, encoding="utf-8", read_geometry=False)
        except UnicodeDecodeError:
            used = CHINESE_FALLBACK
    info = pyogrio.read_info(path, layer=layer, encoding=used)
    fids, box = (pyogrio.read_bounds(path, layer=layer) if bounds else (None, None))
    count = int(info["features"]) if fids is None else len(fids)
    fid0, sorted_fids, positions = 0, None, None
    if fids is not None and len(fids):
        fid0 = int(fids.min())
        if not np.array_equal(fids, np.arange(fid0, fid0 + len(fids))):
            order = np.argsort(fids, kind="stable")
            sorted_fids, positions = fids[order], order.astype(np.int64)
    total = tuple(float(v) for v in info.get("total_bounds") or (0, 0, 0, 0))
    # absolute: workers run in folders of their own, and read the file the client checked (cluster.check_access)
    plan = LayerPlan(path.absolute(), layer, used, head.crs.to_wkt() if head.crs is not None else None,
                     tuple(c for c in head.columns if c != head.geometry.name), count, fid0, total,
                     head.attrs["source"], sorted_fids, positions, key_column(info))
    log.info("planned %s: %d features, CRS %s, encoding %s (read in parts)", plan.source, count,
             head.crs.to_string() if head.crs else "none", used)
    return plan, fids, box


def _plan_table(t: postgis.PgTable, role: str):
    info, fids, box = pgread.plan(t, role)
    total = (tuple(float(v) for v in (box[0].min(), box[1].min(), box[2].max(), box[3].max())) if len(fids)
             else (0.0, 0.0, 0.0, 0.0))
    plan = LayerPlan(t, None, "UTF-8", pgread.crs_wkt(info), info.columns, len(fids), 0, total, str(t), fids,
                     np.arange(len(fids), dtype=np.int64), None, info)
    log.info("planned %s: %d features, CRS %s (read in parts)", plan.source, len(fids), info.crs or "none")
    return plan, fids, box


def read_column(plan: LayerPlan, column: str):
    """One attribute column of every feature, in layer order (no geometry)."""
    if plan.table is not None:
        return pgread.column(plan.path, plan.table, column)
    if column == plan.key:  # the primary key: GDAL gives it as the feature id
        df = pyogrio.read_dataframe(plan.path, layer=plan.layer, read_geometry=False, columns=[],
                                    fid_as_index=True)
        return pd.Series(df.index.to_numpy(), name=column)
    df = pyogrio.read_dataframe(plan.path, layer=plan.layer, encoding=plan.encoding, read_geometry=False,
                                columns=[column])
    return df[column]


def read_part(plan: LayerPlan, fids=None, bbox=None) -> gpd.GeoDataFrame:
    """The features of ``fids`` or those whose extent meets ``bbox`` (layer CRS), in layer order, indexed by
    their position in the layer (as :func:`read_vector` indexes the whole layer)."""
    if plan.table is not None:
        gdf = pgread.read_part(plan.path, plan.table, fids, bbox)
    else:
        kw = {"fids": np.asarray(fids, dtype=np.int64)} if fids is not None else {"bbox": tuple(bbox)}
        arrow = plan.path.suffix.lower() == ".gpkg"  # GDAL's Arrow path reads GeoPackage features by id 4x faster
        gdf = pyogrio.read_dataframe(plan.path, layer=plan.layer, encoding=None if arrow else plan.encoding,
                                     fid_as_index=True, use_arrow=arrow, **kw)
    fid = gdf.index.to_numpy(dtype=np.int64)
    if plan.key is not None:
        gdf.insert(0, plan.key, fid)
    if plan.positions is None:
        pos = fid - plan.fid0
    else:
        pos = plan.positions[np.searchsorted(plan.fids, fid)]
    gdf.index = pos
    gdf = gdf.sort_index()
    if plan.crs_wkt is not None and gdf.crs is None:
        gdf = gdf.set_crs(plan.crs_wkt)
    gdf.attrs.update(source=plan.source, encoding=plan.encoding, layer=plan.layer)
    return gdf


