"""Write GeoPackages: layers in the declared column order, titles and data columns from :mod:`zoning.outputs`,
QGIS default styles in ``layer_styles``. Atomicity comes from :class:`layers.files.Output`."""
from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import geopandas as gpd
import pandas as pd
import numpy as np
import pyogrio
import shapely
from pyogrio.raw import write_arrow

from zoning import outputs

from zoning.errors import OutputError

from .edits import written_digest
from .files import open_output, target
from .postgis import mask
from .spool import Spool, merge_layer, to_arrow

log = logging.getLogger("zoning")


class GpkgWriter:
    """Write layers one after another (or in appended chunks) into a GeoPackage being built at ``path``.

    :meth:`append` spools chunks to an Arrow IPC stream beside the file and :meth:`finish` writes each spooled layer
    in one pass: GeoPackage appends update the R-tree row by row (measured 2.5× slower than one write, whose index
    GDAL builds in bulk), and the spool keeps memory at one chunk.
    """

    def __init__(self, path: Path, target: Path | None = None):
        self.path = Path(path)
        self.target = target if target else self.path  # named in messages (path may be a temporary)
        self.layers: dict[str, pd.DataFrame] = {}
        self.counts: dict[str, int] = {}
        self._spools: dict[str, Spool] = {}

    def append(self, name: str, gdf: gpd.GeoDataFrame) -> None:
        """Add the rows of ``gdf`` to spatial layer ``name`` (written by :meth:`finish`; field names a GeoPackage
        reserves or holds twice renamed, :func:`storable`).

        A layer whose first chunk has :data:`STREAM_ROWS` rows or more is streamed to a child process that writes
        it while the caller computes the next chunks (into the GeoPackage itself when it is the first thing
        written, else into a side file merged at the end); smaller ones are spooled to disk.
        """
        gdf = storable(gdf)
        sp = self._spools.get(name)
        if sp is None:
            stream = None
            if len(gdf) >= STREAM_ROWS:
                direct = not self.path.exists() and not any(s.direct for s in self._spools.values())
                stream = self.path if direct else Path(f"{self.path}.{name}.side.spool")
            try:
                sp = self._spools[name] = Spool(Path(f"{self.path}.{name}.spool"), gdf, stream, name)
            except OSError as exc:
                raise self._error(exc, name) from None
        try:
            sp.write(gdf)
        except OSError as exc:
            raise self._error(exc, name) from None
        self.layers.setdefault(name, gdf.iloc[:0])
        self.counts[name] = self.counts.get(name, 0) + len(gdf)

    def discard(self) -> None:
        """Remove the spool files and stop the streaming children (after a failure; :meth:`finish` removes them
        after writing)."""
        for sp in self._spools.values():
            sp.close(remove=True)

    def _drain(self) -> None:
        """End the streamed layers: wait for their children and merge the side files (before anything else is
        written into the GeoPackage)."""
        for name, sp in list(self._spools.items()):
            if sp.proc is None:
                continue
            try:
                sp.wait()
                if not sp.direct:
                    merge_layer(self.path, sp.stream, name)
            except (OSError, sqlite3.Error) as exc:
                raise self._error(exc, name) from None
            finally:
                sp.close(remove=True)
            del self._spools[name]

    def write(self, name: str, df: pd.DataFrame, append: bool = False) -> None:
        self._drain()
        try:
            self._write(name, df, append)
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, sqlite3.Error) as exc:
            raise self._error(exc, name) from None

    def _error(self, exc, layer: str) -> OutputError:
        return OutputError(f"cannot write layer {layer!r} of {self.target}: {exc}. The disk may be full or the "
                           "folder not writable; nothing was replaced.")

    def _write(self, name: str, df: pd.DataFrame, append: bool = False) -> None:
        df = storable(df)
        append = append and name in self.layers
        kwargs = dict(driver="GPKG", layer=name, append=append)
        if not append:
            kwargs["dataset_options"] = {"VERSION": "1.2"}
        if isinstance(df, gpd.GeoDataFrame):
            if not append:
                kwargs["layer_options"] = {"SPATIAL_INDEX": "YES"}
            types = shapely.get_type_id(df.geometry.values)
            if len(df) and np.isin(types, (3, 6)).all():  # polygons: the WKB column built in Arrow (to_arrow)
                write_arrow(to_arrow(df), str(self.path), geometry_name="geometry", geometry_type="MultiPolygon",
                            crs=df.crs.to_wkt() if df.crs is not None else None, **kwargs)
            else:
                if len(df) == 0:
                    kwargs["geometry_type"] = "MultiPolygon"
                pyogrio.write_dataframe(df, self.path, promote_to_multi=True, use_arrow=True, **kwargs)
        else:
            pyogrio.write_dataframe(pd.DataFrame(df), self.path, **kwargs)
        # keep an empty frame with the schema only: the styles need the columns, not the rows
        self.layers[name] = df.iloc[:0]
        self.counts[name] = self.counts.get(name, 0) + len(df)

    def finish(self, metadata: dict | None = None, styles: dict[str, str] | None = None) -> None:
        self._drain()
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
                merge_layer(self.path, side_path, name)
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


