"""Audit report files: violations.csv, report.xlsx (Chinese headers), report.html (self-contained)."""
from __future__ import annotations

import itertools
import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import xlsx
from .report_html import write_html
from .report_svg import thumbnail
from .gpkg import severity_sql
from .report_rows import (FAILED, SEVERE_FIRST, batches, failed_columns, fields, severe_first, survey_period,
                          with_labels)

log = logging.getLogger("zoning")
REPORT_FILES = ("violations.csv", "report.xlsx", "report.html")


_RISKY = r"^[=+\-@\t\r]"  # what a spreadsheet would run as a formula (OWASP CSV injection)


def _safe_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Text cells that a spreadsheet would run as a formula get a leading apostrophe."""
    cols = []
    for col in batch.columns:
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            risky = pc.fill_null(pc.match_substring_regex(col, _RISKY), False)
            col = pc.if_else(risky, pc.binary_join_element_wise("'", col, ""), col)
        cols.append(col)
    return pa.RecordBatch.from_arrays(cols, names=batch.schema.names)


def formula_safe(df: pd.DataFrame) -> pd.DataFrame:
    """The same for a DataFrame (the HTML page's tables)."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            col = out[c].astype(object)
            risky = col.astype(str).str.match(_RISKY) & col.map(lambda v: isinstance(v, str))
            out[c] = col.where(~risky, "'" + col.astype(str))
    return out


def _frame_batches(df: pd.DataFrame):
    yield from pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False).combine_chunks().to_batches()


def _width(col: str) -> float:
    from zoning import outputs

    # ids print whole (a parcel number cut short sends the field team to the wrong 图斑): 12-character 卫片 ids
    # and 8-character control ids need 15 widths
    return {"violation_id": 40, "violation_ids": 40, "continues_ids": 40, "previous_parcel_ids": 30,
            "follow_up_note": 40, "county_name": 12, "note": 40, "check_zh": 24, "remark": 24, "control_name": 20,
            "parcel_id": 15, "control_id": 12, "other_control_id": 12}.get(
        col, 13.0 if any(w in col for w in (" 数量 ", " 面积(亩) ", " 新增")) else  # a summary's figures (headers wrap)
        max(10.0, min(24.0, 1.6 * len(outputs.zh(col)) + 2)))


_LIST_COLUMNS = {"violation_ids", "continues_ids", "previous_parcel_ids", "follow_up_note", "note", "top_factors",
                 "reason"}  # '; '-separated lists and prose: capped, they wrap


def _style(col: str) -> str:
    from zoning import outputs

    f = outputs.FIELDS.get(col)
    if col.startswith("centroid_"):
        return "coord"
    if col.endswith("_on") or (f is not None and f.type == "date"):
        return "date"
    if col.endswith(("_m2", "_ha", "_mu")) or "面积" in col:
        return "area"
    return "int" if f is not None and f.type == "int" else "plain"


# codes beside their Chinese label, m² and ha beside 亩: in the sheet for filters and scripts, hidden on paper;
# ``overlap`` prints: it explains why a list's rows add up to more than its total
_PRINT_HIDDEN = {"check_id", "severity", "change", "control_code", "county_id", "worst_severity", "zone"}


def _hidden(col: str) -> bool:
    return col in _PRINT_HIDDEN or col.endswith(("_m2", "_ha")) and col != "area_ha"


def _content_width(col: pa.Array) -> float:
    """The widest text of a column in terminal columns (a Chinese character takes two), from byte and character
    counts (UTF-8: 3 bytes for a Chinese character, 1 for ASCII), without a Python loop over the values."""
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)) or len(col) == 0:
        return 0.0
    chars = pc.utf8_length(col)
    width = pc.add(chars, pc.divide(pc.subtract(pc.binary_length(col), chars), 2))
    top = pc.max(width).as_py()
    return float(top or 0)


def _sheet(wb: xlsx.Workbook, title: str, columns: list[str], batches) -> int:
    from zoning import outputs

    # widths from the content of the first batch (the most severe rows): a single id never prints cut; long lists
    # (violation_ids, notes) keep their cap and wrap on screen
    batches = iter(batches)
    first = next(batches, None)
    widths = []
    for c in columns:
        w = _width(c)
        if first is not None and c not in _LIST_COLUMNS:
            w = max(w, min(60.0, _content_width(first.column(c)) + 2))
        widths.append(w)
    rest = batches if first is None else itertools.chain([first], batches)
    n = wb.sheet(title, columns, [outputs.label(c) for c in columns], rest, widths,
                 {c: _style(c) for c in columns}, {c for c in columns if _hidden(c)})
    if n >= xlsx.MAX_ROWS:
        log.warning("report.xlsx: sheet %s keeps the first %d rows (the Excel limit); violations.csv has them all",
                    title, xlsx.MAX_ROWS)
    return n


