"""Write GeoPackages atomically: a temporary file beside the target, renamed into place only when complete."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from zoning.errors import OutputError

log = logging.getLogger("zoning")


def check_target(path: Path, overwrite: bool) -> None:
    """Refuse an existing target without ``overwrite`` and a directory we cannot write to, before any work."""
    path = Path(path)
    try:
        exists = path.exists()
    except OSError as exc:  # e.g. a parent directory we may not enter
        raise OutputError(f"cannot access the output path {path}: {exc.strerror}; choose another -o path.") from None
    if exists and not overwrite:
        raise OutputError(f"{path} already exists; pass --overwrite to replace it (it is left untouched).")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise OutputError(f"output directory {parent} does not exist; create it first.")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output directory {parent} is not writable; choose another -o path.")


@contextlib.contextmanager
def atomic_path(path: Path, overwrite: bool, suffix: str | None = None):
    """Yield a temporary path beside ``path``; on success rename it over ``path``, on any failure delete it.

    Also on KeyboardInterrupt: the previous file at ``path`` stays as it was.
    """
    path = Path(path)
    check_target(path, overwrite)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".part" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.unlink()  # writers want to create the file themselves
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        if tmp_path.is_dir():
            shutil.rmtree(tmp_path, ignore_errors=True)
        else:
            tmp_path.unlink(missing_ok=True)
        raise


class GpkgWriter:
    """Write layers one after another (or in appended chunks) into a GeoPackage being built at ``path``."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.layers: dict[str, pd.DataFrame] = {}
        self.counts: dict[str, int] = {}

    def write(self, name: str, df: pd.DataFrame, append: bool = False) -> None:
        append = append and name in self.layers
        kwargs = dict(driver="GPKG", layer=name, append=append)
        if not append:
            kwargs["dataset_options"] = {"VERSION": "1.2"}
        if isinstance(df, gpd.GeoDataFrame):
            if not append:
                kwargs["layer_options"] = {"SPATIAL_INDEX": "YES"}
            if len(df) == 0:
                kwargs["geometry_type"] = "MultiPolygon"
            pyogrio.write_dataframe(df, self.path, promote_to_multi=True, **kwargs)
        else:
            pyogrio.write_dataframe(pd.DataFrame(df), self.path, **kwargs)
        # keep an empty frame with the schema only: the styles need the columns, not the rows
        self.layers[name] = df.iloc[:0]
        self.counts[name] = self.counts.get(name, 0) + len(df)

    def finish(self, metadata: dict | None = None, styles: dict[str, str] | None = None,
               titles: dict[str, tuple[str, str]] | None = None) -> None:
        _finish(self.path, self.layers, metadata or {}, styles or {}, titles or {})


def write_layers(path: Path, layers: dict[str, pd.DataFrame], overwrite: bool = False,
                 metadata: dict | None = None, styles: dict[str, str] | None = None,
                 titles: dict[str, tuple[str, str]] | None = None) -> Path:
    """Write several layers into one GeoPackage atomically.

    Parameters
    ----------
    path : target .gpkg
    layers : layer name → GeoDataFrame (spatial, gets an R-tree index) or DataFrame (attribute table)
    overwrite : replace an existing file
    metadata : stored as JSON in each layer's ``gpkg_contents.description`` and in the ``zoning_run`` table
    styles : layer name → complete QML document, stored in ``layer_styles`` as the layer's default style
    titles : layer name → (title, description) for ``gpkg_contents``
    """
    path = Path(path)
    with atomic_path(path, overwrite) as tmp:
        w = GpkgWriter(tmp)
        for name, df in layers.items():
            w.write(name, df)
        w.finish(metadata, styles, titles)
    log.info("wrote %s (%s)", path, ", ".join(f"{n}: {len(d)}" for n, d in layers.items()))
    return path


def _finish(tmp: Path, layers, metadata: dict, styles: dict, titles: dict) -> None:
    con = sqlite3.connect(tmp)
    try:
        meta_json = json.dumps(metadata, ensure_ascii=False, default=str)
        for name in layers:
            title, desc = titles.get(name, (name, ""))
            con.execute("UPDATE gpkg_contents SET identifier = ?, description = ? WHERE table_name = ?",
                        (title, (desc + "\n" if desc else "") + meta_json, name))
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