RESERVED = {"fid", "geom"}  # the GeoPackage's own key and geometry columns


def storable(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with field names a GeoPackage can hold: names it reserves (``fid``, ``geom``, as a shapefile's
    ``FID`` field) and names equal but for case (SQLite does not tell ``ID`` from ``id``) get a suffix, ``_2``…"""
    geom = df.geometry.name if isinstance(df, gpd.GeoDataFrame) else None
    seen = {"fid", "geom"} if geom is not None else {"fid"}
    if geom is not None:
        seen.add(geom.lower())
    rename = {}
    for c in df.columns:
        if c == geom:
            continue
        new, k = str(c), 1
        while new.lower() in seen:
            k += 1
            new = f"{c}_{k}"
        seen.add(new.lower())
        if new != c:
            rename[c] = new
    return df.rename(columns=rename) if rename else df


PARALLEL_ROWS = 100_000  # two spooled layers at least this large are written at once (in two processes)
STREAM_ROWS = 20_000  # a layer whose first chunk is this large is written by a child process as it comes


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
    path = target(path)
    with open_output(path, overwrite, inputs=inputs) as tmp:
        w = GpkgWriter(tmp, path)
        for name, df in layers.items():
            w.write(name, df)
        w.finish(metadata, styles)
    log.info("wrote %s (%s)", path, ", ".join(f"{n}: {len(d)}" for n, d in layers.items()))
    return path


def _finish(tmp: Path, layers, metadata: dict, styles: dict) -> None:
    con = sqlite3.connect(tmp)
    try:
        metadata = json.loads(mask(json.dumps(metadata, ensure_ascii=False, default=str)))  # no password kept
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
        if metadata:  # last: what the file holds as written (files.work_since_written compares with it)
            con.execute("INSERT INTO zoning_run (key, value) VALUES ('written', ?)",
                        (json.dumps(written_digest(con)),))
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
        if df is None:
            continue
        row = con.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (name,)).fetchone()
        geom_col = row[0] if row else ""  # a table (county_summary): its aliases and labels all the same
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


def rename_ids(path: Path, changes: dict[str, str]) -> None:
    """Rename finding ids in a written GeoPackage: ``violations.violation_id`` and the ids listed in
    ``parcels.violation_ids`` (a handful of rows; swaps included, each row is read before it is written)."""
    con = sqlite3.connect(path)
    _spatial_functions(con)
    try:
        con.execute("CREATE TEMP TABLE zoning_idmap (old TEXT PRIMARY KEY, new TEXT)")
        con.executemany("INSERT INTO zoning_idmap VALUES (?, ?)", list(changes.items()))
        con.execute("UPDATE violations SET violation_id = (SELECT new FROM zoning_idmap WHERE old = violation_id) "
                    "WHERE violation_id IN (SELECT old FROM zoning_idmap)")
        tables = {r[0] for r in con.execute("SELECT table_name FROM gpkg_contents")}
        if "parcels" in tables:  # the ledger joins ids with '; ': whole ids renamed, one pass over the table

            def renamed(text):
                if not text:
                    return text
                return "; ".join(changes.get(p, p) for p in text.split("; "))

            con.create_function("zoning_renamed", 1, renamed, deterministic=True)
            con.execute("UPDATE parcels SET violation_ids = zoning_renamed(violation_ids) "
                        "WHERE violation_ids <> zoning_renamed(violation_ids)")
        con.commit()
    finally:
        con.close()


def _spatial_functions(con: sqlite3.Connection) -> None:
    """The SQL functions a GeoPackage's R-tree triggers name (GDAL defines them; plain sqlite3 does not), so that
    rows can be updated with sqlite3: ST_IsEmpty and the envelope of a GeoPackage geometry blob."""
    import shapely

    envelope = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}

    def geom(blob):
        if blob is None:
            return None
        return shapely.from_wkb(bytes(blob[8 + envelope.get((blob[3] >> 1) & 7, 0):]))

    def bound(i):
        return lambda blob: None if blob is None or blob[3] & 0x10 else float(geom(blob).bounds[i])

    con.create_function("ST_IsEmpty", 1, lambda blob: None if blob is None else int(bool(blob[3] & 0x10)),
                        deterministic=True)
    for name, i in (("ST_MinX", 0), ("ST_MinY", 1), ("ST_MaxX", 2), ("ST_MaxY", 3)):
        con.create_function(name, 1, bound(i), deterministic=True)


def run_metadata(path: Path) -> dict:
    """The ``zoning_run`` table of a GeoPackage the tool wrote, its JSON values decoded ({} for other files)."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = con.execute("SELECT key, value FROM zoning_run").fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return {}
    out = {}
    for k, v in rows:
        try:
            out[k] = json.loads(v)
        except (TypeError, ValueError):
            out[k] = v
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
