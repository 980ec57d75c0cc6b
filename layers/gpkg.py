"""Write GeoPackages: layers in the declared column order, titles and data columns from :mod:`zoning.outputs`,
QGIS default styles in ``layer_styles``. Atomicity comes from :class:`layers.files.Output`."""
from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from zoning import outputs

from zoning.errors import OutputError

from .files import Output

log = logging.getLogger("zoning")


class GpkgWriter:
    """Write layers one after another (or in appended chunks) into a GeoPackage being built at ``path``.

    :meth:`append` spools chunks to an Arrow IPC stream beside the file and :meth:`finish` writes each spooled layer
    in one pass: GeoPackage appends update the R-tree row by row (measured 2.5× slower than one write, whose index
    GDAL builds in bulk), and the spool keeps memory at one chunk.
    """

    def __init__(self, path: Path, target: Path | None = None):
        self.path = Path(path)
        self.target = Path(target) if target else self.path  # named in messages (path may be a temporary)
        self.layers: dict[str, pd.DataFrame] = {}
        self.counts: dict[str, int] = {}
        self._spools: dict[str, _Spool] = {}

    def append(self, name: str, gdf: gpd.GeoDataFrame) -> None:
        """Add the rows of ``gdf`` to spatial layer ``name`` (written by :meth:`finish`)."""
        sp = self._spools.get(name)
        if sp is None:
            sp = self._spools[name] = _Spool(Path(f"{self.path}.{name}.spool"), gdf)
        try:
            sp.write(gdf)
        except OSError as exc:
            raise self._error(exc, name) from None
        self.layers.setdefault(name, gdf.iloc[:0])
        self.counts[name] = self.counts.get(name, 0) + len(gdf)

    def discard(self) -> None:
        """Remove the spool files (after a failure; :meth:`finish` removes them after writing)."""
        for sp in self._spools.values():
            sp.close(remove=True)

    def write(self, name: str, df: pd.DataFrame, append: bool = False) -> None:
        try:
            self._write(name, df, append)
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, sqlite3.Error) as exc:
            raise self._error(exc, name) from None

    def _error(self, exc, layer: str) -> OutputError:
        return OutputError(f"cannot write layer {layer!r} of {self.target}: {exc}. The disk may be full or the "
                           "folder not writable; nothing was replaced.")

    def _write(self, name: str, df: pd.DataFrame, append: bool = False) -> None:
        append = append and name in self.layers
        kwargs = dict(driver="GPKG", layer=name, append=append)
        if not append:
            kwargs["dataset_options"] = {"VERSION": "1.2"}
        if isinstance(df, gpd.GeoDataFrame):
            if not append:
                kwargs["layer_options"] = {"SPATIAL_INDEX": "YES"}
            if len(df) == 0:
                kwargs["geometry_type"] = "MultiPolygon"
            pyogrio.write_dataframe(df, self.path, promote_to_multi=True, use_arrow=True, **kwargs)
        else:
            pyogrio.write_dataframe(pd.DataFrame(df), self.path, **kwargs)
        # keep an empty frame with the schema only: the styles need the columns, not the rows
        self.layers[name] = df.iloc[:0]
        self.counts[name] = self.counts.get(name, 0) + len(df)

    def finish(self, metadata: dict | None = None, styles: dict[str, str] | None = None) -> None:
        spools = list(self._spools.items())
        # two large spooled layers: the second goes into a side file in a child process meanwhile, then is merged
        side = [(n, sp, Path(f"{self.path}.{n}.side.spool")) for n, sp in spools[1:]
                if self.counts.get(n, 0) >= PARALLEL_ROWS and self.counts.get(spools[0][0], 0) >= PARALLEL_ROWS]
        procs = []
        name = ""
        try:
            for name, sp, side_path in side:
                side_path.unlink(missing_ok=True)
                procs.append((name, side_path, sp.start_side(side_path, name)))
            for name, sp in spools:
                if not any(sp is s for _, s, _ in side):
                    sp.write_into(self.path, name, first=not self.path.exists())
            for name, side_path, proc in procs:
                _, err = proc.communicate()
                if proc.returncode != 0:
                    raise OSError(f"writing layer {name} in a child process failed: {err.strip()[-500:]}")
                _merge_layer(self.path, side_path, name)
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError, sqlite3.Error) as exc:
            raise self._error(exc, name) from None
        finally:
            for _, side_path, proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                for extra in ("", "-journal", "-wal", "-shm"):
                    Path(f"{side_path}{extra}").unlink(missing_ok=True)
            self.discard()
        try:
            _finish(self.path, self.layers, metadata or {}, styles or {})
        except sqlite3.Error as exc:
            raise self._error(exc, "layer_styles") from None


