"""Audit report files: violations.csv, report.xlsx (Chinese headers), report.html (self-contained)."""
from __future__ import annotations

import html
import logging
import os
from pathlib import Path

import pandas as pd

from zoning.errors import OutputError

log = logging.getLogger("zoning")
REPORT_FILES = ("violations.csv", "report.xlsx", "report.html")
XLSX_MAX_ROWS = 1_048_575  # Excel's row limit, less the header


def check_report_dir(directory: Path, overwrite: bool) -> None:
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"--report {directory} is a file; give a directory.")
    existing = [f for f in REPORT_FILES if (directory / f).exists()]
    if existing and not overwrite:
        raise OutputError(f"{directory} already holds {', '.join(existing)}; pass --overwrite to replace them.")
    parent = directory if directory.exists() else directory.parent
    if not os.access(parent if str(parent) else ".", os.W_OK):
        raise OutputError(f"report directory {directory} is not writable.")


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.part{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_reports(directory: Path, violations: pd.DataFrame, conflicts: pd.DataFrame, summary: pd.DataFrame,
                  meta: dict, overwrite: bool = False) -> list[Path]:
    """Write the three report files; each is written to a temporary file first, then renamed."""
    from zoning import report as rep

    directory = Path(directory)
    check_report_dir(directory, overwrite)
    directory.mkdir(parents=True, exist_ok=True)
    csv_path, xlsx_path, html_path = (directory / f for f in REPORT_FILES)
    # CSV: the contract's English column names, UTF-8 with BOM so Excel shows Chinese correctly
    _atomic(csv_path, lambda p: violations.to_csv(p, index=False, encoding="utf-8-sig"))

    def xlsx(p):
        with pd.ExcelWriter(p, engine="openpyxl") as xw:
            rep.with_chinese_headers(summary).to_excel(xw, sheet_name="汇总 summary", index=False)
            frames = [("conflicts", conflicts), ("violations", violations)]
            for _, df in frames:
                for check, grp in df.groupby("check_id", sort=False) if len(df) else []:
                    sheet = rep.CHECK_ZH.get(check, check)[:31]
                    if len(grp) > XLSX_MAX_ROWS:
                        log.warning("report.xlsx: sheet %s keeps the first %d of %d rows (the Excel limit); "
                                    "violations.csv has them all", sheet, XLSX_MAX_ROWS, len(grp))
                        grp = grp.head(XLSX_MAX_ROWS)
                    rep.with_chinese_headers(grp).to_excel(xw, sheet_name=sheet, index=False)
    _atomic(xlsx_path, xlsx)
    _atomic(html_path, lambda p: p.write_text(_html(violations, conflicts, summary, meta), encoding="utf-8"))
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
<html lang="zh-CN"><head><meta charset="utf-8"><title>三条控制线检查报告 Control-line audit report</title>
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
