"""Audit report files: violations.csv, report.xlsx (Chinese headers), report.html (self-contained)."""
from __future__ import annotations

import html
import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import xlsx
from .files import GENERATOR

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


def _batches(gpkg: Path, where: str | None = None, batch: int = 10_000):
    """Violation rows from the written GeoPackage as Arrow batches (memory follows the batch, not the run)."""
    from pyogrio import open_arrow

    with open_arrow(gpkg, layer="violations", read_geometry=False, where=where, batch_size=batch,
                    use_pyarrow=True) as (_, reader):
        yield from reader


def _frame_batches(df: pd.DataFrame):
    yield from pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False).combine_chunks().to_batches()


def _width(col: str) -> float:
    from zoning import outputs

    return {"violation_id": 40, "county_name": 12, "note": 40, "check_zh": 24}.get(
        col, max(10.0, min(24.0, 1.6 * len(outputs.zh(col)) + 2)))


def _style(col: str) -> str:
    return "area" if col.startswith("area_") else "coord" if col.startswith("centroid_") else "plain"


def _sheet(wb: xlsx.Workbook, title: str, columns: list[str], batches) -> int:
    from zoning import outputs

    n = wb.sheet(title, columns, [outputs.label(c) for c in columns], batches, [_width(c) for c in columns],
                 {c: _style(c) for c in columns})
    if n >= xlsx.MAX_ROWS:
        log.warning("report.xlsx: sheet %s keeps the first %d rows (the Excel limit); violations.csv has them all",
                    title, xlsx.MAX_ROWS)
    return n


def _write_csv(path: Path, gpkg: Path) -> int:
    """violations.csv: the contract's field names (a second header row would break scripts), UTF-8 with BOM so
    Excel shows Chinese, formula-like text prefixed with an apostrophe."""
    import pyarrow.csv as pacsv

    from zoning import outputs

    n, writer = 0, None
    with open(path, "wb") as f:
        f.write("\ufeff".encode("utf-8"))
        for batch in _batches(gpkg):
            if writer is None:
                writer = pacsv.CSVWriter(f, batch.schema)
            writer.write_batch(_safe_batch(batch))
            n += batch.num_rows
        if writer is None:
            f.write((",".join(outputs.columns("violations")) + "\n").encode("utf-8"))
        else:
            writer.close()
    return n


def _write_xlsx(path: Path, gpkg: Path, conflicts: pd.DataFrame, summary: pd.DataFrame) -> None:
    from zoning import outputs

    order = sorted(outputs.CHECKS.values(), key=lambda c: -outputs.SEVERITIES[c.severity].rank)
    with xlsx.Workbook(path) as wb:
        _sheet(wb, "汇总 summary", list(summary.columns), _frame_batches(summary))
        for spec in order:  # most severe first: the red-line sheet right after the summary
            if spec.kind == "conflict" and len(conflicts):
                grp = conflicts[conflicts["check_id"] == spec.id]
                if len(grp):
                    _sheet(wb, spec.zh, list(grp.columns), _frame_batches(grp))
            elif spec.kind == "construction":
                _sheet(wb, spec.zh, outputs.columns("violations"), _batches(gpkg, f"check_id = '{spec.id}'"))


def write_reports(directory: Path, gpkg: Path, conflicts: pd.DataFrame, summary: pd.DataFrame,
                  top: pd.DataFrame, meta: dict) -> list[Path]:
    """Write the three report files into ``directory`` (a directory being built inside an atomic output).

    Violations are streamed from the GeoPackage ``gpkg`` (layer ``violations``) as Arrow batches, so memory does not
    grow with them; ``top`` holds the most serious ones for the HTML page.
    """
    directory = Path(directory)
    csv_path, xlsx_path, html_path = (directory / f for f in REPORT_FILES)
    n = _write_csv(csv_path, gpkg)
    _write_xlsx(xlsx_path, gpkg, conflicts, summary)
    html_path.write_text(_html(top, n, conflicts, summary, meta), encoding="utf-8")
    log.debug("wrote reports to %s", directory)
    return [csv_path, xlsx_path, html_path]


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
