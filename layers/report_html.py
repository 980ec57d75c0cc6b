"""report.html, a filing: Chinese first; the summary; a map thumbnail; a section per county with every finding
(paged on screen, all rows in print); conflicts; rectified findings. Self-contained (no network), streamed from
the GeoPackage so the page's memory on our side follows one county, not the run."""
from __future__ import annotations

import hashlib
import html
import json
import logging
import re
from pathlib import Path

import pandas as pd

from zoning import outputs, policy_tables as policy, report as rep

from .files import GENERATOR
from .report_rows import (FAILED, batches, construction_geometries, failed_columns, fields, severe_first,
                          survey_period)

log = logging.getLogger("zoning")
PAGE_ROWS = 100
INLINE_ROWS = 20_000  # above this, each county's findings go to a page of its own (counties/<id>.html)
# the columns that fit an A4 landscape page; the XLSX and CSV have them all
SHOWN = ("violation_id", "check_zh", "severity_zh", "parcel_id", "control_id", "area_mu", "area_ha", "centroid_lon",
         "centroid_lat", "detected_on", "change_zh", "new_area_mu")
META = {"run_time": "运行时间 run time", "version": "版本 version", "rules": "规则 rules", "area_method": "面积算法 area method",
        "parcels": "建设图斑数 parcels", "violations": "问题图斑数 findings", "rectified": "已整改数 rectified",
        "crs": "坐标系 CRS"}
WARN_BYTES = 25 * 1024 * 1024

CSS = """
body { font-family: "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; border-bottom: 1px solid #ccc; margin-top: 1.6em; }
h3 { font-size: 1em; margin: 1em 0 0.3em; }
table.t { border-collapse: collapse; margin: 0.4em 0 1em; font-size: 0.8em; }
table.t th, table.t td { border: 1px solid #bbb; padding: 2px 5px; text-align: right; white-space: nowrap; }
table.t th { background: #eee; position: sticky; top: 0; }
table.t td.s, table.t th.s { text-align: left; }
tr.total td { font-weight: bold; border-top: 2px solid #555; }
.sev-critical { color: #7f0000; font-weight: bold; } .sev-high { color: #c0392b; } tr.gone td { color: #555; }
.failed { color: #8e0152; }
.pager button { margin: 0 2px; } .muted { color: #777; font-size: 0.85em; }
#tools { margin: 0.5em 0 1em; } svg.thumb { border: 1px solid #ccc; background: #fafafa; }
@media print {
  @page { size: A4 landscape; margin: 8mm; }
  body { margin: 0; font-size: 9pt; }
  #tools, .pager, summary .hint { display: none; }
  table.t { font-size: 7pt; width: 100%; } table.t th { position: static; }
  table.t th, table.t td { white-space: normal; word-break: break-all; padding: 1px 3px; }
  section.county { break-inside: auto; } h2, h3 { break-after: avoid; }
  tr { break-inside: avoid; } thead { display: table-header-group; }
}
"""

SCRIPT = """
(function () {
  const PAGE = %(page)d;
  const fmt = (c, v) => {
    if (v === null || v === undefined) return '';
    if (typeof v === 'number') {
      if (c.startsWith('centroid_')) return v.toFixed(6);
      if (/_(mu|ha|m2)$/.test(c)) return v.toLocaleString('en-US', {minimumFractionDigits: 2, maximumFractionDigits: 2});
    }
    return String(v);
  };
  function render(box, page, all) {
    const data = JSON.parse(document.getElementById(box.dataset.src).textContent);
    const COLS = data.c, rows = data.r;
    const pages = Math.max(1, Math.ceil(rows.length / PAGE));
    page = Math.min(Math.max(page, 0), pages - 1);
    const part = all ? rows : rows.slice(page * PAGE, page * PAGE + PAGE);
    const table = document.createElement('table'); table.className = 't';
    const head = table.createTHead().insertRow();
    COLS.forEach(c => { const th = document.createElement('th'); th.textContent = c[1]; head.appendChild(th); });
    const body = table.createTBody();
    part.forEach(r => {
      const tr = body.insertRow();
      r.forEach((v, j) => { const td = tr.insertCell(); td.textContent = fmt(COLS[j][0], v);
        if (typeof v !== 'number') td.className = 's'; });
      const sev = r[COLS.findIndex(c => c[0] === 'severity_zh')];
      if (box.dataset.plain) tr.className = 'gone';
      else if (sev === '严重') tr.className = 'sev-critical'; else if (sev === '较重') tr.className = 'sev-high';
    });
    box.replaceChildren(table);
    const pager = box.nextElementSibling;
    pager.replaceChildren();
    if (!all && pages > 1) {
      const btn = (label, p) => { const b = document.createElement('button'); b.textContent = label;
        b.onclick = () => render(box, p, false); pager.appendChild(b); };
      btn('« 上一页', page - 1);
      pager.appendChild(document.createTextNode(` 第 ${page + 1} / ${pages} 页 (${rows.length} 条) `));
      btn('下一页 »', page + 1);
    }
    box.dataset.page = page;
  }
  document.querySelectorAll('details.rows').forEach(d => d.addEventListener('toggle', () => {
    const box = d.querySelector('.box'); if (d.open && !box.firstChild) render(box, 0, false); }));
  function all(on) {
    document.querySelectorAll('details.rows').forEach(d => { d.open = on; if (on) render(d.querySelector('.box'), 0, true); });
  }
  window.addEventListener('beforeprint', () => all(true));
  document.getElementById('expand').onclick = () => all(true);
  document.getElementById('print').onclick = () => { all(true); window.print(); };
  window.zoningRender = render;
})();
"""


