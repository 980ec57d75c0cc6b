"""A run's outputs into a PostGIS schema: written to a GeoPackage as always (every writer, style and report is the
same), then published in one transaction: each layer a table with its primary key, spatial index and bilingual
column comments, the QGIS styles in ``public.layer_styles`` (QGIS's convention), all in a new schema swapped in for
the old at the end. A failed or interrupted run commits nothing; two runs on one schema are kept apart by an advisory
lock. :func:`fetch` brings a published schema back into a GeoPackage (for ``zoning map`` and ``--previous``).
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pyogrio

from zoning.errors import OutputError

from .postgis import WKB, PgSchema, arrow, connect, ident, literal, parse, require_postgis, run, to_frame
from .postgis import reason as postgis_reason

log = logging.getLogger("zoning")
RUN_TABLE = "zoning_run"  # what marks a schema as written by zoning
LAYER_STYLES = """CREATE TABLE IF NOT EXISTS public.layer_styles (
    id serial PRIMARY KEY, f_table_catalog varchar, f_table_schema varchar, f_table_name varchar,
    f_geometry_column varchar, stylename text, styleqml xml, stylesld xml, useasdefault boolean, description text,
    owner varchar(63) DEFAULT CURRENT_USER, ui xml, update_time timestamp DEFAULT CURRENT_TIMESTAMP)"""


def _tables(con, target: PgSchema) -> list[str]:
    return [r[0] for r in run(con, "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                                   f"{literal(target.schema)} ORDER BY 1", target, "-o", OutputError)]


def _refuse(con, target: PgSchema, overwrite: bool) -> bool:
    """Whether the schema exists; refused when it may not be replaced or cannot be created."""
    require_postgis(con, target, "-o", OutputError)
    exists = bool(run(con, f"SELECT 1 FROM pg_namespace WHERE nspname = {literal(target.schema)}", target, "-o",
                      OutputError))
    if exists:
        tables = _tables(con, target)
        if tables and RUN_TABLE not in tables:
            raise OutputError(f"-o {target}: schema {target.schema!r} holds tables zoning did not write "
                              f"({', '.join(tables[:8])}); --overwrite only replaces a schema zoning wrote. Name "
                              "another schema (nothing was changed).")
        if not overwrite:
            raise OutputError(f"-o {target}: schema {target.schema!r} already exists; pass --overwrite to replace "
                              "it (it is left untouched).")
    may = run(con, "SELECT current_user, has_database_privilege(current_user, current_database(), 'CREATE')",
              target, "-o", OutputError)[0]
    if not may[1]:
        raise OutputError(f"-o {target}: user {may[0]!r} may not create schemas in database {target.dbname!r}. "
                          f"Ask its owner: GRANT CREATE ON DATABASE {ident(target.dbname)} TO {ident(may[0])}; "
                          "(nothing was written).")
    return exists


def check_schema(target, overwrite: bool) -> None:
    """Refuse, before any work, a schema this run may not write."""
    target = parse(target, "-o")
    con = connect(target, "-o", OutputError)
    try:
        _refuse(con, target, overwrite)
    finally:
        con.close()


@contextlib.contextmanager
def publishing(target, overwrite: bool):
    """A temporary GeoPackage path; on success its layers are published into ``target``'s schema."""
    target = parse(target, "-o")
    check_schema(target, overwrite)
    folder = Path(tempfile.mkdtemp(prefix="zoning-pg-"))
    try:
        yield folder / "out.gpkg"
        publish(folder / "out.gpkg", target, overwrite)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _srid(con, target: PgSchema, crs) -> int:
    if crs is None:
        return 0
    from pyproj import CRS

    code = CRS.from_user_input(crs).to_epsg()
    row = run(con, f"SELECT srid FROM spatial_ref_sys WHERE auth_name = 'EPSG' AND auth_srid = {int(code)}", target,
              "-o", OutputError) if code else []
    if not row:
        raise OutputError(f"-o {target}: the outputs' CRS ({CRS.from_user_input(crs).name}) is not in the "
                          "database's spatial_ref_sys; nothing was written.")
    return int(row[0][0])


def _labels(gpkg: Path) -> dict:
    con = sqlite3.connect(gpkg)
    try:
        return {(t, c): (title, desc) for t, c, title, desc in
                con.execute("SELECT table_name, column_name, title, description FROM gpkg_data_columns")}
    except sqlite3.Error:
        return {}
    finally:
        con.close()


def _styles(gpkg: Path) -> list:
    con = sqlite3.connect(gpkg)
    try:
        return list(con.execute("SELECT f_table_name, styleName, styleQML, description FROM layer_styles "
                                "WHERE useAsDefault"))
    except sqlite3.Error:
        return []
    finally:
        con.close()


def _plain(reader):
    """The batches of ``reader`` with extension types (GDAL's WKB) as their storage: what COPY sends."""
    import pyarrow as pa

    ext = [i for i, f in enumerate(reader.schema) if isinstance(f.type, pa.ExtensionType)]
    schema = pa.schema([pa.field(f.name, f.type.storage_type) if i in ext else f
                        for i, f in enumerate(reader.schema)])

    def plain():
        for b in reader:
            yield pa.RecordBatch.from_arrays([b.column(i).storage if i in ext else b.column(i)
                                              for i in range(b.num_columns)], schema=schema)

    return pa.RecordBatchReader.from_batches(schema, plain())


