"""Read an earlier ``zoning check`` output (``--previous``) as people keep it: merged, duplicated, typed."""
from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from .gpkg import run_metadata


def read_previous(path, required: dict[str, tuple[str, ...]]) -> dict:
    """An earlier ``zoning check`` output as people keep it: its ``violations`` and ``parcels`` layers with their
    geometry (matched by ground), its run date and extent.

    Read leniently where the meaning is plain: exact duplicate rows are dropped, a ``violation_id`` listed twice
    (two runs merged into one file) is kept once (the earliest detection), rows without geometry are left out, and
    follow-up fields stored as numbers or dates are read as text (``checked_on`` as ``YYYY-MM-DD``). Refused with a
    :class:`DataError` naming every layer and field at fault: a missing layer or field, a layer without geometry or
    without a CRS. ``required``: layer → fields it must have.
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
    problems, out, notes = [], {}, []
    for layer, fields in required.items():
        if layer not in present:
            problems.append(f"layer {layer!r} is missing")
            continue
        info = pyogrio.read_info(path, layer=layer)
        miss = [f for f in fields if f not in set(info["fields"])]
        if miss:
            problems.append(f"layer {layer!r} lacks field(s) {', '.join(miss)}")
        if not info.get("geometry_type"):
            problems.append(f"layer {layer!r} has no geometry (earlier findings and parcels are recognised on the "
                            "ground, not by number)")
        elif not info.get("crs"):
            problems.append(f"layer {layer!r} has no CRS")
    if problems:
        raise DataError(f"--previous {path} cannot be used as an earlier `zoning check`: {'; '.join(problems)}. "
                        "Give the .gpkg that `zoning check -o` or `zoning run` wrote (with its geometry); nothing "
                        "was written.")
    for layer in required:
        gdf = pyogrio.read_dataframe(path, layer=layer, use_arrow=True, fid_as_index=True)  # Arrow: 4x faster
        gdf = gdf.rename_axis("_fid").reset_index()  # to read a row again by its feature id
        gdf, note = _as_kept(gdf, layer)
        notes += note
        out[layer] = gdf
    run_time = run_metadata(path).get("run_time")
    run_date = run_time[:10] if isinstance(run_time, str) else None
    out["run_date"], out["path"], out["notes"] = run_date, path, notes
    return out


TEXT_FIELDS = ("violation_id", "check_id", "parcel_id", "control_id", "county_id", "verdict", "status",
               "checked_by", "remark", "detected_on", "first_detected_on", "checked_on")


def _as_kept(gdf: gpd.GeoDataFrame, layer: str) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Typed fields as text, duplicates and rows without geometry dropped; returns the notes on what was done."""
    notes = []
    for c in TEXT_FIELDS:
        if c in gdf.columns:
            gdf[c] = _text(gdf[c], date=c in ("detected_on", "first_detected_on", "checked_on"))
    geom = gdf.geometry
    bad = geom.isna() | geom.is_empty
    if bad.any():
        notes.append(f"layer {layer!r}: {int(bad.sum())} row(s) without geometry left out (they cannot be "
                     "recognised on the ground)")
        gdf = gdf[~bad.to_numpy()]
    attrs = [c for c in gdf.columns if c not in (gdf.geometry.name, "_fid")]
    idc = "violation_id" if layer == "violations" else "parcel_id"
    dup = np.zeros(len(gdf), dtype=bool)
    maybe = gdf[idc].duplicated(keep=False).to_numpy()  # a duplicate row repeats its id: compare only those
    if maybe.any():
        sub = gdf[maybe]
        key = pd.concat([sub[attrs].astype(str), sub.geometry.to_wkb().rename("_wkb")], axis=1)
        dup[np.nonzero(maybe)[0]] = key.duplicated().to_numpy()
    if dup.any():
        notes.append(f"layer {layer!r}: {int(dup.sum())} duplicate row(s) dropped")
        gdf = gdf[~dup]
    if layer == "violations" and gdf["violation_id"].duplicated().any():
        first = gdf["first_detected_on"] if "first_detected_on" in gdf else gdf["detected_on"]
        order = first.fillna("9999").argsort(kind="stable")
        kept = gdf.iloc[order].drop_duplicates("violation_id").sort_index()
        notes.append(f"layer {layer!r}: {len(gdf) - len(kept)} row(s) repeat a violation_id (runs merged into one "
                     "file?); the earliest detection of each is kept")
        gdf = kept
    return gdf.reset_index(drop=True), notes


def _text(s: pd.Series, date: bool = False) -> pd.Series:
    """A column as text, nulls as None: 12 not 12.0, dates (and date-times) as YYYY-MM-DD."""
    out = _as_text(s, date).astype(object)
    return out.where(out.notna(), None)


def _as_text(s: pd.Series, date: bool) -> pd.Series:
    kind = pd.api.types.infer_dtype(s, skipna=True)
    if kind in ("string", "empty"):
        return s.astype(object)
    if date and kind in ("datetime64", "datetime", "date", "mixed"):
        t = pd.to_datetime(s, errors="coerce")
        if t.notna().any():
            return t.dt.strftime("%Y-%m-%d").where(t.notna(), s.where(s.isna(), s.astype(str))).astype(object)
    if kind == "floating":
        whole = s.notna() & (s == s.round())
        return s.astype(str).where(~whole, s.fillna(0).astype("int64").astype(str)).where(s.notna(), None) \
            .astype(object)
    return s.astype(str).where(s.notna(), None).astype(object)


def read_geometry(path: Path, layer: str, fids) -> gpd.GeoSeries:
    """The geometries of some features of an earlier run's layer, by feature id, in the order of ``fids``."""
    fids = np.asarray(fids, dtype=np.int64)
    if len(fids) == 0:
        info = pyogrio.read_info(path, layer=layer)
        return gpd.GeoSeries([], crs=info["crs"])
    gdf = pyogrio.read_dataframe(path, layer=layer, fids=fids, columns=[], fid_as_index=True, use_arrow=True)
    return gdf.geometry.reindex(fids)