def _json_block(block_id: str, text: str) -> str:
    # JSON inside <script>: a value holding "</script>" must not close the block
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{block_id}">{text}</script>'


def _rows_json(df: pd.DataFrame, cols: list[str]) -> str:
    """``{"c": [[field, label], …], "r": [[value, …], …]}``: the rows of one section for the script."""
    labels = json.dumps([[c, outputs.zh(c)] for c in cols], ensure_ascii=False)
    # json, not DataFrame.to_json: pandas' ujson has crashed the process (SIGSEGV) when Ctrl-C arrived mid-way
    part = df[cols].astype(object)
    rows = json.dumps(part.where(part.notna(), None).to_numpy().tolist(), ensure_ascii=False,
                      separators=(",", ":"), default=str)
    return '{"c":' + labels + ',"r":' + rows + "}"


def _table(df: pd.DataFrame, total: bool = False) -> str:
    if len(df) == 0:
        return "<p>无 none</p>"
    e = html.escape
    head = "".join(f'<th class="s">{e(str(c))}</th>' if df[c].dtype == object else f"<th>{e(str(c))}</th>"
                   for c in df.columns)
    rows = []
    for i, rec in enumerate(df.itertuples(index=False)):  # tables of counties and checks: thousands of rows at most
        cls = ' class="total"' if total and i == len(df) - 1 else ""
        cells = "".join(f'<td class="s">{e("" if v is None else str(v))}</td>' if isinstance(v, str) or v is None
                        else f"<td>{v:,.2f}</td>" if isinstance(v, float) else f"<td>{v:,}</td>"
                        for v in rec)
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f'<table class="t"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _head(title: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">{GENERATOR}<title>{html.escape(title)}'
            f'</title><style>{CSS}</style></head><body>\n')


def _tools() -> str:
    return ('<div id="tools"><button id="expand">展开全部 expand all</button> <button id="print">打印全部 print all'
            '</button></div>\n')


def _foot() -> str:
    return f"<script>{SCRIPT % {'page': PAGE_ROWS}}</script></body></html>\n"


def page_name(county_id: str) -> str:
    """A file name for a county's pages: the id where it is plain (a 6-digit code), else its plain characters and
    a short digest of the id, so that counties keyed by Chinese names never share a page."""
    plain = re.sub(r"[^0-9A-Za-z_.-]", "_", county_id).strip("._") or "county"
    if plain == county_id:
        return plain
    return f"{plain[:40]}-{hashlib.blake2b(county_id.encode('utf-8'), digest_size=4).hexdigest()}"


