"""Report files: page names when counties are keyed by name, and -o / --report on one path."""
import geopandas as gpd
import pytest

from tests.conftest import SAMPLE, check_files, run_cli


def test_county_pages_keyed_by_chinese_names_do_not_collide(tmp_path, monkeypatch):
    """Counties keyed by their names (all non-ASCII): each county's findings go to pages of its own."""
    from layers import report_html
    from zoning.pipeline.config import ReadOptions

    monkeypatch.setattr(report_html, "INLINE_ROWS", 5)
    lines = {k: str(SAMPLE / f"{k}.gpkg") for k in ("red_line", "farmland", "urban_boundary")}
    counties = gpd.read_file(SAMPLE / "counties.gpkg")
    dup = counties["name"].duplicated()
    counties.loc[dup, "name"] = counties.loc[dup, "name"] + "乙"  # 市中区 twice (乐山, 内江)
    counties.to_file(tmp_path / "named.gpkg")
    check_files(lines, tmp_path / "c.gpkg", construction=str(SAMPLE / "construction.gpkg"),
              counties=str(tmp_path / "named.gpkg"), read=ReadOptions(ids={"county": "name"}),
              report_dir=tmp_path / "report")
    v = gpd.read_file(tmp_path / "c.gpkg", layer="violations")
    counts = v["county_id"].value_counts()
    named = counts.drop(index="000000", errors="ignore")  # 000000: the parcels outside every county
    assert named.index.str.contains("[\u4e00-\u9fff]").all() and len(named) > 20
    pages = sorted((tmp_path / "report" / "counties").glob("*.html"))
    assert len(pages) == sum(-(-int(n) // 5) for n in counts)  # none overwritten by another county's
    for cid, n in counts.items():
        first = report_html.page_name(cid)
        assert first != report_html.page_name(cid + "x")
        own = [p for p in pages if p.name.rsplit("-", 1)[0] == first]
        assert len(own) == -(-int(n) // 5), cid
        assert cid in own[0].read_text(encoding="utf-8")
    assert report_html.page_name("510104") == "510104"


def test_output_and_report_on_one_path_are_refused_up_front(tmp_path):
    out = tmp_path / "same"
    r = run_cli("check", "--red-line", str(SAMPLE / "red_line.gpkg"), "--farmland", str(SAMPLE / "farmland.gpkg"),
                "--urban-boundary", str(SAMPLE / "urban_boundary.gpkg"), "--construction",
                str(SAMPLE / "construction.gpkg"), "-o", str(out), "--report", str(out))
    assert r.returncode == 2, r.stderr
    assert "-o and --report both name" in r.stderr and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["510104", "锦江区", "a/b", ".."])
def test_page_names_are_plain_file_names(name):
    from layers.report_html import page_name

    got = page_name(name)
    assert "/" not in got and got not in ("", ".", "..") and got.isascii()


def test_codes_print_in_chinese(tmp_path):
    """The ledger sheet gives each parcel's zone in Chinese beside its code; the HTML names the lines in Chinese."""
    import openpyxl

    out = tmp_path / "z.gpkg"
    r = run_cli("-q", "classify", str(SAMPLE / "counties.gpkg"), "--raster", f"landcover={SAMPLE / 'landcover.tif'}",
                "-o", str(out))
    assert r.returncode == 0, r.stderr
    r = run_cli("-q", "check", "--red-line", str(SAMPLE / "red_line.gpkg"), "--farmland",
                str(SAMPLE / "farmland.gpkg"), "--urban-boundary", str(SAMPLE / "urban_boundary.gpkg"),
                "--construction", str(SAMPLE / "construction.gpkg"), "--zones", str(out), "-o",
                str(tmp_path / "c.gpkg"), "--report", str(tmp_path / "report"))
    assert r.returncode == 0, r.stderr
    ws = openpyxl.load_workbook(tmp_path / "report" / "report.xlsx")["图斑台账 parcels"]
    head = [c.value for c in ws[1]]
    code, label = head.index("主体功能区类型代码 zone (code)"), head.index("主体功能区类型 zone")
    pairs = {(row[code], row[label]) for row in ws.iter_rows(min_row=2, values_only=True) if row[code]}
    assert pairs == {("urbanization", "城镇化地区"), ("grain_production", "农产品主产区"), ("ecological", "重点生态功能区")}
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    conflicts = page.split("控制线冲突 Conflicts between lines")[1].split("</table>")[0]
    assert "生态保护红线" in conflicts and ">red_line<" not in conflicts


REPORT_INPUTS = {"--red-line": "red_line.gpkg", "--farmland": "farmland.gpkg",
                 "--urban-boundary": "urban_boundary.gpkg", "--construction": "construction.gpkg",
                 "--counties": "counties.gpkg"}


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """The sample checked with a report, once for the tests that read it."""
    d = tmp_path_factory.mktemp("reported")
    args = [a for k, v in REPORT_INPUTS.items() for a in (k, str(SAMPLE / v))]
    r = run_cli("-q", "check", *args, "-o", str(d / "c.gpkg"), "--report", str(d / "rep"))
    assert r.returncode == 0, r.stderr
    return d


def test_provenance_in_the_html_the_xlsx_and_the_map(reported, tmp_path):
    """Every input's file name, date and SHA-256 and the run date are in report.html, report.xlsx (a sheet of its
    own) and the map drawn later from the GeoPackage; the survey period is the findings' first and last date."""
    import hashlib
    import re

    import openpyxl
    import pyogrio

    page = (reported / "rep" / "report.html").read_text(encoding="utf-8")
    run_date = re.search(r"运行时间 run date</th><td class='s'>([^<]+)<", page).group(1)
    assert run_date[:2] == "20" and len(run_date) >= 19
    dates = pyogrio.read_dataframe(reported / "c.gpkg", layer="violations", columns=["detected_on"],
                                   read_geometry=False)["detected_on"]
    assert f"{dates.min()} – {dates.max()}" in page
    wb = openpyxl.load_workbook(reported / "rep" / "report.xlsx", read_only=True)
    sheet = "\n".join(" ".join(str(c) for c in row if c is not None) for row in wb["来源 provenance"].iter_rows(
        values_only=True))
    r = run_cli("-q", "map", str(reported / "c.gpkg"), "-o", str(tmp_path / "m.html"))
    assert r.returncode == 0, r.stderr
    drawn = (tmp_path / "m.html").read_text(encoding="utf-8")
    assert run_date in sheet and run_date in drawn
    for name in REPORT_INPUTS.values():
        digest = hashlib.sha256((SAMPLE / name).read_bytes()).hexdigest()
        assert f"{name} · 修改" in page and digest in page, name
        assert name in sheet and digest in sheet, name
        assert name in drawn and digest[:16] in drawn, name


def test_county_headings_state_each_checks_ground_and_do_not_add_checks_up(reported):
    """西昌市's findings: 361.44 亩 on farmland and 412.15 亩 outside the boundary, much of it the same ground; the
    heading gives each check's area as county_summary counts it (union) and never their 773.59 亩 sum."""
    import re

    import pyogrio

    page = (reported / "rep" / "report.html").read_text(encoding="utf-8")
    summary = pyogrio.read_dataframe(reported / "c.gpkg", layer="county_summary", read_geometry=False)
    v = pyogrio.read_dataframe(reported / "c.gpkg", layer="violations", read_geometry=False)
    import geopandas as gpd

    from zoning.areas import CHINA_ALBERS, SQM_PER_MU

    ground = gpd.read_file(reported / "c.gpkg", layer="violations").to_crs(CHINA_ALBERS).dissolve("county_id").area
    for cid in v["county_id"].unique():
        head = re.search(rf"<h3>[^<]*\({cid}\)：(\d+) 个问题图斑，占地 ([\d,.]+) 亩 ground <span class=\"muted\">([^<]*)<",
                         page)
        assert head and int(head.group(1)) == (v["county_id"] == cid).sum(), cid
        # the ground, counted once across checks: the union of the county's findings, worked out independently
        assert float(head.group(2).replace(",", "")) == pytest.approx(ground[cid] / SQM_PER_MU, abs=0.006), cid
        rows = summary[(summary["county_id"] == cid) & (summary["count"] > 0) &
                       summary["check_id"].str.startswith("construction")]
        for name, mu in zip(rows["check_zh"], rows["area_mu"]):
            assert f"{name} " in head.group(3) and f"{mu:,.2f} 亩" in head.group(3), (cid, name)
    assert "773.59" not in page and "占地 409.63 亩" in page and "checks are not added together" in page