PARALLEL_ROWS = 100_000  # two spooled layers at least this large are written at once (in two processes)


def _merge_layer(path: Path, side: Path, layer: str) -> None:
    """Move ``layer`` (its table, R-tree, triggers and GeoPackage metadata) from the GeoPackage ``side`` into
    ``path``: SQLite copies its pages, nothing is re-encoded and the R-tree is not rebuilt."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("ATTACH DATABASE ? AS side", (str(side),))
        con.execute("BEGIN")
        q = '"' + layer.replace('"', '""') + '"'
        ddl = con.execute("SELECT sql FROM side.sqlite_master WHERE type = 'table' AND name = ?", (layer,)).fetchone()
        con.execute(ddl[0])
        con.execute(f"INSERT INTO main.{q} SELECT * FROM side.{q}")
        for (col,) in con.execute("SELECT column_name FROM side.gpkg_geometry_columns WHERE table_name = ?",
                                  (layer,)).fetchall():
            rt = f"rtree_{layer}_{col}"
            if con.execute("SELECT 1 FROM side.sqlite_master WHERE name = ?", (rt,)).fetchone():
                con.execute(f'CREATE VIRTUAL TABLE main."{rt}" USING rtree(id, minx, maxx, miny, maxy)')
                for shadow in ("node", "rowid", "parent"):  # the index as built, page for page
                    con.execute(f'DELETE FROM main."{rt}_{shadow}"')
                    con.execute(f'INSERT INTO main."{rt}_{shadow}" SELECT * FROM side."{rt}_{shadow}"')
        con.execute("INSERT OR IGNORE INTO main.gpkg_spatial_ref_sys SELECT * FROM side.gpkg_spatial_ref_sys WHERE "
                    "srs_id IN (SELECT srs_id FROM side.gpkg_contents WHERE table_name = ?)", (layer,))
        for meta in ("gpkg_contents", "gpkg_geometry_columns", "gpkg_extensions", "gpkg_ogr_contents"):
            have = con.execute("SELECT 1 FROM main.sqlite_master WHERE name = ?", (meta,)).fetchone()
            if have and con.execute("SELECT 1 FROM side.sqlite_master WHERE name = ?", (meta,)).fetchone():
                con.execute(f"INSERT INTO main.{meta} SELECT * FROM side.{meta} WHERE lower(table_name) = lower(?)",
                            (layer,))
        for (sql,) in con.execute("SELECT sql FROM side.sqlite_master WHERE type IN ('index', 'trigger') AND "
                                  "tbl_name = ? AND sql IS NOT NULL", (layer,)).fetchall():
            con.execute(sql)
        con.execute("COMMIT")
        con.execute("DETACH DATABASE side")
    finally:
        con.close()


_ARROW_TYPES = {"text": "string", "real": "float64", "int": "int64", "bool": "bool", "date": "string"}


class _Spool:
    """One layer's chunks as an Arrow IPC stream on disk (WKB MultiPolygons, one schema for every chunk)."""

    def __init__(self, path: Path, first: gpd.GeoDataFrame):
        import pyarrow as pa

        self.path, self.crs = path, first.crs
        schema = _to_arrow(first).schema
        fields = []
        for f in schema:
            spec = outputs.FIELDS.get(f.name)
            if f.name == "geometry":
                fields.append(f)
            elif spec is not None:  # declared fields: the schema's type, whatever the first chunk held
                fields.append(pa.field(f.name, pa.type_for_alias(_ARROW_TYPES[spec.type])))
            else:  # the input's own fields: as read; a column with nothing in it yet becomes text
                fields.append(pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f)
        self.schema = pa.schema(fields, metadata=schema.metadata)
        self.sink = pa.OSFile(str(path), "wb")
        self.writer = pa.ipc.new_stream(self.sink, self.schema)

    def write(self, gdf: gpd.GeoDataFrame) -> None:
        if len(gdf):
            table = _to_arrow(gdf)
            self.writer.write_table(table.select(self.schema.names).cast(self.schema))

    def close(self, remove: bool = False) -> None:
        if self.writer is not None:
            self.writer.close()
            self.sink.close()
            self.writer = None
        if remove:
            self.path.unlink(missing_ok=True)

    def write_into(self, path: Path, layer: str, first: bool) -> None:
        from .spoolwrite import write_spool

        self.close()
        write_spool(str(self.path), str(path), layer, self.crs.to_wkt() if self.crs else None, first)
        self.path.unlink(missing_ok=True)

    def start_side(self, path: Path, layer: str):
        """Write the layer into its own new GeoPackage ``path`` in a child process (returned, running)."""
        import subprocess
        import sys

        self.close()
        return subprocess.Popen([sys.executable, "-m", "layers.spoolwrite", str(self.path), str(path), layer,
                                 self.crs.to_wkt() if self.crs else ""], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)