def _county_sections(f, gpkg: Path, cols: list[str], pages: Path | None, areas: dict) -> int:
    """One section per county with findings, its rows as JSON (rendered page by page by the script); with
    ``pages`` (a folder), each county's rows go to pages of their own there (at most ``INLINE_ROWS`` rows each, so
    no page grows with the run) and the section links to them. Memory holds one batch and one page of rows."""
    from .gpkg import severity_sql

    order = f"county_id, {severity_sql('severity')} DESC, area_m2 DESC, violation_id"
    st = {"cid": None, "name": "", "buf": [], "parts": [], "n": 0, "mu": 0.0, "by": {}, "k": 0}

    def rows_block(g: pd.DataFrame) -> str:
        st["k"] += 1
        return ('<details class="rows"><summary>问题图斑清单 findings <span class="hint">(点击展开 click to open)'
                f'</span></summary><div class="box" data-src="c{st["k"]}"></div><div class="pager"></div></details>'
                + _json_block(f"c{st['k']}", _rows_json(g, cols)))

    def head() -> str:
        # the ground all findings cover, once; then each check's own (county_summary): checks are not added up
        ground, checks = areas.get(st["cid"], (None, ()))
        what = "；".join(f"{html.escape(str(c))} {n:,} 个 {mu:,.2f} 亩" for c, n, mu in checks)
        held = f"，占地 {ground:,.2f} 亩 ground " if ground is not None else " "
        return (f'<h3>{html.escape(st["name"])} ({html.escape(st["cid"])})：{st["n"]:,} 个问题图斑{held}'
                f'<span class="muted">{what}</span></h3>')

    def write_part(g: pd.DataFrame) -> None:
        page = f"{page_name(st['cid'])}-{len(st['parts']) + 1}.html"
        title = f"{st['name']} 问题图斑清单 findings ({len(st['parts']) + 1})"
        (pages / page).write_text(_head(title) + f"<h1>{html.escape(title)}</h1>" + _tools() + rows_block(g)
                                  + _foot(), encoding="utf-8")
        st["parts"].append(page)

    def finish_county() -> None:
        if st["cid"] is None:
            return
        rows = pd.concat(st["buf"], ignore_index=True) if st["buf"] else None
        sid = html.escape(st["cid"])
        if pages is None:
            f.write(f'<section class="county" id="county-{sid}">{head()}{rows_block(rows)}</section>\n')
        else:
            if rows is not None and len(rows):
                write_part(rows)
            links = " ".join(f'<a href="{pages.name}/{p}">{pages.name}/{p}</a>' for p in st["parts"])
            f.write(f'<section class="county" id="county-{sid}">{head()}<p>问题图斑清单 findings → {links}</p>'
                    "</section>\n")
        st.update(cid=None, buf=[], parts=[], n=0, mu=0.0, by={})

    def add(g: pd.DataFrame) -> None:
        cid = str(g["county_id"].iloc[0])
        if cid != st["cid"]:
            finish_county()
            st["cid"], st["name"] = cid, str(g["county_name"].iloc[0] or "") or rep.OUTSIDE
        st["n"] += len(g)
        st["mu"] += float(g["area_mu"].sum())
        for c, v in g.groupby("check_zh", sort=False).size().items():
            st["by"][c] = st["by"].get(c, 0) + int(v)
        st["buf"].append(g)
        held = sum(len(b) for b in st["buf"])
        if pages is not None and held >= INLINE_ROWS:  # a full page: out to its file
            rows = pd.concat(st["buf"], ignore_index=True)
            for start in range(0, len(rows) - len(rows) % INLINE_ROWS, INLINE_ROWS):
                write_part(rows.iloc[start:start + INLINE_ROWS])
            st["buf"] = [rows.iloc[len(rows) - len(rows) % INLINE_ROWS:]]

    n = 0
    for batch in batches(gpkg, order=order, batch=50_000):
        df = batch.to_pandas()
        for _, g in df.groupby("county_id", sort=False):  # one iteration per county, not per row
            add(g)
        n += len(df)
    finish_county()
    return n


def _rows_box(block_id: str, rows: pd.DataFrame, cols: list[str], title: str, plain: bool = False) -> str:
    flag = ' data-plain="1"' if plain else ""
    return (f'<details class="rows"><summary>{title} <span class="hint">(点击展开 click to open)</span></summary>'
            f'<div class="box" data-src="{block_id}"{flag}></div><div class="pager"></div></details>'
            + _json_block(block_id, _rows_json(rows, cols)))


