"""Read vector layers: GeoPackage (any layer), Shapefile (with GBK detection), GeoJSON, GeoParquet."""
from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from zoning.errors import DataError, UsageError

from . import pgread, postgis

log = logging.getLogger("zoning")

# Chinese GIS data without a .cpg is almost always GBK; GB18030 is its superset.
CHINESE_FALLBACK = "gb18030"


@dataclass(frozen=True)
class LayerSource:
    """A vector source: a path and, for multi-layer containers, a layer name."""

    path: Path
    layer: str | None = None

    def __str__(self) -> str:
        return f"{self.path}" + (f" (layer {self.layer!r})" if self.layer else "")


def parse_source(spec: str | Path) -> LayerSource:
    """Parse ``PATH``, ``PATH:LAYER`` or ``PATH|layername=LAYER`` (the QGIS form) into a :class:`LayerSource`.

    ``PATH:LAYER`` is only split when ``PATH`` exists and is not itself the whole spec, so Windows drive letters and
    file names with colons keep working.
    """
    s = str(spec)
    if "|layername=" in s:
        p, _, layer = s.partition("|layername=")
        return LayerSource(Path(p), layer or None)
    if not Path(s).exists() and ":" in s:
        p, _, layer = s.rpartition(":")
        if p and Path(p).exists():
            return LayerSource(Path(p), layer or None)
    return LayerSource(Path(s), None)


def list_layers(path: Path) -> list[str]:
    return [str(name) for name, _ in pyogrio.list_layers(path)]


def _check_gpkg(path: Path) -> None:
    # GDAL reports a truncated GeoPackage with an opaque message; SQLite's own check names the problem.
    import os

    with open(path, "rb") as f:
        header = f.read(100)
    wal = len(header) == 100 and header[:16] == b"SQLite format 3\x00" and header[18] == 2
    if wal and not os.access(path.parent, os.W_OK):
        raise DataError(f"{path} is a GeoPackage in WAL journal mode in a read-only folder: SQLite cannot open it "
                        "there. Copy it to a writable folder, or have its owner run: ogrinfo "
                        f"{path.name} -sql \"PRAGMA journal_mode=DELETE\"")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            con.execute("SELECT count(*) FROM gpkg_contents").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise DataError(f"{path}: not a readable GeoPackage ({exc}). The file may be truncated or corrupt: "
                        "copy it again from its source, or open it in QGIS to check.") from None


def read_vector(spec: str | Path | LayerSource, encoding: str | None = None,
                role: str = "input", _slice: tuple[int, int] | None = None) -> gpd.GeoDataFrame:
    """Read one vector layer into a GeoDataFrame.

    Parameters
    ----------
    spec : path, ``PATH:LAYER`` or :class:`LayerSource`
    encoding : text encoding of attribute values; default: ``.cpg`` if present, else UTF-8, else GB18030
    role : what the layer is for (``"counties"``, ``"red line"`` …), used in messages

    Returns
    -------
    GeoDataFrame with ``attrs["source"]`` (a string naming file and layer) and ``attrs["encoding"]``.
    """
    if postgis.is_uri(spec):
        return _table(spec, role, _slice)
    src = spec if isinstance(spec, LayerSource) else parse_source(spec)
    path = src.path
    if not path.exists():
        raise DataError(f"{role} file not found: {path}. Check the path (relative paths are resolved from "
                        f"{Path.cwd()}).")
    if path.is_dir() and path.suffix.lower() != ".gdb":
        raise DataError(f"{role}: {path} is a directory; give the path of a vector file (.gpkg, .shp, .geojson, "
                        ".parquet).")
    suffix = path.suffix.lower()
    if suffix == ".gpkg":
        _check_gpkg(path)
    if suffix == ".shp":
        _check_sidecars(path, role)
    layer = src.layer
    try:
        layers = list_layers(path) if suffix not in (".parquet", ".geoparquet") else []
    except pyogrio.errors.DataSourceError as exc:
        raise DataError(f"{role}: cannot open {path} as a vector file ({exc}).") from None
    if layer is None and len(layers) > 1:
        spatial = [n for n, g in pyogrio.list_layers(path) if g]
        if len(spatial) == 1:
            layer = spatial[0]
        else:
            raise UsageError(f"{role}: {path} holds {len(layers)} layers ({', '.join(layers)}); pick one as "
                             f"{path}:LAYER, e.g. {path}:{layers[0]}")
    if layer is not None and layers and layer not in layers:
        raise UsageError(f"{role}: {path} has no layer {layer!r}; its layers are: {', '.join(layers)}")
    label = f"{path}" + (f" (layer {layer})" if layer else "")
    try:
        if suffix in (".parquet", ".geoparquet"):
            gdf = gpd.read_parquet(path)
            used = "utf-8"
        else:
            gdf, used = _read_ogr(path, layer, encoding, _slice)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise DataError(f"{role}: cannot read {label}: {exc}") from None
    except UnicodeDecodeError as exc:  # a .cpg (or --encoding) that names the wrong encoding
        cpg = next((p for p in (path.with_suffix(".cpg"), path.with_suffix(".CPG")) if p.exists()), None)
        said = f"its {cpg.name} says {cpg.read_text(errors='replace').strip()!r}" if cpg and not encoding else \
            f"--encoding {encoding}" if encoding else "it was read as UTF-8"
        raise DataError(f"{role}: cannot read {label}: its text is not in the encoding {said} ({exc.reason} at "
                        f"byte {exc.start}). Name the right one with --encoding (Chinese shapefiles are often GBK: "
                        f"--encoding gbk){', or correct the .cpg' if cpg else ''}.") from None
    except ValueError as exc:
        raise DataError(f"{role}: cannot read {label}: {exc}") from None
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf.columns:
        raise DataError(f"{role}: {label} has no geometry — it looks like a table, not a map layer. Give a "
                        "polygon layer (GeoPackage, Shapefile, GeoJSON); statistics tables go to --attributes.")
    gdf.attrs["source"] = label
    gdf.attrs["encoding"] = used
    gdf.attrs["layer"] = layer
    if _slice != (0, 1):  # (0, 1): a layer's first feature, looked at to plan reading it in parts
        log.info("read %s: %d features, CRS %s, encoding %s", label, len(gdf),
                 gdf.crs.to_string() if gdf.crs else "none", used)
    return gdf