def _to_arrow(gdf: gpd.GeoDataFrame):
    """An Arrow table with the geometry as WKB MultiPolygons (what ``promote_to_multi`` does, vectorised)."""
    import numpy as np
    import pyarrow as pa
    import shapely

    import pyarrow.compute as pc

    geoms = np.asarray(gdf.geometry.values, dtype=object)
    single = shapely.get_type_id(geoms) == 3
    df = pd.DataFrame(gdf.drop(columns=gdf.geometry.name)).reset_index(drop=True)
    table = pa.Table.from_pandas(df, preserve_index=False)
    wkb = pa.array(shapely.to_wkb(geoms, byte_order=1, output_dimension=2), type=pa.binary())
    if single.any():
        # a Polygon's WKB behind a little-endian MultiPolygon header with one part is that MultiPolygon's WKB:
        # byte joins in Arrow instead of building a GEOS geometry per parcel
        head = pa.scalar(b"\x01\x06\x00\x00\x00\x01\x00\x00\x00", pa.binary())
        wkb = pc.if_else(pa.array(single), pc.binary_join_element_wise(head, wkb, b""), wkb)
    return table.append_column("geometry", wkb)


def write_layers(path: Path, layers: dict[str, pd.DataFrame], overwrite: bool = False,
                 metadata: dict | None = None, styles: dict[str, str] | None = None, inputs=()) -> Path:
    """Write several layers into one GeoPackage atomically.

    Parameters
    ----------
    path : target .gpkg
    layers : layer name → GeoDataFrame (spatial, gets an R-tree index) or DataFrame (attribute table)
    overwrite : replace an existing zoning GeoPackage
    metadata : stored as JSON in each layer's ``gpkg_contents.description`` and in the ``zoning_run`` table
    styles : layer name → complete QML document, stored in ``layer_styles`` as the layer's default style
    inputs : paths the run reads (the target may not be one of them)
    """
    path = Path(path)
    with Output(path, overwrite, inputs=inputs) as tmp:
        w = GpkgWriter(tmp, path)
        for name, df in layers.items():
            w.write(name, df)
        w.finish(metadata, styles)
    log.info("wrote %s (%s)", path, ", ".join(f"{n}: {len(d)}" for n, d in layers.items()))
    return path


def _finish(tmp: Path, layers, metadata: dict, styles: dict) -> None:
    con = sqlite3.connect(tmp)
    try:
        meta_json = json.dumps(metadata, ensure_ascii=False, default=str)
        for name in layers:
            spec = outputs.LAYERS.get(name)
            title, desc = (spec.title, spec.description) if spec else (name, "")
            con.execute("UPDATE gpkg_contents SET identifier = ?, description = ? WHERE table_name = ?",
                        (title, (desc + "\n" if desc else "") + meta_json, name))
        _write_data_columns(con, layers)
        if metadata:
            con.execute("CREATE TABLE zoning_run (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, "
                        "value TEXT)")
            con.executemany("INSERT INTO zoning_run (key, value) VALUES (?, ?)",
                            [(k, json.dumps(v, ensure_ascii=False, default=str)) for k, v in metadata.items()])
            con.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, description) "
                        "VALUES ('zoning_run', 'attributes', 'zoning_run', 'run metadata (JSON values)')")
        if styles:
            _write_styles(con, layers, styles)
        con.commit()
    finally:
        con.close()


def _write_styles(con: sqlite3.Connection, layers, styles: dict[str, str]) -> None:
    # The table QGIS looks for; f_table_schema must be '' (not NULL) for QGIS 3.22 to pick the row.
    con.execute("""CREATE TABLE IF NOT EXISTS layer_styles (
        id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256), f_table_schema TEXT(256),
        f_table_name TEXT(256), f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT,
        useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30),
        update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))""")
    for name, qml in styles.items():
        df = layers.get(name)
        if not isinstance(df, gpd.GeoDataFrame):
            continue
        geom_col = con.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?",
                               (name,)).fetchone()[0]
        con.execute("INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, "
                    "styleName, styleQML, styleSLD, useAsDefault, description, owner, ui) "
                    "VALUES ('', '', ?, ?, ?, ?, '', 1, ?, '', '')",
                    (name, geom_col, f"{name} (zoning default)", qml, "default style written by zoning"))
    con.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description) "
                "VALUES ('layer_styles', 'attributes', 'layer_styles', 'QGIS default layer styles')")