def _rectification(f, gpkg: Path, summary: pd.DataFrame, meta: dict, cols: list[str]) -> None:
    """整改核验: the rate and its definition, what of the auditor's follow-up was carried, the parcels marked
    已整改 that are still found (整改不到位), and the rectified findings, printed apart from the live ones."""

    rcols = fields(gpkg, "rectified")
    if not rcols:
        return
    e = html.escape
    f.write(f"<h2>整改核验 Rectification check</h2><p class='muted'>{e(rep.RECTIFICATION_RULE)}</p>")
    f.write(_table(rep.rectification_table(summary), total=True))
    per = rep.rectification_table(summary, counties=True)
    if len(per):
        f.write(f"<details><summary>分县 by county ({len(per):,})</summary>{_table(per)}</details>")
    yoy = meta.get("year_on_year") or {}
    if yoy and yoy.get("follow_up_carried") is None:  # --no-ledger: nothing was carried
        f.write(f"<p>上期问题图斑 {yoy['previous_findings']:,} 个：延续 {yoy['continued']:,} 个，已整改 "
                f"{yoy['rectified']:,} 个。本次未生成图斑台账（--no-ledger），上期核查记录未带入。</p>")
    elif yoy:
        lost = yoy.get("follow_up_not_carried_ids") or []
        f.write(f"<p>上期问题图斑 {yoy['previous_findings']:,} 个：延续 {yoy['continued']:,} 个（编号相同 "
                f"{yoy['continued_by_id']:,}，按位置匹配 {yoy['continued_by_ground']:,}），已整改 {yoy['rectified']:,} 个。"
                f"上期台账核查记录 {yoy['follow_up_records']:,} 条：已带入本期图斑 {yoy['follow_up_carried']:,} 条，"
                f"未能带入 {yoy['follow_up_not_carried']:,} 条（其地块上本期无图斑）"
                + (f"：{e('、'.join(lost[:20]))}{' 等' if len(lost) > 20 else ''}" if lost else "")
                + "。<span class='muted'>Earlier findings continued by equal id or by ground; the auditor's records "
                "carried to the current parcels on the same ground, and those that could not be.</span></p>")
    fcols = failed_columns(gpkg)
    if fcols:
        failed = pd.concat([b.to_pandas() for b in batches(gpkg, "parcels", where=FAILED,
                                                             order="county_id, parcel_id")] or [pd.DataFrame()],
                           ignore_index=True)
        if "worst_severity" in failed:  # shown in Chinese, as the findings' severity is
            failed["worst_severity"] = outputs.severity_zh(failed["worst_severity"].fillna(""))
        f.write(f"<h3 class='failed'>整改不到位 Marked 已整改 but still found ({len(failed):,})</h3>")
        f.write(_rows_box("failed", failed, fcols, "清单 list") if len(failed) else "<p>无 none</p>")
    rows = pd.concat([b.to_pandas() for b in batches(gpkg, "rectified", order=severe_first(rcols))]
                     or [pd.DataFrame()], ignore_index=True)
    f.write(f"<h3>已整改问题图斑 Rectified since the earlier run ({len(rows):,})</h3><p class='muted'>上期问题图斑，"
            "本期地块上已无同类问题；附上期核查记录。Earlier findings gone from the ground, with the earlier "
            "follow-up.</p>")
    if len(rows):
        shown = [c for c in cols if c in rows.columns and c not in ("change_zh", "new_area_mu")] + \
            [c for c in ("verdict", "status", "checked_by", "checked_on", "remark") if c in rows.columns]
        shown = shown or list(rows.columns)
        f.write(_rows_box("rect", rows, shown, "清单 list", plain=True))


COMPENSATION_ROWS = 100  # on the page; report.xlsx lists every county with every service


def _compensation(f, gpkg: Path, meta: dict) -> None:
    """The ranked compensation table with the method stated (``zoning run`` with ``compensate = true``)."""
    import pyogrio

    e = html.escape
    ranked = policy.compensation_table(pyogrio.read_dataframe(gpkg, layer="compensation", read_geometry=False),
                                    services=False)
    method = "".join(f"<tr><th class='s'>{e(k)}</th><td class='s'>{e(v)}</td></tr>"
                     for k, v in policy.compensation_method(meta.get("compensation")))
    more = f"<p class='muted'>前 {COMPENSATION_ROWS} 县；全部见 report.xlsx。The first {COMPENSATION_ROWS} of " \
        f"{len(ranked):,}; report.xlsx lists them all, service by service.</p>" if len(ranked) > COMPENSATION_ROWS \
        else ""
    f.write(f"<h2>生态补偿 Ecological compensation（按优先级排序 ranked）</h2><table class='t'>{method}</table>"
            f"{_table(ranked.head(COMPENSATION_ROWS))}{more}\n")