def _write_csv(path: Path, gpkg: Path) -> int:
    """violations.csv: the XLSX's bilingual headers (Chinese first), UTF-8 with BOM so Excel shows Chinese,
    formula-like text prefixed with an apostrophe, rows most severe first."""
    import csv
    import io

    import pyarrow.csv as pacsv

    from zoning import outputs

    cols = fields(gpkg, "violations")
    n = 0
    with open(path, "wb") as f:
        head = io.StringIO()
        csv.writer(head, lineterminator="\n").writerow([outputs.label(c) for c in cols])
        f.write(("\ufeff" + head.getvalue()).encode("utf-8"))
        writer = None
        for batch in batches(gpkg, order=SEVERE_FIRST):
            if writer is None:
                writer = pacsv.CSVWriter(f, batch.schema, write_options=pacsv.WriteOptions(include_header=False))
            writer.write_batch(_safe_batch(batch))
            n += batch.num_rows
        if writer is not None:
            writer.close()
    return n


def _write_xlsx(path: Path, gpkg: Path, conflicts: pd.DataFrame, summary: pd.DataFrame, meta: dict) -> None:
    """A filing: the summary (every county, TOTAL last), new findings, one sheet per check most severe first
    (rows by severity, then area), the parcel ledger and the rectified findings."""
    from zoning import outputs, policy_tables as policy, report as rep

    vcols = fields(gpkg, "violations")
    with xlsx.Workbook(path) as wb:
        # counts on the first sheet, areas on the next: each prints legibly one page wide (both together, 22
        # columns, printed at about 3 pt)
        wide = rep.wide_summary(summary, areas=False)
        _sheet(wb, "汇总 summary", list(wide.columns), _frame_batches(wide))
        areas = rep.wide_summary(summary, counts=False)
        if areas.shape[1] > 2:
            _sheet(wb, "汇总面积 areas (亩)", list(areas.columns), _frame_batches(areas))
        if "change" in vcols:
            _sheet(wb, "新增 new", vcols, batches(gpkg, where="change <> 'existing'", order=SEVERE_FIRST))
        for check in rep.check_order():
            spec = outputs.CHECKS[check]
            if spec.kind == "conflict":
                grp = conflicts[conflicts["check_id"] == check] if len(conflicts) else conflicts
                if len(grp):
                    grp = grp.sort_values(["area_m2", "violation_id"], ascending=[False, True])
                    _sheet(wb, spec.zh, list(grp.columns), _frame_batches(grp))
            else:
                _sheet(wb, spec.zh, vcols, batches(gpkg, where=f"check_id = '{check}'", order=SEVERE_FIRST))
        pcols = fields(gpkg, "parcels")
        if pcols:
            pcols = with_labels(pcols)
            _sheet(wb, "图斑台账 parcels", pcols,
                   batches(gpkg, "parcels", order=f"{severity_sql('worst_severity')} DESC, area_m2 DESC, parcel_id",
                           cols=pcols))
        rect = rep.rectification_table(summary, counties=True)
        if len(rect.columns):
            _sheet(wb, "整改核验 rectification", list(rect.columns), _frame_batches(rect))
        fcols = failed_columns(gpkg)
        if fcols:
            _sheet(wb, "整改不到位 not rectified", fcols, batches(gpkg, "parcels", where=FAILED,
                                                             order="county_id, parcel_id"))
        rcols = fields(gpkg, "rectified")
        if rcols:
            _sheet(wb, "已整改 rectified", rcols, batches(gpkg, "rectified", order=severe_first(rcols)))
        if fields(gpkg, "compensation"):  # zoning run with compensate = true: the ranked table, method beside
            from pyogrio import read_dataframe

            ranked = policy.compensation_table(read_dataframe(gpkg, layer="compensation", read_geometry=False))
            _sheet(wb, "生态补偿 compensation", list(ranked.columns), _frame_batches(ranked))
        prov = rep.provenance_table(meta.get("provenance"), survey_period(gpkg))
        method = policy.compensation_method(meta.get("compensation"))
        if method:
            prov = pd.concat([prov, pd.DataFrame(method, columns=["项目 item", "值 value"])], ignore_index=True)
        if len(prov):  # last, as an appendix: what the filing was made from
            _sheet(wb, "来源 provenance", list(prov.columns), _frame_batches(prov))


def write_reports(directory: Path, gpkg: Path, conflicts: pd.DataFrame, summary: pd.DataFrame,
                  meta: dict, lines: dict | None = None) -> list[Path]:
    """Write the three report files into ``directory`` (a directory being built inside an atomic output).

    Rows are streamed from the GeoPackage ``gpkg`` (layers ``violations``, ``parcels``, ``rectified``) as Arrow
    batches, so memory does not grow with them. ``lines``: the control lines, drawn in the HTML's map thumbnail.
    """
    from pyogrio import read_dataframe

    pts = read_dataframe(gpkg, layer="violations", columns=["centroid_lon", "centroid_lat", "severity"],
                         read_geometry=False).rename(columns={"centroid_lon": "lon", "centroid_lat": "lat"})

    directory = Path(directory)
    csv_path, xlsx_path, html_path = (directory / f for f in REPORT_FILES)
    _write_csv(csv_path, gpkg)
    _write_xlsx(xlsx_path, gpkg, conflicts, summary, meta)
    write_html(html_path, gpkg, conflicts, summary, meta, thumbnail(lines, pts))
    log.debug("wrote reports to %s", directory)
    return [csv_path, xlsx_path, html_path]


