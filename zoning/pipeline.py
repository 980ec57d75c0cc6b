"""The one module that wires the domain to files (:mod:`layers`): read, validate, compute, write."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from layers import raster as lraster
from layers import vector as lvector

from . import areas, classify as cls, indicators as ind_mod, model as model_mod, validate
from .errors import DataError, UsageError

log = logging.getLogger("zoning")

COUNTY_ID_FIELDS = ("county_id", "adcode", "code", "id")
COUNTY_NAME_FIELDS = ("name", "county_name", "district", "NAME")
RASTER_KINDS = ("landcover", "dem")


def load_model(path: str | Path | None) -> model_mod.Model:
    if path is None:
        return model_mod.load_default()
    p = Path(path)
    if not p.exists():
        raise UsageError(f"model file not found: {p}")
    return model_mod.loads(p.read_text(encoding="utf-8"), source=str(p))


def load_polygons(spec, role: str, id_field: str | None, candidates: tuple[str, ...] = (),
                  require_id: bool = False, assume_crs: str | None = None,
                  encoding: str | None = None, allow_empty: bool = False) -> tuple[gpd.GeoDataFrame, dict]:
    """Read a polygon layer, give it a CRS, repair and identify its features."""
    gdf = lvector.read_vector(spec, encoding=encoding, role=role)
    if len(gdf) == 0 and not allow_empty:
        raise DataError(f"{role} layer {gdf.attrs['source']} has no features.")
    field = validate.pick_field(gdf, id_field, candidates, role, "--id-field") if candidates else id_field
    if field is not None and field not in gdf.columns and not candidates:
        if id_field == "id":  # the default: fall back to the feature id
            field = None
        else:
            validate.require_field(gdf, field, role)
    if require_id and field is None:
        raise DataError(f"{role} layer {gdf.attrs['source']}: none of the id fields {', '.join(candidates)} is "
                        f"present (fields: {', '.join(c for c in gdf.columns if c != 'geometry')}). "
                        "Name the id field with --id-field.")
    gdf = validate.ensure_crs(gdf, role, assume_crs)
    gdf, report = validate.clean_polygons(gdf, role, field, require_id=require_id)
    if len(gdf) == 0 and not allow_empty:
        raise DataError(f"{role} layer {gdf.attrs.get('source')}: no usable polygons after dropping empty ones.")
    report["id_field"] = field
    return gdf, report


def compute_indicators(counties: gpd.GeoDataFrame, rasters: dict[str, str], model: model_mod.Model,
                       attributes: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """Indicator table (one row per county, same index) from rasters and an optional attribute table."""
    info: dict = {"rasters": {}}
    geoms_src = counties.geometry.values
    area = areas.geodesic_area(geoms_src, counties.crs) / 1e6
    parts = [pd.DataFrame({"area_km2": area}, index=counties.index)]
    for kind, path in rasters.items():
        rinfo = lraster.raster_info(path, kind)
        rcrs = rinfo["crs"]
        if rcrs is None:
            raise DataError(f"{kind} raster {path} has no CRS. Assign one with gdal_edit.py -a_srs.")
        from pyproj import CRS

        target = CRS.from_epsg(4326) if CRS.from_user_input(rcrs.to_wkt()).is_geographic else rcrs
        geoms = areas.to_crs(geoms_src, counties.crs, target)
        if counties.crs != target:
            log.info("reprojecting counties from %s to the %s raster's CRS %s for zonal statistics",
                     counties.crs.to_string(), kind, CRS.from_user_input(target).to_string())
        bounds = tuple(gpd.GeoSeries(geoms).total_bounds)
        validate.check_overlap(bounds, rinfo["bounds"], f"counties ({counties.attrs.get('source', '')})",
                               f"{kind} raster {path}")
        win = lraster.read_window(path, bounds, kind)
        if not np.isfinite(win.data).any():
            raise DataError(f"{kind} raster {path}: no valid cells under the counties (all nodata). Check the "
                            "raster's nodata value and that it covers the study area.")
        t0 = time.perf_counter()
        df, rinfo_k = ind_mod.raster_indicators(geoms, {"data": win.data, "transform": win.transform,
                                                        "crs": win.crs}, kind,
                                                model.settings["coarse_steep_relief_m"])
        df.index = counties.index
        rinfo_k["seconds"] = round(time.perf_counter() - t0, 3)
        info["rasters"][kind] = {"path": str(path), **rinfo_k}
        parts.append(df)
    ind = pd.concat(parts, axis=1)
    if attributes is not None:
        ind = pd.concat([ind, ind_mod.attribute_indicators(attributes, ind["area_km2"],
                                                           model.settings["national_gdp_per_capita"])], axis=1)
    return ind, info


def join_attributes(counties: gpd.GeoDataFrame, table: pd.DataFrame, source: str) -> pd.DataFrame:
    """Align an attribute table to the counties by id (first column named like an id field, else the first)."""
    key = next((c for c in COUNTY_ID_FIELDS if c in table.columns), table.columns[0])
    t = table.copy()
    t[key] = t[key].astype(str).str.strip()
    dup = t[key][t[key].duplicated()]
    if len(dup):
        raise DataError(f"attributes {source}: duplicate county ids in column {key!r}: {', '.join(dup[:10])}")
    unknown = sorted(set(t[key]) - set(counties["_id"]))
    if unknown:
        log.warning("attributes %s: %d ids match no county (e.g. %s)", source, len(unknown), ", ".join(unknown[:5]))
    aligned = t.set_index(key).reindex(counties["_id"].to_numpy())
    aligned.index = counties.index
    known = [c for c in aligned.columns if c in ind_mod.ATTRIBUTE_COLUMNS]
    if not known:
        raise DataError(f"attributes {source}: none of the expected columns "
                        f"({', '.join(ind_mod.ATTRIBUTE_COLUMNS)}) is present; columns are {', '.join(t.columns)}")
    return aligned[known]


def classify_counties(counties_spec, rasters: dict[str, str], attributes: str | None = None,
                      id_field: str | None = None, name_field: str | None = None, model_path=None,
                      sensitivity: int = 0, sensitivity_spread: float = 0.10, seed: int = 0,
                      assume_crs: str | None = None, encoding: str | None = None) -> tuple[gpd.GeoDataFrame, dict]:
    """Read counties and rasters, compute indicators, classify; return the ``zones`` layer and run info."""
    unknown = set(rasters) - set(RASTER_KINDS)
    if unknown:
        raise UsageError(f"--raster: unknown kind(s) {', '.join(sorted(unknown))}; use landcover=PATH and dem=PATH")
    if "landcover" not in rasters:
        raise UsageError("--raster landcover=PATH is required (an IGBP-coded land-cover raster such as MCD12C1)")
    model = load_model(model_path)
    counties, report = load_polygons(counties_spec, "counties", id_field, COUNTY_ID_FIELDS, require_id=True,
                                     assume_crs=assume_crs, encoding=encoding)
    nfield = validate.pick_field(counties, name_field, COUNTY_NAME_FIELDS, "counties", "--name-field")
    names = counties[nfield].astype(str) if nfield else pd.Series("", index=counties.index)
    attrs = None
    if attributes:
        table = lvector.read_table(attributes)
        attrs = join_attributes(counties, table, str(attributes))
    log.info("computing indicators for %d counties", len(counties))
    ind, info = compute_indicators(counties, rasters, model, attrs)
    ind["admin_type"] = ind_mod.admin_type(names)
    log.info("classifying with model %s", model.id)
    res = cls.classify(ind, model)
    zones = gpd.GeoDataFrame({"county_id": counties["_id"].astype(str), "name": names}, index=counties.index,
                             geometry=counties.geometry.values, crs=counties.crs)
    for c in res.columns:
        zones[c] = res[c]
    zones["area_km2"] = ind["area_km2"]
    for c in ind.columns:
        if c not in zones.columns:
            zones[c] = ind[c]
    if sensitivity:
        log.info("sensitivity: %d perturbed runs (±%.0f%%, seed %d)", sensitivity, sensitivity_spread * 100, seed)
        s = cls.sensitivity(ind, model, sensitivity, sensitivity_spread, seed, res["zone"].to_numpy())
        zones["stability"] = s["stability"]
        zones["alt_zone"] = s["alt_zone"]
    zones["review"] = zones["review"].astype(bool)
    zones = zones.reset_index(drop=True)
    info.update({"model": model.id, "model_source": model.source, "counties": report,
                 "name_field": nfield, "area_method": "geodesic (GRS80)", "crs": counties.crs.to_string()})
    return zones, info


def _layer_titles() -> dict:
    return {
        "zones": ("Main function zones 主体功能区", "County classification by zoning; one row per county."),
        "conflicts": ("Control-line conflicts 三线冲突", "Overlaps between and within the three control lines."),
        "violations": ("Construction violations 违法建设图斑", "Construction parcels in the red line, on "
                       "permanent farmland or outside the urban development boundary."),
        "county_summary": ("County summary 县级汇总", "Count and area per county and check."),
        "red_line": ("Ecological protection red line 生态保护红线", ""),
        "farmland": ("Permanent basic farmland 永久基本农田", ""),
        "urban_boundary": ("Urban development boundary 城镇开发边界", ""),
    }


def write_outputs(path, layers: dict, overwrite: bool, metadata: dict) -> Path:
    """Write layers to a GeoPackage with QGIS default styles and ``styles/<layer>.qml`` beside it."""
    from layers import gpkg, styles

    qml = {name: styles.qml_for(name, df) for name, df in layers.items() if isinstance(df, gpd.GeoDataFrame)}
    qml = {k: v for k, v in qml.items() if v}
    out = gpkg.write_layers(Path(path), layers, overwrite=overwrite, metadata=metadata, styles=qml,
                            titles=_layer_titles())
    styles.write_qml_files(Path(path).parent / "styles", qml)
    return out


def run_classify(counties, rasters, output, overwrite: bool = False, spread: float = 0.10, **kwargs):
    """``zoning classify``: classify and write the ``zones`` layer. Returns (output path, zones)."""
    from layers import gpkg

    gpkg.check_target(Path(output), overwrite)
    zones, info = classify_counties(counties, rasters, sensitivity_spread=spread, **kwargs)
    meta = {"tool": "zoning", "version": _version(), "run_time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **{k: v for k, v in info.items() if k != "counties"}}
    path = write_outputs(output, {"zones": zones}, overwrite, meta)
    return path, zones


def _version() -> str:
    from . import __version__

    return __version__