def write_html(path: Path, gpkg: Path, conflicts: pd.DataFrame, summary: pd.DataFrame, meta: dict,
               thumb: str = "") -> None:

    e = html.escape
    vcols = fields(gpkg, "violations")
    cols = [c for c in SHOWN if c in vcols]
    wide = rep.wide_summary(summary, areas=False)
    meta_rows = "".join(f"<tr><th class='s'>{e(label)}</th><td class='s'>{e(str(meta[k]))}</td></tr>"
                        for k, label in META.items() if k in meta)
    import pyogrio

    pages = None
    if pyogrio.read_info(gpkg, layer="violations")["features"] > INLINE_ROWS:
        pages = Path(path).parent / "counties"
        pages.mkdir(exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(_head("三条控制线检查报告 Control-line audit report") + "<h1>三条控制线检查报告 <span class=\"muted\">"
                "Control-line audit report</span></h1>\n" + _tools())
        prov = rep.provenance_table(meta.get("provenance"), survey_period(gpkg))
        prov_html = "" if not len(prov) else "<h2>来源 Provenance</h2><table class=\"t\">" + "".join(
            f"<tr><th class='s'>{e(k)}</th><td class='s'>{e(str(v))}</td></tr>" for k, v in prov.itertuples(
                index=False)) + "</table>"
        f.write(f"""<table class="t">{meta_rows}</table>{prov_html}
<h2>汇总 Totals by check（按严重程度排序）</h2>{_table(rep.totals_by_check(summary))}
<h2>各县问题数 Findings per county（含无问题县；合计在末行）</h2>{_table(wide, total=True)}
""")
        if thumb:
            f.write(f"<h2>位置示意图 Map</h2>{thumb}\n")
        if "change" in vcols and "new_count" in summary:
            new = summary[(summary["county_id"] == "TOTAL") & summary["check_id"].isin(rep.check_order(("construction",)))]
            new = new[["check_zh", "new_count", "new_area_mu", "count", "area_mu"]].rename(columns={
                "check_zh": "检查项 check", "new_count": "新增数量 new", "new_area_mu": "新增面积(亩) new mu",
                "count": "总数 all", "area_mu": "总面积(亩) all mu"})
            f.write(f"<h2>新增问题 New since the baseline survey</h2>{_table(new)}\n")
        f.write("<h2>分县问题图斑 Findings by county</h2><p class='muted'>每县按严重程度、面积排序；屏幕上分页显示，"
                "打印时全部列出。Sorted by severity, then area; paged on screen, every row in print.</p>\n"
                f"<p class='muted'>{e(rep.TOTALS_NOTE)}</p>\n")
        if pages is not None:
            f.write(f"<p class='muted'>{INLINE_ROWS:,} 条以上：每县的清单在 counties/ 下单独成页。"
                    f"Over {INLINE_ROWS:,} findings: each county's list is a page of its own in counties/.</p>")
        geoms = construction_geometries(gpkg)
        crs = next(geoms, None)
        ground = rep.ground_by_county(geoms, crs) if crs is not None else {}
        areas = {cid: (ground.get(cid), checks) for cid, checks in rep.check_areas_by_county(summary).items()}
        n = _county_sections(f, gpkg, cols, pages, areas)
        if n == 0:
            f.write("<p>无 none</p>")
        show = [c for c in ("violation_id", "check_zh", "severity_zh", "layer", "control_id", "other_layer",
                            "other_control_id", "county_name", "area_mu", "area_ha") if c in conflicts.columns]
        shown = conflicts[show].copy()
        for c in ("layer", "other_layer"):  # the lines by their Chinese names, as officers call them
            if c in shown:
                shown[c] = shown[c].map(lambda v: outputs.LINES[v].zh if v in outputs.LINES else v)
        f.write(f"<h2>控制线冲突 Conflicts between lines ({len(conflicts)})</h2>"
                f"{_table(rep.with_chinese_headers(shown))}\n")
        _rectification(f, gpkg, summary, meta, cols)
        if fields(gpkg, "compensation"):
            _compensation(f, gpkg, meta)
        f.write(_foot())
    size = Path(path).stat().st_size
    if size > WARN_BYTES:
        log.warning("%s is %.0f MB: it opens slowly; report.xlsx and violations.csv hold the same rows", path,
                    size / 1e6)
