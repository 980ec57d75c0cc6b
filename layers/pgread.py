"""Reading a PostGIS table as :mod:`layers.vector` reads a file: whole, in chunks, its count and extent, and by
feature id or extent for a cluster's tasks. Every read is one SQL query in a read-only transaction; the user's
``where=`` filter applies to all of them."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from zoning.errors import DataError

from .postgis import FID, WKB, PgTable, arrow, batches, connect, ident, literal, require_postgis, run, to_frame

log = logging.getLogger("zoning")
INTEGER_TYPES = ("smallint", "integer", "bigint")
# surrogate keys as ogr2ogr, ArcGIS and QGIS name them: the feature id, not an attribute (a GeoPackage's fid)
SURROGATE_KEYS = ("fid", "ogc_fid", "gid", "objectid")


@dataclass(frozen=True)
class TableInfo:
    """What a table holds: its attribute columns, geometry column and CRS, and its integer key (or None)."""

    columns: tuple[str, ...]
    geometry: str
    srid: int
    crs: str | None
    key: str | None


def _open(t: PgTable, role: str):
    con = connect(t, role)
    run(con, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", t, role)
    return con


def describe(con, t: PgTable, role: str) -> TableInfo:
    """Check the table: PostGIS present, schema and table found, one geometry column (or the one named), a CRS
    PostGIS knows; errors name the host, database and table."""
    require_postgis(con, t, role)
    qualified = literal(f"{ident(t.schema)}.{ident(t.table)}" if t.schema else ident(t.table))
    oid = run(con, f"SELECT to_regclass({qualified})::oid", t, role)[0][0]
    if oid is None:
        if t.schema and not run(con, f"SELECT 1 FROM pg_namespace WHERE nspname = {literal(t.schema)}", t, role):
            raise DataError(f"{role} {t}: schema {t.schema!r} does not exist in database {t.dbname!r}.")
        near = [r[0] for r in run(con, "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                                       f"WHERE table_schema = {literal(t.schema or 'public')} ORDER BY 1 LIMIT 12",
                                  t, role)]
        raise DataError(f"{role} {t}: table {t.table!r} does not exist in database {t.dbname!r}"
                        + (f" (tables there: {', '.join(near)})" if near else "") + ".")
    cols = run(con, "SELECT a.attname, format_type(a.atttypid, a.atttypmod), y.typname FROM pg_attribute a "
                    f"JOIN pg_type y ON y.oid = a.atttypid WHERE a.attrelid = {oid} AND a.attnum > 0 "
                    "AND NOT a.attisdropped ORDER BY a.attnum", t, role)
    geoms = [c for c, _, typ in cols if typ == "geometry"]
    if t.geometry:
        if t.geometry not in geoms:
            raise DataError(f"{role} {t}: no geometry column {t.geometry!r}; the table's geometry columns: "
                            f"{', '.join(geoms) or 'none'}.")
        geom = t.geometry
    elif len(geoms) == 1:
        geom = geoms[0]
    elif not geoms:
        raise DataError(f"{role} {t}: the table has no geometry column (columns: "
                        f"{', '.join(c for c, _, _ in cols)}). A PostGIS geometry column is needed.")
    else:
        raise DataError(f"{role} {t}: the table has several geometry columns ({', '.join(geoms)}); name one with "
                        f"&geometry={geoms[0]}.")
    typed = [r[0] for r in run(con, f"SELECT srid FROM geometry_columns WHERE f_table_schema = "
                                    f"{literal(t.schema or 'public')} AND f_table_name = {literal(t.table)} AND "
                                    f"f_geometry_column = {literal(geom)}", t, role) if r[0]]
    # the column's declared SRID; an undeclared one (geometry without a type) is read off the rows
    srids = typed or [r[0] for r in run(con, f"SELECT DISTINCT ST_SRID({ident(geom)}) FROM {t.qualified}"
                                             f"{_where(t)} LIMIT 3", t, role)]
    srids = [s for s in srids if s is not None] or [0]
    if len(srids) > 1:
        raise DataError(f"{role} {t}: column {geom!r} mixes SRIDs {', '.join(map(str, srids))}; one layer needs one "
                        "CRS (ST_Transform the rows to one).")
    crs = None
    if srids[0] != 0:
        ref = run(con, f"SELECT auth_name, auth_srid, srtext FROM spatial_ref_sys WHERE srid = {int(srids[0])}",
                  t, role)
        if not ref:
            raise DataError(f"{role} {t}: SRID {srids[0]} is not in the database's spatial_ref_sys, so its CRS is "
                            "unknown. Transform the layer to a known SRID (e.g. 4490 for CGCS2000).")
        auth, code, wkt = ref[0]
        crs = f"{auth}:{code}" if auth and str(auth).upper() == "EPSG" else wkt
    pk = run(con, "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_index i JOIN pg_attribute a "
                  f"ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = {oid} "
                  "AND i.indisprimary", t, role)
    key = pk[0][0] if len(pk) == 1 and pk[0][1] in INTEGER_TYPES else None
    hidden = {key} if key and key.lower() in SURROGATE_KEYS else set()
    return TableInfo(tuple(c for c, _, typ in cols if typ != "geometry" and c not in hidden), geom, int(srids[0]),
                     crs, key)


def _where(t: PgTable, *more: str) -> str:
    parts = [f"({t.where})"] if t.where else []
    parts += [m for m in more if m]
    return (" WHERE " + " AND ".join(parts)) if parts else ""


def _select(t: PgTable, info: TableInfo, *more: str) -> str:
    cols = [ident(c) for c in info.columns] + [f"ST_AsBinary({ident(info.geometry)}) AS {WKB}"]
    order = f" ORDER BY {ident(info.key)}" if info.key else ""
    return f"SELECT {', '.join(cols)} FROM {t.qualified}{_where(t, *more)}{order}"


def read(t: PgTable, role: str):
    """The whole table (filtered) as a GeoDataFrame, indexed by position, as a file is read."""
    con = _open(t, role)
    try:
        info = describe(con, t, role)
        gdf = to_frame(arrow(con, _select(t, info), t, role), info.crs, str(t), t.table)
        log.info("read %s: %d features, CRS %s", t, len(gdf), info.crs or "none (SRID 0)")
        return gdf
    finally:
        con.close()


def iterate(t: PgTable, chunk_size: int, role: str):
    """The table in chunks of ``chunk_size`` rows, streamed from one query (an empty table: one empty frame)."""
    import pyarrow as pa

    con = _open(t, role)
    try:
        info = describe(con, t, role)
        log.info("reading %s in chunks of %d, CRS %s", t, chunk_size, info.crs or "none (SRID 0)")
        pending, n, offset = [], 0, 0
        for batch in batches(con, _select(t, info), t, role):
            pending.append(batch)
            n += batch.num_rows
            while n >= chunk_size:
                table = pa.Table.from_batches(pending)
                yield to_frame(table.slice(0, chunk_size), info.crs, str(t), t.table, offset)
                offset += chunk_size
                rest = table.slice(chunk_size)
                pending, n = rest.to_batches(), rest.num_rows
        if n or offset == 0:
            table = pa.Table.from_batches(pending) if pending else \
                arrow(con, _select(t, info) + " LIMIT 0", t, role)
            yield to_frame(table, info.crs, str(t), t.table, offset)
    finally:
        con.close()


def count(t: PgTable, role: str = "input") -> int:
    con = _open(t, role)
    try:
        describe(con, t, role)
        return int(run(con, f"SELECT count(*) FROM {t.qualified}{_where(t)}", t, role)[0][0])
    finally:
        con.close()


def extent(t: PgTable, role: str = "input") -> tuple[tuple | None, str | None]:
    """The table's extent (its CRS) and CRS, (None, None) when empty."""
    con = _open(t, role)
    try:
        info = describe(con, t, role)
        g = ident(info.geometry)
        row = run(con, f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent({g}) AS e "
                       f"FROM {t.qualified}{_where(t)}) s", t, role)[0]
        return (None, None) if row[0] is None else (tuple(float(v) for v in row), info.crs)
    finally:
        con.close()