UTF8_FORMATS = (".gpkg", ".geojson", ".json", ".fgb", ".gdb")  # text is UTF-8 by the format's definition


def _table(spec, role: str, _slice):
    t = postgis.parse(spec, role)
    if _slice is None:
        return pgread.read(t, role)
    return next(pgread.iterate(t, _slice[1], role))


def _check_sidecars(path: Path, role: str) -> None:
    """A shapefile is three files at least: name the missing ones (a .shp copied or linked alone)."""
    missing = [ext for ext in (".shx", ".dbf") if not path.with_suffix(ext).exists()
               and not path.with_suffix(ext.upper()).exists()]
    if not missing:
        return
    hint = ""
    if path.is_symlink():
        target = path.resolve()
        found = [ext for ext in missing if target.with_suffix(ext).exists()]
        if found:
            hint = (f" {path} is a link to {target}, whose {', '.join(found)} sit beside it: link those too "
                    f"(ln -s {target.with_suffix(found[0])} {path.with_suffix(found[0])}), or give {target}.")
    raise DataError(f"{role}: the shapefile {path} lacks its {' and '.join(missing)} file(s) beside it; a "
                    f"shapefile is the .shp, .shx and .dbf together (copy them all).{hint}")


def _read_ogr(path: Path, layer: str | None, encoding: str | None, sl: tuple[int, int] | None = None):
    kw = {"skip_features": sl[0], "max_features": sl[1]} if sl else {}
    if encoding and path.suffix.lower() in UTF8_FORMATS:
        if not sl or sl[0] == 0:
            log.info("--encoding %s does not apply to %s: its text is UTF-8 by definition (the option is for "
                     "shapefiles)", encoding, path.name)
        encoding = None
    if encoding:
        return pyogrio.read_dataframe(path, layer=layer, encoding=encoding, **kw), encoding
    if path.suffix.lower() == ".shp" and not path.with_suffix(".cpg").exists() \
            and not path.with_suffix(".CPG").exists():
        try:
            return pyogrio.read_dataframe(path, layer=layer, encoding="utf-8", **kw), "utf-8"
        except UnicodeDecodeError:
            log.info("%s has no .cpg and is not UTF-8: reading it as GB18030 (GBK); "
                     "pass --encoding to override", path)
            return pyogrio.read_dataframe(path, layer=layer, encoding=CHINESE_FALLBACK, **kw), CHINESE_FALLBACK
    info = pyogrio.read_info(path, layer=layer)
    fid = key_column(info)
    gdf = pyogrio.read_dataframe(path, layer=layer, fid_as_index=fid is not None, **kw)
    if fid is not None:
        gdf = with_key_column(gdf, fid)
    return gdf, str(info.get("encoding") or "utf-8")


