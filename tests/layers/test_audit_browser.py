"""The auditor's files as users get them: map.html and report.html in real headless Chromium (network blocked),
report.xlsx printed by real LibreOffice. Screenshots go to test-artifacts/."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                                    reason="Debian chromium not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def audit(tmp_path_factory, sample):
    d = tmp_path_factory.mktemp("audit")
    r = run_cli("check", "--red-line", str(sample / "red_line.gpkg"), "--farmland", str(sample / "farmland.gpkg"),
                "--urban-boundary", str(sample / "urban_boundary.gpkg"), "--construction",
                str(sample / "construction.gpkg"), "--counties", str(sample / "counties.gpkg"), "--baseline",
                str(sample / "baseline.gpkg"), "-o", str(d / "c.gpkg"), "--report", str(d / "rep"))
    assert r.returncode == 0, r.stderr
    r = run_cli("map", str(d / "c.gpkg"), "-o", str(d / "map.html"))
    assert r.returncode == 0, r.stderr
    return d


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                                              "--disable-background-networking", "--no-first-run"])
        yield b
        b.close()


def _page(browser, path, errors, requests, width=1300, height=950):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.route("**/*", lambda route: (requests.append(route.request.url), route.abort())
               if not route.request.url.startswith(("file:", "data:")) else route.continue_())
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(path.as_uri())
    page.wait_for_timeout(800)
    return page


@needs_chromium
def test_map_search_filter_and_list(audit, browser):
    import geopandas as gpd

    v = gpd.read_file(audit / "c.gpkg", layer="violations")
    errors, requests = [], []
    page = _page(browser, audit / "map.html", errors, requests)
    assert "三条控制线监管图" in page.locator("#zoning-audit h1").inner_text()
    assert page.locator("#za-count").inner_text().startswith(f"显示 {len(v)} / {len(v)}")
    # at province scale the findings are markers (canvas), not invisible specks
    assert page.evaluate("() => window.zoningAudit.shown().length") == len(v)
    # search a parcel id: its findings only, Enter zooms to the most severe and opens its popup in Chinese
    pid = v.loc[v.check_id == "construction_in_red_line", "parcel_id"].iloc[0]
    page.fill("#za-q", pid)
    page.keyboard.press("Enter")
    page.wait_for_timeout(900)
    assert sorted(page.evaluate("() => window.zoningAudit.shown()")) == sorted(v.loc[v.parcel_id == pid, "violation_id"])
    popup = page.locator(".leaflet-popup-content").inner_text()
    assert "建设占用生态保护红线" in popup and "严重" in popup and pid in popup and "critical" not in popup
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "audit-map-search.png"))
    # filter by severity (and clear the search): exactly the critical findings, listed most severe first
    page.fill("#za-q", "")
    page.select_option("#za-sev", "critical")
    page.wait_for_timeout(300)
    shown = page.evaluate("() => window.zoningAudit.shown()")
    assert sorted(shown) == sorted(v.loc[v.severity == "critical", "violation_id"])
    first = page.locator("#za-list li").first.inner_text()
    assert "严重" in first
    page.select_option("#za-check", "construction_on_farmland")
    page.wait_for_timeout(300)
    crit_farm = v[(v.severity == "critical") & (v.check_id == "construction_on_farmland")]
    assert sorted(page.evaluate("() => window.zoningAudit.shown()")) == sorted(crit_farm.violation_id)
    # a click in the list zooms to the finding
    page.evaluate("() => Object.values(window).find(x => x instanceof L.Map).setZoom(7, {animate: false}) && null")
    z0 = page.evaluate("() => Object.values(window).find(x => x instanceof L.Map).getZoom()")
    page.locator("#za-list li").first.click()
    page.wait_for_timeout(800)
    assert page.evaluate("() => Object.values(window).find(x => x instanceof L.Map).getZoom()") > z0
    legend = page.locator("#zoning-legend").inner_text()
    assert "严重 critical" in legend and "轻微" not in legend  # only the classes present
    # the change since the baseline survey is a filter: 新增 alone
    page.select_option("#za-check", "")
    page.select_option("#za-sev", "")
    page.select_option("#za-change", "new")
    page.wait_for_timeout(300)
    assert sorted(page.evaluate("() => window.zoningAudit.shown()")) == sorted(v.loc[v.change == "new", "violation_id"])
    page.close()
    assert not errors, errors
    assert not requests, requests


@needs_chromium
def test_report_html_pages_and_prints_every_column(audit, browser):
    import geopandas as gpd

    v = gpd.read_file(audit / "c.gpkg", layer="violations")
    errors, requests = [], []
    page = _page(browser, audit / "rep" / "report.html", errors, requests)
    text = page.locator("body").inner_text()
    assert text.startswith("三条控制线检查报告") and "新增问题" in text
    sections = page.locator("section.county")
    assert sections.count() == v.county_id.nunique()
    # the county with most findings: paged on screen
    big = v.county_id.value_counts()
    cid, n = big.index[0], int(big.iloc[0])
    d = page.locator(f"#county-{cid} details")
    d.locator("summary").click()
    page.wait_for_timeout(300)
    rows = page.locator(f"#county-{cid} tbody tr").count()
    assert rows == min(n, 100)
    # every finding with coordinates to 6 decimals
    cells = page.locator(f"#county-{cid} tbody tr").first.locator("td").all_inner_texts()
    assert any(c.count(".") == 1 and len(c.split(".")[1]) == 6 for c in cells)
    # print: every row of every county, and no table wider than an A4 landscape page
    page.emulate_media(media="print")
    page.evaluate("() => window.dispatchEvent(new Event('beforeprint'))")
    page.set_viewport_size({"width": 1085, "height": 760})  # A4 landscape less 8 mm margins, at 96 dpi
    page.wait_for_timeout(500)
    assert page.locator("section.county tbody tr").count() == len(v)
    too_wide = page.evaluate("() => [...document.querySelectorAll('table')].filter("
                             "t => t.getBoundingClientRect().right > document.documentElement.clientWidth + 1).length")
    assert too_wide == 0
    ARTIFACTS.mkdir(exist_ok=True)
    pdf = ARTIFACTS / "report.pdf"
    page.pdf(path=str(pdf), format="A4", landscape=True, print_background=True)
    assert pdf.stat().st_size > 10_000
    page.close()
    assert not errors, errors
    assert not requests, requests


@pytest.mark.skipif(not (SOFFICE and shutil.which("pdfinfo")) and not os.environ.get("CI"),
                    reason="LibreOffice or poppler-utils not installed (.ci/run installs them)")
def test_xlsx_prints_landscape_one_page_wide_in_libreoffice(audit, tmp_path):
    out = subprocess.run([SOFFICE or "soffice", "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path),
                          str(audit / "rep" / "report.xlsx")], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HOME": str(tmp_path)})
    pdf = tmp_path / "report.pdf"
    assert pdf.exists(), out.stderr
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    w, h = (float(x) for x in info.split("Page size:")[1].split("pts")[0].split("x"))
    assert w > h and abs(w - 842) < 3 and abs(h - 595) < 3  # A4 landscape
    pages = int(info.split("Pages:")[1].split()[0])
    # the pages follow the rows (3,000 ledger rows, ~1,500 findings, 185 counties), a few wide at most
    assert pages < 400
    # every sheet prints legibly: on the first page of each, words stand at least 7.2 pt high (a 6 pt font's line)
    import re
    import statistics

    seen = {}
    for p in range(1, pages + 1):
        text = subprocess.run(["pdftotext", "-f", str(p), "-l", str(p), "-layout", str(pdf), "-"],
                              capture_output=True, text=True).stdout.strip().splitlines()
        sheet = re.sub(r"\s+\d+ / \d+\s*$", "", text[-1]).strip() if text else ""
        if sheet in seen:
            continue
        box = subprocess.run(["pdftotext", "-f", str(p), "-l", str(p), "-bbox", str(pdf), "-"], capture_output=True,
                             text=True).stdout
        heights = [float(b) - float(a) for a, b in re.findall(r'yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)"', box)]
        seen[sheet] = statistics.median(heights)
    assert len(seen) >= 8 and "图斑台账 parcels" in seen, seen
    assert min(seen.values()) >= 7.2, seen
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(pdf, ARTIFACTS / "report-xlsx.pdf")


@needs_chromium
def test_large_reports_put_each_county_on_a_page_of_its_own(audit, browser, tmp_path, monkeypatch):
    import geopandas as gpd
    import pandas as pd
    import pyogrio

    from layers import report, report_html

    monkeypatch.setattr(report_html, "INLINE_ROWS", 50)
    summary = pyogrio.read_dataframe(audit / "c.gpkg", layer="county_summary", read_geometry=False)
    conflicts = pd.DataFrame(gpd.read_file(audit / "c.gpkg", layer="conflicts").drop(columns="geometry"))
    report.write_reports(tmp_path, audit / "c.gpkg", conflicts, summary, {"run_time": "2026-01-01"})
    v = gpd.read_file(audit / "c.gpkg", layer="violations")
    pages = sorted((tmp_path / "counties").glob("*.html"))
    counts = v.county_id.value_counts()
    assert len(pages) == sum(-(-int(c) // 50) for c in counts)  # pages of at most 50 rows each
    main = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert main.count('href="counties/') == len(pages)
    cid, n = counts.index[0], int(counts.iloc[0])
    errors, requests = [], []
    page = _page(browser, tmp_path / "counties" / f"{cid}-1.html", errors, requests)
    page.locator("#print").evaluate("b => { window.print = () => {}; b.click(); }")  # renders every row
    page.wait_for_timeout(300)
    assert page.locator("tbody tr").count() == min(n, 50)
    page.close()
    assert not errors and not requests, (errors, requests)


def test_the_map_keeps_the_most_severe_findings_when_capped(audit):
    import json
    import re

    import geopandas as gpd

    from layers.webmap import build_map, read_findings, write_map

    v = gpd.read_file(audit / "c.gpkg", layer="violations")
    top = read_findings(audit / "c.gpkg", limit=25)
    assert top.attrs["total"] == len(v) and len(top) == 25
    assert (top.severity == "critical").all()
    assert top.area_m2.min() >= v[v.severity == "critical"].area_m2.nlargest(25).min() - 1e-6
    out = audit / "capped.html"
    write_map(out, build_map({"violations": top}, max_findings=10))
    text = out.read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="zoning-findings">(.*?)</script>', text, re.S).group(1))
    assert len(data["features"]) == 10 and '"omitted": true' in text.replace("\\u0022", '"')


@needs_chromium
def test_the_map_opens_on_the_zones_and_its_layers_switch_whole(audit, browser, sample, tmp_path):
    """Zones, comparison and findings together: the comparison is off at first, so a click on a county gives its
    zone; switching the findings off takes their markers too; the legend folds away."""
    import geopandas as gpd

    zones, comp, m = tmp_path / "z.gpkg", tmp_path / "cmp.gpkg", tmp_path / "m.html"
    assert run_cli("-q", "classify", str(sample / "counties.gpkg"), "--raster",
                   f"landcover={sample / 'landcover.tif'}", "-o", str(zones)).returncode == 0
    assert run_cli("-q", "compare", str(zones), "--reference", str(sample / "designations.csv"), "-o",
                   str(comp)).returncode == 0
    r = run_cli("map", str(zones), str(comp), str(audit / "c.gpkg"), "-o", str(m))
    assert r.returncode == 0, r.stderr
    errors, requests = [], []
    page = _page(browser, m, errors, requests)
    boxes = page.locator(".leaflet-control-layers-overlays label")
    checked = {boxes.nth(i).inner_text().strip(): boxes.nth(i).locator("input").is_checked()
               for i in range(boxes.count())}
    assert any(k.startswith("主体功能区") and v for k, v in checked.items()), checked
    assert not any(k.startswith("与规划对比") and v for k, v in checked.items()), checked
    # a click on a county far from any finding: its zone's popup
    county = gpd.read_file(zones, layer="zones").set_index("county_id").loc["513332"]  # 石渠县
    pt = county.geometry.representative_point()
    page.evaluate(f"""() => {{ const map = Object.values(window).find(x => x instanceof L.Map);
        map.setView([{pt.y}, {pt.x}], 9, {{animate: false}}); }}""")
    page.mouse.click(650, 475)
    page.wait_for_timeout(600)
    popup = page.locator(".leaflet-popup-content").inner_text()
    assert "石渠县" in popup and county.zone_zh in popup and "reference" not in popup.lower(), popup
    # the findings' entry switches their markers too
    page.evaluate("() => { Object.values(window).find(x => x instanceof L.Map).setZoom(6, {animate: false}); }")
    page.wait_for_timeout(400)
    markers = "() => { const map = Object.values(window).find(x => x instanceof L.Map); let n = 0;" \
              " map.eachLayer(l => { if (l instanceof L.CircleMarker) n++; }); return n; }"
    assert page.evaluate(markers) > 100
    findings = next(i for i in range(boxes.count()) if boxes.nth(i).inner_text().strip().startswith("建设占用问题图斑"))
    boxes.nth(findings).locator("input").uncheck()
    page.wait_for_timeout(300)
    assert page.evaluate(markers) == 0
    boxes.nth(findings).locator("input").check()
    page.wait_for_timeout(300)
    assert page.evaluate(markers) > 100
    # the legend folds to its title
    assert page.locator("#zoning-legend").evaluate("e => e.open")
    page.locator("#zoning-legend summary").click()
    assert not page.locator("#zoning-legend").evaluate("e => e.open")
    page.close()
    assert not errors, errors
    assert not requests, requests


@needs_chromium
def test_the_map_prints_the_whole_region_with_title_date_scale_and_north(audit, browser, tmp_path):
    """Zoomed in on one town, then printed: the page shows the whole region beside the title and date, with the
    scale bar and the north arrow; the view comes back afterwards."""
    import time

    errors, requests = [], []
    page = _page(browser, audit / "map.html", errors, requests, width=1123, height=794)  # A4 landscape, 96 dpi
    the_map = "Object.values(window).find(x => x instanceof L.Map)"
    page.evaluate(f"() => {{ {the_map}.setView([30.6, 104.0], 12, {{animate: false}}); }}")
    page.emulate_media(media="print")
    page.wait_for_timeout(600)
    assert page.evaluate(f"() => {the_map}.getBounds().contains(window.zoningAudit.region)")
    assert page.locator("#zoning-north").is_visible() and page.locator(".leaflet-control-scale").is_visible()
    pdf = tmp_path / "map.pdf"
    page.pdf(path=str(pdf), format="A4", landscape=True, print_background=True)
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout \
        if shutil.which("pdftotext") else ""
    if shutil.which("pdftotext"):
        assert "三条控制线监管图" in text and time.strftime("%Y-%m-%d") in text
        assert "▲" in text and "北" in text and " km" in text  # the north arrow and the scale bar on paper
    page.emulate_media(media="screen")
    page.wait_for_timeout(400)
    assert page.evaluate(f"() => {the_map}.getZoom()") == 12
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(pdf, ARTIFACTS / "audit-map-print.pdf")
    page.close()
    assert not errors, errors
    assert not requests, requests


@needs_chromium
def test_rectified_findings_are_found_by_the_maps_search(audit, browser, sample, tmp_path):
    """A second check with the first as --previous: a rectified finding's id, searched in the panel, is listed
    apart as 已整改 and a click shows it where it was."""
    import geopandas as gpd

    lines = ["--red-line", str(sample / "red_line.gpkg"), "--farmland", str(sample / "farmland.gpkg"),
             "--urban-boundary", str(sample / "urban_boundary.gpkg"), "--counties", str(sample / "counties.gpkg")]
    r = run_cli("-q", "check", *lines, "--construction", str(sample / "baseline.gpkg"), "-o", str(tmp_path / "a.gpkg"))
    assert r.returncode == 0, r.stderr
    r = run_cli("-q", "check", *lines, "--construction", str(sample / "construction.gpkg"), "--previous",
                str(tmp_path / "a.gpkg"), "-o", str(tmp_path / "b.gpkg"))
    assert r.returncode == 0, r.stderr
    assert run_cli("-q", "map", str(tmp_path / "b.gpkg"), "-o", str(tmp_path / "m.html")).returncode == 0
    gone = gpd.read_file(tmp_path / "b.gpkg", layer="rectified")
    assert len(gone)
    vid = gone["violation_id"].iloc[0]
    errors, requests = [], []
    page = _page(browser, tmp_path / "m.html", errors, requests)
    page.fill("#za-q", vid)
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.zoningAudit.rectified()") == [vid]
    item = page.locator("#za-list li.za-rectified").first
    assert "已整改" in item.inner_text()
    item.click()
    page.wait_for_timeout(400)
    assert vid in page.locator(".leaflet-popup-content").inner_text()
    page.close()
    assert not errors, errors
    assert not requests, requests