def _write_data_columns(con: sqlite3.Connection, layers) -> None:
    """GeoPackage schema extension: a title and description for every declared column."""
    con.execute("""CREATE TABLE IF NOT EXISTS gpkg_data_columns (table_name TEXT NOT NULL, column_name TEXT NOT NULL,
        name TEXT, title TEXT, description TEXT, mime_type TEXT, constraint_name TEXT,
        CONSTRAINT pk_gdc PRIMARY KEY (table_name, column_name))""")
    rows = []
    for name, df in layers.items():
        for c in df.columns:
            f = outputs.FIELDS.get(c)
            if f is not None:
                rows.append((name, c, c, f.label, f.description or f.en))
    con.executemany("INSERT OR REPLACE INTO gpkg_data_columns (table_name, column_name, name, title, description) "
                    "VALUES (?, ?, ?, ?, ?)", rows)
    con.execute("""CREATE TABLE IF NOT EXISTS gpkg_extensions (table_name TEXT, column_name TEXT,
        extension_name TEXT NOT NULL, definition TEXT NOT NULL, scope TEXT NOT NULL,
        CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name))""")
    con.executemany("INSERT OR IGNORE INTO gpkg_extensions VALUES (?, NULL, 'gpkg_schema', "
                    "'http://www.geopackage.org/spec/#extension_schema', 'read-write')",
                    [("gpkg_data_columns",), ("gpkg_data_column_constraints",)])
    con.execute("""CREATE TABLE IF NOT EXISTS gpkg_data_column_constraints (constraint_name TEXT NOT NULL,
        constraint_type TEXT NOT NULL, value TEXT, min NUMERIC, min_is_inclusive BOOLEAN, max NUMERIC,
        max_is_inclusive BOOLEAN, description TEXT,
        CONSTRAINT gdcc_ntv UNIQUE (constraint_name, constraint_type, value))""")


def read_previous(path, required: dict[str, tuple[str, ...]]) -> dict:
    """An earlier ``zoning check`` output: its ``violations`` and ``parcels`` tables (no geometry) and run date.

    ``required``: layer → fields it must have. Raises :class:`DataError` naming every missing layer or field.
    """
    from zoning.errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"--previous {path}: file not found.")
    try:
        present = {name for name, _ in pyogrio.list_layers(path)}
    except Exception as exc:  # not a GeoPackage at all
        raise DataError(f"--previous {path}: cannot be read as a GeoPackage ({exc}). Give the .gpkg an earlier "
                        "`zoning check` or `zoning run` wrote.") from None
    problems, out = [], {}
    for layer, fields in required.items():
        if layer not in present:
            problems.append(f"layer {layer!r} is missing")
            continue
        have = set(pyogrio.read_info(path, layer=layer)["fields"])
        miss = [f for f in fields if f not in have]
        if miss:
            problems.append(f"layer {layer!r} lacks field(s) {', '.join(miss)}")
            continue
        out[layer] = pyogrio.read_dataframe(path, layer=layer, read_geometry=False, fid_as_index=True)
    if problems:
        raise DataError(f"--previous {path} is not the output of an earlier `zoning check`: {'; '.join(problems)}. "
                        "Give the .gpkg that `zoning check -o` or `zoning run` wrote; nothing was written.")
    run_date = None
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = con.execute("SELECT value FROM zoning_run WHERE key = 'run_time'").fetchone()
        finally:
            con.close()
        run_date = json.loads(row[0])[:10] if row else None
    except sqlite3.Error:
        pass
    out["run_date"], out["path"] = run_date, path
    return out


def severity_sql(column: str) -> str:
    """An SQL expression ranking a severity column (critical highest), for ORDER BY on a written layer."""
    whens = " ".join(f"WHEN '{k}' THEN {c.rank}" for k, c in outputs.SEVERITIES.items())
    return f"CASE {column} {whens} ELSE -1 END"


def read_rows(path, layer: str, fids) -> gpd.GeoDataFrame:
    """Rows of ``layer`` by feature id (GeoPackage fids), geometry included."""
    import numpy as np

    fids = np.asarray(fids, dtype=np.int64)
    if len(fids) == 0:
        return pyogrio.read_dataframe(path, layer=layer, max_features=0)
    return pyogrio.read_dataframe(path, layer=layer, fids=fids)
