"""``zoning compare``: a ``zones`` layer against an official designation table."""
from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd

from layers import gpkg, styles, vector as lvector
from layers.files import check_target, target
from layers.postgis import is_uri, parse

from .. import compare as cmp, outputs, tables, validate
from ..errors import DataError
from . import record

log = logging.getLogger("zoning")
REF_ID_FIELDS = ("county_id", "adcode", "code", "id", "区划代码")
REF_ZONE_FIELDS = ("zone", "designation", "主体功能区", "reference_zone")


def read_reference(path, id_field: str | None, zone_field: str | None, header_row: int | None = None):
    """The reference table with ``county_id`` and ``reference_zone`` (zone names normalised)."""
    raw = lvector.read_table(path, role="reference")
    t, notes = tables.clean_table(raw, str(path), (), header_row)
    for n in notes:
        log.warning("%s", n)
    idf = validate.pick_field(t, id_field, REF_ID_FIELDS, f"reference {path}", "--reference-id-field")
    zf = validate.pick_field(t, zone_field, REF_ZONE_FIELDS, f"reference {path}", "--reference-zone-field")
    if idf is None or zf is None:
        raise DataError(f"reference {path}: needs a county id column ({', '.join(REF_ID_FIELDS)}) and a zone column "
                        f"({', '.join(REF_ZONE_FIELDS)}); its columns are {', '.join(c for c in t if c != '_row')}. "
                        "Name them with --reference-id-field and --reference-zone-field.")
    out = t[[idf, zf]].rename(columns={idf: "county_id", zf: "reference_zone"})
    out["county_id"] = out["county_id"].astype(str).str.strip().str.removesuffix(".0")
    out["reference_zone"] = cmp.normalise_zones(out["reference_zone"], f"reference {path}, column {zf!r}")
    dup = out["county_id"][out["county_id"].duplicated()]
    if len(dup):
        raise DataError(f"reference {path}: duplicate county ids {', '.join(sorted(set(dup))[:10])}")
    return out.dropna(subset=["reference_zone"])


def comparison_layer(res: cmp.Comparison, zones: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    cols = [c for c in outputs.columns("comparison") if c in res.table.columns]
    return gpd.GeoDataFrame(res.table[cols].reset_index(drop=True), geometry=list(zones.geometry.values),
                            crs=zones.crs)


def read_zones(zones_spec, county_id: str | None = None) -> gpd.GeoDataFrame:
    """The zones of ``zoning classify`` / ``zoning run`` (a GeoPackage's ``zones`` layer, or a layer named in the
    spec) with ``county_id`` and ``zone``; ``county_id``: the id field when it is not ``county_id``."""
    if is_uri(zones_spec):  # a PostGIS table of zones
        src = parse(zones_spec)
    else:
        src = zones_spec if isinstance(zones_spec, lvector.LayerSource) else lvector.parse_source(zones_spec)
    if not is_uri(src) and src.layer is None and src.path.suffix.lower() == ".gpkg" and src.path.exists() and \
            "zones" in lvector.list_layers(src.path):
        src = lvector.LayerSource(src.path, "zones")  # the tool's own GeoPackage: its zones, not its conflicts
    zones = lvector.read_vector(src, role="zones")
    key = county_id or "county_id"
    missing = [c for c in (key, "zone") if c not in zones.columns]
    if missing:
        fields = ", ".join(c for c in zones.columns if c != zones.geometry.name)
        raise DataError(f"zones {zones.attrs['source']}: no {', '.join(missing)} field (fields: {fields}). Give the "
                        "zones layer written by zoning classify or zoning run (e.g. out/zoning.gpkg), or name its id "
                        "field with --county-id.")
    zones["county_id"] = zones[key].astype(str)
    return zones


def run_compare(zones_spec, reference, output, id_field=None, zone_field=None, header_row=None,
                overwrite: bool = False, county_id: str | None = None):
    """Compare, write layer ``comparison`` to ``output``; returns the :class:`zoning.compare.Comparison`.

    ``zones_spec``: a zones layer, or the GeoPackage of ``zoning run`` / ``zoning classify`` (its ``zones`` layer is
    taken); ``county_id``: the zones' id field when it is not ``county_id``."""
    out = target(output)
    src = parse(zones_spec) if is_uri(zones_spec) else lvector.parse_source(zones_spec)
    check_target(out, overwrite, ([] if is_uri(src) else [src.path]) + [Path(reference)], suffix=".gpkg")
    zones = read_zones(src, county_id)
    ref = read_reference(reference, id_field, zone_field, header_row)
    res = cmp.compare(zones, ref)
    if res.unmatched:
        log.warning("reference %s: %d id(s) match no county: %s", reference, len(res.unmatched),
                    ", ".join(res.unmatched[:20]) + (" …" if len(res.unmatched) > 20 else ""))
    layer = comparison_layer(res, zones)
    meta = {**record.metadata(), "zones": str(src), "reference": str(reference),
            "agreement": res.agreement, "kappa": res.kappa, "compared": res.compared}
    gpkg.write_layers(out, {"comparison": layer}, overwrite, meta, styles.qml_for_layers({"comparison": layer}),
                      inputs=[Path(reference)])
    return res
