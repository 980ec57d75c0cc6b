"""Rows of the tool's GeoPackage as the reports read them: streamed in Arrow batches, the most severe first, coded
fields with their Chinese label. Shared by the XLSX/CSV writer (:mod:`.report`) and the HTML (:mod:`.report_html`)."""
from __future__ import annotations

from pathlib import Path

import pyogrio

from zoning import outputs

from .gpkg import severity_sql


def fields(gpkg: Path, layer: str) -> list[str] | None:
    """The declared order of the fields ``layer`` has in ``gpkg`` (None when the layer is absent)."""
    if layer not in {n for n, _ in pyogrio.list_layers(gpkg)}:
        return None
    return outputs.columns(layer, pyogrio.read_info(gpkg, layer=layer)["fields"])


def batches(gpkg: Path, layer: str = "violations", where: str | None = None, order: str | None = None,
            batch: int = 10_000, cols: list[str] | None = None):
    """Rows of ``layer`` (no geometry) as Arrow batches, in SQL ``order``: memory follows the batch, not the run.

    ``cols``: the columns (default: the layer's, in the declared order); ``X_zh`` of a coded column ``X`` is
    computed, its Chinese label."""
    cols = cols or fields(gpkg, layer)
    select = [label_sql(c[:-3]) + f" AS {_quote(c)}" if c.endswith("_zh") and c[:-3] in LABELLED else _quote(c)
              for c in cols]
    sql = f"SELECT {', '.join(select)} FROM {_quote(layer)}" + (f" WHERE {where}" if where else "") \
        + (f" ORDER BY {order}" if order else "")
    with pyogrio.open_arrow(gpkg, sql=sql, sql_dialect="SQLITE", batch_size=batch, use_pyarrow=True) as (_, reader):
        yield from reader


LABELLED = ("zone",)  # coded ledger fields printed in Chinese beside their code


def label_sql(column: str) -> str:
    """An SQL expression giving a coded column's Chinese label (the code itself where it has none)."""
    whens = " ".join(f"WHEN '{k}' THEN '{c.zh}'" for k, c in outputs.VALUE_MAPS[column].items())
    return f"CASE {_quote(column)} {whens} ELSE {_quote(column)} END"


def with_labels(cols: list[str]) -> list[str]:
    """``cols`` with ``X_zh`` after each coded column ``X`` of :data:`LABELLED` that has none."""
    out = []
    for c in cols:
        out.append(c)
        if c in LABELLED and f"{c}_zh" not in cols:
            out.append(f"{c}_zh")
    return out


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


SEVERE_FIRST = f"{severity_sql('severity')} DESC, area_m2 DESC, violation_id"


def severe_first(cols: list[str]) -> str | None:
    """:data:`SEVERE_FIRST` over the columns a layer has (an earlier run's layer may carry only a few)."""
    parts = ([f"{severity_sql('severity')} DESC"] if "severity" in cols else []) + \
        (["area_m2 DESC"] if "area_m2" in cols else []) + (["violation_id"] if "violation_id" in cols else [])
    return ", ".join(parts) or None


FAILED = "rectification_failed = 1"  # 整改不到位: the parcels of the ledger marked 已整改 and still found


def failed_columns(gpkg: Path) -> list[str] | None:
    """The ledger's columns for the 整改不到位 list (None without an earlier run)."""
    pcols = fields(gpkg, "parcels")
    if not pcols or "rectification_failed" not in pcols:
        return None
    return [c for c in ("parcel_id", "county_id", "county_name", "area_mu", "worst_severity", "violation_ids",
                        "verdict", "status", "checked_by", "checked_on", "remark", "previous_parcel_ids")
            if c in pcols]


def survey_period(gpkg: Path) -> str:
    """The first and last detection dates of the findings ("2024-01-03 – 2024-12-28"; "" without dates)."""
    if "detected_on" not in (fields(gpkg, "violations") or []):
        return ""
    df = pyogrio.read_dataframe(gpkg, sql="SELECT min(detected_on) AS a, max(detected_on) AS b FROM violations "
                                "WHERE detected_on IS NOT NULL AND detected_on NOT IN ('', 'None', 'nan')",
                                sql_dialect="SQLITE")
    a, b = (df["a"].iloc[0], df["b"].iloc[0]) if len(df) else (None, None)
    return "" if not a else (a if a == b else f"{a} – {b}")


def construction_geometries(gpkg: Path, batch: int = 50_000):
    """(county ids, geometries) of the construction findings, in county order, as Arrow batches hold them; and
    the layer's CRS as the first item."""
    import shapely

    if fields(gpkg, "violations") is None:
        return
    geom = pyogrio.read_info(gpkg, layer="violations")["geometry_name"] or "geom"
    sql = (f"SELECT county_id, {_quote(geom)} FROM violations WHERE check_id LIKE 'construction%' "
           "ORDER BY county_id")
    with pyogrio.open_arrow(gpkg, sql=sql, sql_dialect="SQLITE", batch_size=batch, use_pyarrow=True) as (meta, r):
        yield meta.get("crs")
        for b in r:
            yield (b.column("county_id").to_numpy(zero_copy_only=False),
                   shapely.from_wkb(b.column(b.schema.names[1]).to_numpy(zero_copy_only=False)))
