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


def write_reports(directory: Path, violations: pd.DataFrame, conflicts: pd.DataFrame, summary: pd.DataFrame,
                  meta: dict) -> list[Path]:
    """Write the three report files into ``directory`` (a directory being built inside an atomic output)."""
    from zoning import outputs, report as rep

    directory = Path(directory)
    csv_path, xlsx_path, html_path = (directory / f for f in REPORT_FILES)
    # CSV: the contract's field names (a second header row would break scripts), UTF-8 with BOM for Excel
    formula_safe(violations).to_csv(csv_path, index=False, encoding="utf-8-sig")

    with pd.ExcelWriter(xlsx_path, engine="openpyxl") as xw:
        rep.with_chinese_headers(formula_safe(summary)).to_excel(xw, sheet_name="汇总 summary", index=False)
        frames = [("conflicts", conflicts), ("violations", violations)]
        order = sorted(outputs.CHECKS.values(), key=lambda c: -outputs.SEVERITIES[c.severity].rank)
        for _, df in frames:
            for spec in order:
                grp = df[df["check_id"] == spec.id] if len(df) else df.iloc[:0]
                if not len(grp):
                    continue
                if len(grp) > XLSX_MAX_ROWS:
                    log.warning("report.xlsx: sheet %s keeps the first %d of %d rows (the Excel limit); "
                                "violations.csv has them all", spec.zh, XLSX_MAX_ROWS, len(grp))
                    grp = grp.head(XLSX_MAX_ROWS)
                rep.with_chinese_headers(formula_safe(grp)).to_excel(xw, sheet_name=spec.zh[:31], index=False)
    html_path.write_text(_html(violations, conflicts, summary, meta), encoding="utf-8")
    log.info("wrote reports to %s", directory)
    return [csv_path, xlsx_path, html_path]


def _table(df: pd.DataFrame) -> str:
    if len(df) == 0:
        return "<p>无 none</p>"
    return df.to_html(index=False, escape=True, border=0, classes="t", na_rep="", float_format=lambda v: f"{v:,.2f}")


def _html(violations, conflicts, summary, meta) -> str:
    from zoning import report as rep

    top = rep.top_violations(violations, 50)
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
<h2>最严重的违法图斑 Top violations (of {len(violations)})</h2>{_table(rep.with_chinese_headers(top))}
</body></html>
"""