def key_column(info: dict) -> str | None:
    """A GeoPackage's primary-key column when it is named (``id``, ``OBJECTID``…) and so shown in QGIS as a field:
    GDAL reads it as the feature id, not as a field (None for the default ``fid``)."""
    fc = info.get("fid_column")
    return fc if fc and fc.lower() != "fid" and fc not in set(info.get("fields", [])) else None


def with_key_column(gdf: gpd.GeoDataFrame, name: str) -> gpd.GeoDataFrame:
    """The feature ids (the index of a read with ``fid_as_index``) as the field ``name``, first."""
    gdf = gdf.copy()
    gdf.insert(0, name, gdf.index.to_numpy())
    return gdf.reset_index(drop=True)


def read_table(path: str | Path, role: str = "attributes"):
    """Read a CSV or XLSX table as raw text cells (``header=None``): codes keep their leading zeros, and the header
    row is found later (:func:`zoning.tables.clean_table`). CSV may be UTF-8 (with or without BOM), UTF-16 (with
    BOM, as Excel's "Unicode text" saves it) or GBK/GB18030."""

    p = Path(path)
    if not p.exists():
        raise DataError(f"{role} table not found: {p}")
    if p.is_dir():
        raise DataError(f"{role}: {p} is a directory; give a CSV or XLSX file.")
    try:
        if p.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
            return pd.read_excel(p, dtype=str, header=None)
        with open(p, "rb") as f:
            head = f.read(4)
        encodings = ["utf-16"] if head[:2] in (b"\xff\xfe", b"\xfe\xff") else ["utf-8-sig", CHINESE_FALLBACK]
        for enc in encodings:
            try:
                return pd.read_csv(p, dtype=str, encoding=enc, header=None, sep=None, engine="python",
                                   skip_blank_lines=False)
            except UnicodeDecodeError:
                continue
    except Exception as exc:  # pandas raises many parser-specific errors
        raise DataError(f"{role}: cannot read table {p}: {exc}. Save it as CSV (UTF-8) or XLSX.") from None
    raise DataError(f"{role}: {p} is neither UTF-8, UTF-16 nor GB18030 text; save it as CSV (UTF-8).")


def layer_extent(spec) -> tuple[tuple | None, str | None]:
    """A layer's extent and CRS (WKT) from its header, without reading its features ((None, None) when the
    driver cannot tell quickly)."""
    if postgis.is_uri(spec):
        return pgread.extent(postgis.parse(spec))
    src = spec if isinstance(spec, LayerSource) else parse_source(spec)
    try:
        info = pyogrio.read_info(src.path, layer=src.layer, force_total_bounds=True)
    except Exception:  # noqa: BLE001 - GeoParquet and exotic drivers: the extent check is skipped, not the run
        return None, None
    box = info.get("total_bounds")
    if box is None or not all(map(lambda v: v == v, box)):
        return None, None
    return tuple(float(v) for v in box), info.get("crs")


def count_features(spec) -> int:
    if postgis.is_uri(spec):
        return pgread.count(postgis.parse(spec))
    src = spec if isinstance(spec, LayerSource) else parse_source(spec)
    if src.path.suffix.lower() in (".parquet", ".geoparquet"):
        import pyarrow.parquet as pq

        return pq.ParquetFile(src.path).metadata.num_rows
    return int(pyogrio.read_info(src.path, layer=src.layer)["features"])


def iter_vector(spec, chunk_size: int, encoding: str | None = None, role: str = "input"):
    """Yield a layer in chunks of ``chunk_size`` features (GeoDataFrames), so memory follows the chunk size.

    The first chunk is read through :func:`read_vector` (all its checks and encoding detection); later chunks reuse
    the layer and encoding it found. An empty layer yields one empty GeoDataFrame.
    """
    if postgis.is_uri(spec):
        yield from pgread.iterate(postgis.parse(spec, role), chunk_size, role)
        return
    src = spec if isinstance(spec, LayerSource) else parse_source(spec)
    if src.path.suffix.lower() in (".parquet", ".geoparquet"):
        yield read_vector(src, encoding, role)
        return
    first = read_vector(src, encoding, role, _slice=(0, chunk_size))
    yield first
    layer = first.attrs.get("layer")
    enc = first.attrs["encoding"]
    offset = len(first)
    key = key_column(pyogrio.read_info(src.path, layer=layer)) if len(first) == chunk_size else None
    while len(first) == chunk_size:
        first = pyogrio.read_dataframe(src.path, layer=layer, encoding=enc, skip_features=offset,
                                       max_features=chunk_size, fid_as_index=key is not None)
        if key is not None:
            first = with_key_column(first, key)
        first.attrs.update(source=str(src), encoding=enc)
        if len(first) == 0:
            return
        first.index = range(offset, offset + len(first))
        offset += len(first)
        yield first