def plan(t: PgTable, role: str):
    """What a cluster's tasks need: the table's info, and every feature's key and bounds (4, n), in key order."""
    con = _open(t, role)
    try:
        info = describe(con, t, role)
        if info.key is None:
            raise DataError(f"{role} {t}: on a cluster each task reads its features by key, and the table has no "
                            "integer primary key. Add one (ALTER TABLE … ADD COLUMN fid bigserial PRIMARY KEY) or "
                            "run without --cluster.")
        g, k = ident(info.geometry), ident(info.key)
        table = arrow(con, f"SELECT {k} AS {FID}, ST_XMin({g}) AS x0, ST_YMin({g}) AS y0, ST_XMax({g}) AS x1, "
                           f"ST_YMax({g}) AS y1 FROM {t.qualified}{_where(t)} ORDER BY {k}", t, role)
        fids = table.column(FID).to_numpy().astype(np.int64)
        box = np.vstack([table.column(c).to_numpy(zero_copy_only=False).astype(float)
                         for c in ("x0", "y0", "x1", "y1")])
        return info, fids, box
    finally:
        con.close()


def read_part(t: PgTable, info: TableInfo, fids=None, bbox=None):
    """The features of ``fids`` (keys), or those whose extent meets ``bbox`` (the table's CRS), in key order and
    indexed by their key."""
    con = _open(t, "input")
    try:
        k, g = ident(info.key), ident(info.geometry)
        if fids is not None:
            keys = ",".join(str(int(f)) for f in np.asarray(fids))
            cond = f"{k} = ANY('{{{keys}}}'::bigint[])"
        else:
            x0, y0, x1, y1 = (float(v) for v in bbox)
            cond = f"{g} && ST_MakeEnvelope({x0!r}, {y0!r}, {x1!r}, {y1!r}, {info.srid})"
        sql = _select(t, info, cond).replace(" FROM ", f", {k} AS {FID} FROM ", 1)
        table = arrow(con, sql, t, "input")
        gdf = to_frame(table, info.crs, str(t), t.table)
        gdf.index = table.column(FID).to_numpy().astype(np.int64)  # the caller maps keys to positions
        return gdf
    finally:
        con.close()


def crs_wkt(info: TableInfo) -> str | None:
    from pyproj import CRS

    return None if info.crs is None else CRS.from_user_input(info.crs).to_wkt()


def column(t: PgTable, info: TableInfo, name: str):
    """One column of every feature, in key order."""
    con = _open(t, "input")
    try:
        return arrow(con, f"SELECT {ident(name)} FROM {t.qualified}{_where(t)} ORDER BY {ident(info.key)}", t,
                     "input").column(0).to_pandas().rename(name)
    finally:
        con.close()
