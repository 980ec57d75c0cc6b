"""Audit report files: violations.csv, report.xlsx (Chinese headers), report.html (self-contained)."""
from __future__ import annotations

import html
import logging
from pathlib import Path

import pandas as pd

from .files import GENERATOR

log = logging.getLogger("zoning")
REPORT_FILES = ("violations.csv", "report.xlsx", "report.html")
XLSX_MAX_ROWS = 1_048_575  # Excel's row limit, less the header


_RISKY = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula get a leading apostrophe (OWASP CSV injection)."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            col = out[c].astype(object)
            risky = col.map(lambda v: isinstance(v, str) and v.startswith(_RISKY))
            if risky.any():
                out[c] = col.where(~risky, "'" + col.astype(str))
    return out


def _batches(gpkg: Path, where: str | None = None, batch: int = 20_000):
    """Violation rows from the written GeoPackage, batch by batch (memory follows the batch, not the run)."""
    from pyogrio import open_arrow

    with open_arrow(gpkg, layer="violations", read_geometry=False, where=where, batch_size=batch,
                    use_pyarrow=True) as (_, reader):
        for b in reader:
            yield b.to_pandas()


def _sheet(wb, title: str, frames, widths: dict[str, float] | None = None) -> int:
    """A write-only sheet: bilingual header, frozen and filtered, widths, 0.01 number format for areas."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.utils import get_column_letter
    from zoning import outputs

    ws = wb.create_sheet(title[:31])
    n, cols = 0, None
    for df in frames:
        if cols is None:
            cols = list(df.columns)
            for j, c in enumerate(cols, 1):
                ws.column_dimensions[get_column_letter(j)].width = (widths or {}).get(c, _width(c))
            ws.freeze_panes = "A2"
            ws.append([outputs.label(c) for c in cols])
        fmt = {j: ("#,##0.00" if c.startswith("area_") else "0.0000000" if c.startswith("centroid_") else None)
               for j, c in enumerate(cols)}
        for row in formula_safe(df[cols]).itertuples(index=False, name=None):
            if n >= XLSX_MAX_ROWS:
                log.warning("report.xlsx: sheet %s keeps the first %d rows (the Excel limit); violations.csv has "
                            "them all", title, XLSX_MAX_ROWS)
                return n
            cells = []
            for j, v in enumerate(row):
                if v is None or (isinstance(v, float) and v != v):
                    v = None
                if fmt[j] and v is not None:
                    cell = WriteOnlyCell(ws, value=v)
                    cell.number_format = fmt[j]
                    cells.append(cell)
                else:
                    cells.append(v)
            ws.append(cells)
            n += 1
    if cols:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(cols))}{n + 1}"
    return n


def _width(col: str) -> float:
    from zoning import outputs

    return {"violation_id": 40, "county_name": 12, "note": 40, "check_zh": 24}.get(
        col, max(10.0, min(24.0, 1.6 * len(outputs.zh(col)) + 2)))


def write_reports(directory: Path, gpkg: Path, conflicts: pd.DataFrame, summary: pd.DataFrame,
                  top: pd.DataFrame, meta: dict) -> list[Path]:
    """Write the three report files into ``directory`` (a directory being built inside an atomic output).

    Violations are streamed from the GeoPackage ``gpkg`` (layer ``violations``), so memory does not grow with them;
    ``top`` holds the most serious ones for the HTML page.
    """
    import openpyxl

    from zoning import outputs

    directory = Path(directory)
    csv_path, xlsx_path, html_path = (directory / f for f in REPORT_FILES)
    # CSV: the contract's field names (a second header row would break scripts), UTF-8 with BOM for Excel
    n = 0
    for i, df in enumerate(_batches(gpkg)):
        formula_safe(df).to_csv(csv_path, index=False, encoding="utf-8-sig" if i == 0 else "utf-8",
                                mode="w" if i == 0 else "a", header=i == 0)
        n += len(df)
    if n == 0:
        pd.DataFrame(columns=outputs.columns("violations")).to_csv(csv_path, index=False, encoding="utf-8-sig")

    wb = openpyxl.Workbook(write_only=True)
    try:
        _write_sheets(wb, gpkg, conflicts, summary)
        wb.save(xlsx_path)
    except BaseException:
        for ws in wb.worksheets:  # close the sheets' temporary writers quietly (an interrupt may land here)
            try:
                ws.close()
            except Exception:  # noqa: S110 - best effort while unwinding
                pass
        raise
    html_path.write_text(_html(top, n, conflicts, summary, meta), encoding="utf-8")
    log.debug("wrote reports to %s", directory)
    return [csv_path, xlsx_path, html_path]


def _write_sheets(wb, gpkg: Path, conflicts: pd.DataFrame, summary: pd.DataFrame) -> None:
    from zoning import outputs

    _sheet(wb, "汇总 summary", [summary])
    order = sorted(outputs.CHECKS.values(), key=lambda c: -outputs.SEVERITIES[c.severity].rank)
    for spec in order:  # most severe first: the red-line sheet right after the summary
        if spec.kind == "conflict" and len(conflicts):
            grp = conflicts[conflicts["check_id"] == spec.id]
            if len(grp):
                _sheet(wb, spec.zh, [grp])
        elif spec.kind == "construction":
            _sheet(wb, spec.zh, _batches(gpkg, f"check_id = '{spec.id}'"))


def _table(df: pd.DataFrame) -> str:
    if len(df) == 0:
        return "<p>无 none</p>"
    return df.to_html(index=False, escape=True, border=0, classes="t", na_rep="", float_format=lambda v: f"{v:,.2f}")


def _html(top, n_violations, conflicts, summary, meta) -> str:
    from zoning import report as rep

    totals = summary[summary["county_id"] == "TOTAL"] if len(summary) else summary
    e = html.escape
    meta_rows = "".join(f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>" for k, v in meta.items()
                        if not isinstance(v, dict))
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">{GENERATOR}<title>三条控制线检查报告 Control-line audit report</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; margin: 2em; color: #222; }}
table.t {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }}
table.t th, table.t td {{ border: 1px solid #bbb; padding: 3px 6px; text-align: right; }}
table.t th {{ background: #eee; }}
h1 {{ font-size: 1.4em; }} h2 {{ font-size: 1.15em; border-bottom: 1px solid #ccc; }}
</style></head><body>
<h1>三条控制线检查报告 · Control-line audit report</h1>
<table class="t">{meta_rows}</table>
<h2>检查项合计 Totals by check</h2>{_table(rep.with_chinese_headers(totals))}
<h2>按县汇总 Summary by county</h2>{_table(rep.with_chinese_headers(summary))}
<h2>控制线冲突 Conflicts between lines ({len(conflicts)})</h2>{_table(rep.with_chinese_headers(conflicts))}
<h2>最严重的问题图斑 Most serious findings (of {n_violations:,})</h2>{_table(rep.with_chinese_headers(top))}
</body></html>
"""