def publish(gpkg: Path, target: PgSchema, overwrite: bool) -> None:
    """Every layer of ``gpkg`` into ``target``'s schema, in one transaction."""
    from adbc_driver_manager import Error
    from pyogrio.raw import open_arrow

    con = connect(target, "-o", OutputError)
    new = f"zoning_new_{os.getpid()}_{target.schema}"[:63]
    try:
        if not run(con, f"SELECT pg_try_advisory_lock(hashtext({literal('zoning:' + target.schema)}))", target,
                   "-o", OutputError)[0][0]:
            raise OutputError(f"-o {target}: another zoning run is writing schema {target.schema!r}; wait for it to "
                              "finish or name another schema (nothing was written).")
        con.commit()
        exists = _refuse(con, target, overwrite)
        labels = _labels(gpkg)
        # index builds sort in memory, not in temporary files
        run(con, "SET LOCAL maintenance_work_mem = '512MB'", target, "-o", OutputError)
        run(con, f"CREATE SCHEMA {ident(new)}", target, "-o", OutputError)
        for layer, gtype in pyogrio.list_layers(gpkg):
            if layer == "layer_styles":  # QGIS finds the styles in public.layer_styles
                continue
            with open_arrow(gpkg, layer=layer, return_fids=True, use_pyarrow=True) as (meta, reader):
                geom = meta.get("geometry_name") or "geom"
                batches = _plain(reader)  # streamed: memory follows the batch, not the layer
                columns = batches.schema.names
                with con.cursor() as cur:
                    try:
                        cur.adbc_ingest(layer, batches, mode="create", db_schema_name=new)
                    except (Error, OSError) as exc:
                        raise OutputError(f"-o {target}: writing table {layer!r} failed: {postgis_reason(exc)}; "
                                          "nothing was written.") from None
            q = f"{ident(new)}.{ident(layer)}"
            if gtype:
                srid = _srid(con, target, meta.get("crs"))
                kind = "MultiPolygon" if "Polygon" in str(gtype) else "Geometry"
                sql = [f"ALTER TABLE {q} ALTER COLUMN {ident(geom)} TYPE geometry({kind}, {srid}) USING "
                       f"ST_SetSRID(ST_GeomFromWKB({ident(geom)}), {srid})",
                       f"CREATE INDEX ON {q} USING gist ({ident(geom)})"]
            else:
                sql = []
            sql.append(f"ALTER TABLE {q} ADD PRIMARY KEY (fid)" if "fid" in columns else
                       f"ALTER TABLE {q} ADD COLUMN fid bigserial PRIMARY KEY")
            for (t, c), (title, desc) in labels.items():
                if t == layer and c in columns:
                    text = title if not desc or desc == title else f"{title}: {desc}"
                    sql.append(f"COMMENT ON COLUMN {q}.{ident(c)} IS {literal(text)}")
            for s in sql:
                run(con, s, target, "-o", OutputError)
        if exists:
            run(con, f"DROP SCHEMA {ident(target.schema)} CASCADE", target, "-o", OutputError)
        run(con, f"ALTER SCHEMA {ident(new)} RENAME TO {ident(target.schema)}", target, "-o", OutputError)
        run(con, LAYER_STYLES, target, "-o", OutputError)
        run(con, "DELETE FROM public.layer_styles WHERE f_table_catalog = current_database() AND f_table_schema = "
                 f"{literal(target.schema)}", target, "-o", OutputError)
        for layer, name, qml, desc in _styles(gpkg):
            run(con, "INSERT INTO public.layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                     "f_geometry_column, stylename, styleqml, useasdefault, description) VALUES (current_database(), "
                     f"{literal(target.schema)}, {literal(layer)}, 'geom', {literal(name or layer)}, "
                     f"XMLPARSE(DOCUMENT {literal(qml)}), true, {literal(desc or '')})", target, "-o", OutputError)
        run(con, f"COMMENT ON SCHEMA {ident(target.schema)} IS {literal('written by zoning; see ' + RUN_TABLE)}",
            target, "-o", OutputError)
        con.commit()
        log.info("published %s: %s", target, ", ".join(layer for layer, _ in pyogrio.list_layers(gpkg)))
    except BaseException:
        with contextlib.suppress(Exception):
            con.rollback()
        raise
    finally:
        with contextlib.suppress(Exception):
            run(con, "SELECT pg_advisory_unlock_all()", target, "-o", OutputError)
        con.close()


def fetch(source, gpkg: Path) -> Path:
    """A schema zoning wrote, back into a GeoPackage at ``gpkg`` (its layers and run record)."""
    target = parse(source, "input")
    con = connect(target, "input")
    try:
        tables = _tables(con, target)
        if RUN_TABLE not in tables:
            from zoning.errors import DataError

            raise DataError(f"{target}: schema {target.schema!r} was not written by zoning (no {RUN_TABLE} table).")
        geo = dict(run(con, "SELECT f_table_name, f_geometry_column FROM geometry_columns WHERE f_table_schema = "
                            f"{literal(target.schema)}", target, "input"))
        for t in tables:
            q = f"{ident(target.schema)}.{ident(t)}"
            if t in geo:
                crs = run(con, f"SELECT Find_SRID({literal(target.schema)}, {literal(t)}, {literal(geo[t])})",
                          target, "input")[0][0]
                cols = [c for c in arrow(con, f"SELECT * FROM {q} LIMIT 0", target, "input").column_names
                        if c not in (geo[t], "fid")]
                table = arrow(con, f"SELECT {', '.join(map(ident, cols))}, ST_AsBinary({ident(geo[t])}) AS {WKB} "
                                   f"FROM {q} ORDER BY fid", target, "input")
                pyogrio.write_dataframe(to_frame(table, f"EPSG:{crs}" if crs else None, str(target), t), gpkg,
                                        layer=t, driver="GPKG", promote_to_multi=True)
            else:
                df = arrow(con, f"SELECT * FROM {q}", target, "input").to_pandas()
                df = df.sort_values("fid").drop(columns="fid") if "fid" in df else df
                pyogrio.write_dataframe(df, gpkg, layer=t, driver="GPKG")
        return gpkg
    finally:
        con.close()
