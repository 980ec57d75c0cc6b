"""``zoning check`` through the command line, with the XLSX and HTML reports read back."""
import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
import shapely


def outputs_label(field: str) -> str:
    from zoning import outputs

    return outputs.label(field)


def _lines(sample):
    return ["--red-line", str(sample / "red_line.gpkg"), "--farmland", str(sample / "farmland.gpkg"),
            "--urban-boundary", str(sample / "urban_boundary.gpkg")]


@pytest.fixture(scope="module")
def checked(tmp_path_factory, sample):
    from tests.conftest import run_cli

    d = tmp_path_factory.mktemp("check")
    r = run_cli("check", *_lines(sample), "--construction", str(sample / "construction.gpkg"), "--counties",
                str(sample / "counties.gpkg"), "-o", str(d / "out.gpkg"), "--report", str(d / "report"))
    assert r.returncode == 0, r.stderr
    return d, r


def test_layers_and_summary(checked, expected):
    d, r = checked
    names = [n for n, _ in pyogrio.list_layers(d / "out.gpkg")]
    assert {"conflicts", "violations", "county_summary"} <= set(names)
    v = gpd.read_file(d / "out.gpkg", layer="violations")
    assert (v.check_id == "construction_in_red_line").sum() == len(expected["construction_in_red_line"])
    s = pyogrio.read_dataframe(d / "out.gpkg", layer="county_summary", read_geometry=False)
    assert "TOTAL" in set(s.county_id)
    assert "construction_in_red_line" in r.stdout


def test_reports_read_back(checked):
    from zoning import outputs

    d, _ = checked
    csv = pd.read_csv(d / "report" / "violations.csv", dtype=str, encoding="utf-8-sig")
    # the XLSX's bilingual headers, Chinese first; scripts map them back to field names
    assert csv.columns[0] == "问题图斑编号 violation id"
    csv = csv.rename(columns=outputs.fields_by_label())
    assert {"violation_id", "area_mu", "county_name"} <= set(csv.columns)
    assert csv.county_name.str.contains("县|区|市").any()
    assert csv.severity.iloc[0] == "critical"  # most severe first
    html = (d / "report" / "report.html").read_text(encoding="utf-8")
    import re

    assert "三条控制线检查报告" in html and not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", html)


def test_xlsx_is_a_filing(checked):
    d, _ = checked
    wb = openpyxl.load_workbook(d / "report" / "report.xlsx")
    names = wb.sheetnames
    assert names[0] == "汇总 summary" and "图斑台账 parcels" in names
    # severity order: critical red line, then high (farmland, conflicts), then medium
    assert names.index("建设占用生态保护红线") < names.index("建设占用永久基本农田") < names.index("城镇开发边界外建设")
    assert names.index("生态保护红线与永久基本农田重叠") < names.index("城镇开发边界外建设")
    for ws in wb.worksheets:
        assert ws.freeze_panes == "A2", ws.title
        assert ws.auto_filter.ref and ws.auto_filter.ref.startswith("A1:"), ws.title
        assert ws.page_setup.orientation == "landscape" and ws.page_setup.paperSize == 9, ws.title
        assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToHeight == 0, ws.title
        assert ws.print_title_rows == "$1:$1", ws.title
        # as few pages wide as keep the print legible: a wide sheet repeats its id column on every page
        shown = [d.width for k, d in ws.column_dimensions.items() if not d.hidden]
        assert ws.page_setup.fitToWidth == (1 if sum(shown) <= 190 else ws.page_setup.fitToWidth), ws.title
        if ws.page_setup.fitToWidth > 1:
            assert ws.print_title_cols == "$A:$A", ws.title
        assert all(ws.column_dimensions[c].width >= 10 for c in ("A", "B")), ws.title
    # parcel ids print whole: the column is wider than the longest id (WP2024002903, 12 characters)
    from openpyxl.utils import get_column_letter

    for title in ("图斑台账 parcels", "建设占用永久基本农田"):
        ws = wb[title]
        col = [c.value for c in ws[1]].index(outputs_label("parcel_id")) + 1
        longest = max(len(str(v)) for (v,) in ws.iter_rows(min_row=2, min_col=col, max_col=col, values_only=True))
        assert ws.column_dimensions[get_column_letter(col)].width >= longest + 2, title
        # widths follow the content in display width: Chinese names print whole (a character takes two)
        from zoning.report import display_width

        col = [c.value for c in ws[1]].index(outputs_label("county_name")) + 1
        widest = max(display_width(v or "") for (v,) in ws.iter_rows(min_row=2, min_col=col, max_col=col,
                                                                      values_only=True))
        assert ws.column_dimensions[get_column_letter(col)].width >= widest, title
    summary = wb["汇总 summary"]
    rows = list(summary.iter_rows(values_only=True))
    assert rows[-1][0] == "TOTAL" and sum(r[0] == "TOTAL" for r in rows) == 1
    assert len(rows) - 2 == 183 + 1  # every county, zeros included, and the parcels outside every county
    head = rows[0]
    red = head.index("建设占用生态保护红线 数量 count")
    assert rows[-1][red] == sum(r[red] for r in rows[1:-1]) == 143
    assert not [h for h in head if "面积" in h]  # counts here, areas on the next sheet: each prints legibly
    assert names[1] == "汇总面积 areas (亩)"
    areas = list(wb["汇总面积 areas (亩)"].iter_rows(values_only=True))
    mu = areas[0].index("建设占用生态保护红线 面积(亩) mu")
    assert areas[-1][mu] == pytest.approx(6718.58, abs=0.01) and len(areas) == len(rows)
    ws = wb["建设占用永久基本农田"]
    header = [c.value for c in ws[1]]
    assert "面积(亩) area (mu)" in header and "问题图斑编号 violation id" in header
    sev, area = header.index("严重程度代码 severity (code)"), header.index("面积(平方米) area (m²)")
    vals = [(r[sev], r[area]) for r in ws.iter_rows(min_row=2, values_only=True)]
    rank = {"critical": 3, "high": 2, "medium": 1}
    assert vals == sorted(vals, key=lambda v: (-rank[v[0]], -v[1]))  # severity, then area
    row2 = ws[2]
    assert row2[header.index("面积(亩) area (mu)")].number_format == "#,##0.00"
    assert row2[header.index("中心经度 centroid longitude")].number_format == "0.000000"
    date = row2[header.index("发现日期 detected on")]
    assert date.is_date and date.number_format == "yyyy-mm-dd"
    led = [c.value for c in wb["图斑台账 parcels"][1]]
    assert led[:3] == ["建设图斑编号 parcel id", "县级行政区代码 county code", "县级行政区名称 county"]
    assert wb["图斑台账 parcels"].max_row == 3002 + 1


def test_violation_ids_are_stable_across_runs(checked, sample, cli, tmp_path):
    d, _ = checked
    r = cli("check", *_lines(sample), "--construction", str(sample / "construction.gpkg"), "--counties",
            str(sample / "counties.gpkg"), "-o", str(tmp_path / "again.gpkg"))
    assert r.returncode == 0, r.stderr
    a = gpd.read_file(d / "out.gpkg", layer="violations").sort_values("violation_id")
    b = gpd.read_file(tmp_path / "again.gpkg", layer="violations").sort_values("violation_id")
    assert list(a.violation_id) == list(b.violation_id)
    assert list(a.parcel_id) == list(b.parcel_id)


def test_rules_show_and_unknown_key(cli, tmp_path, sample):
    import tomllib

    r = cli("rules", "show")
    assert tomllib.loads(r.stdout)["rules"]["sliver_m2"] == 1.0
    bad = tmp_path / "r.toml"
    bad.write_text("[rules]\nsilver_m2 = 3\n")
    r = cli("check", *_lines(sample), "--rules", str(bad), "-o", str(tmp_path / "x.gpkg"))
    assert r.returncode == 2 and "rules.silver_m2: unknown key" in r.stderr
    assert not (tmp_path / "x.gpkg").exists()


def test_empty_construction_layer_warns_and_gives_zero_violations(cli, sample, tmp_path):
    empty = tmp_path / "empty.gpkg"
    gpd.GeoDataFrame({"id": []}, geometry=gpd.GeoSeries([], crs=4490)).to_file(empty, layer="c")
    r = cli("check", *_lines(sample), "--construction", str(empty), "-o", str(tmp_path / "o.gpkg"))
    assert r.returncode == 0, r.stderr
    assert "is empty: zero violations" in r.stderr
    assert len(gpd.read_file(tmp_path / "o.gpkg", layer="violations")) == 0


def test_empty_control_layer_is_an_error(cli, sample, tmp_path):
    empty = tmp_path / "empty_red.gpkg"
    gpd.GeoDataFrame({"id": []}, geometry=gpd.GeoSeries([], crs=4490)).to_file(empty, layer="red")
    r = cli("check", "--red-line", str(empty), "--farmland", str(sample / "farmland.gpkg"), "--urban-boundary",
            str(sample / "urban_boundary.gpkg"), "-o", str(tmp_path / "o.gpkg"))
    assert r.returncode == 1 and "has no features" in r.stderr
    assert not (tmp_path / "o.gpkg").exists()


def test_every_bad_input_is_reported_at_once(cli, sample, tmp_path):
    pts = tmp_path / "pts.gpkg"
    gpd.GeoDataFrame({"id": ["a"]}, geometry=[shapely.Point(104, 30)], crs=4490).to_file(pts)
    r = cli("check", "--red-line", str(pts), "--farmland", str(tmp_path / "missing.gpkg"), "--urban-boundary",
            str(sample / "urban_boundary.gpkg"), "-o", str(tmp_path / "o.gpkg"))
    assert r.returncode == 1
    assert "2 input problem(s)" in r.stderr
    assert "not polygons" in r.stderr and "missing.gpkg" in r.stderr


def test_no_ledger_skips_the_parcels_layer_only(checked, sample, cli, tmp_path):
    d, _ = checked
    r = cli("check", *_lines(sample), "--construction", str(sample / "construction.gpkg"), "--counties",
            str(sample / "counties.gpkg"), "--no-ledger", "-o", str(tmp_path / "n.gpkg"))
    assert r.returncode == 0, r.stderr
    assert "parcels" not in {n for n, _ in pyogrio.list_layers(tmp_path / "n.gpkg")}
    a = gpd.read_file(d / "out.gpkg", layer="violations").sort_values("violation_id")
    b = gpd.read_file(tmp_path / "n.gpkg", layer="violations").sort_values("violation_id")
    assert a.violation_id.tolist() == b.violation_id.tolist()
    assert np.allclose(a.area_m2.to_numpy(), b.area_m2.to_numpy())


def test_check_accepts_only_land_cover_rasters(cli, sample, tmp_path):
    r = cli("check", *_lines(sample), "--raster", f"dem={sample / 'dem.tif'}", "-o", str(tmp_path / "x.gpkg"))
    assert r.returncode == 2 and "'dem': expected one of landcover, landcover_previous" in r.stderr
    assert not (tmp_path / "x.gpkg").exists()


def test_report_thumbnail_draws_every_finding_cell(checked):
    import re

    d, _ = checked
    html = (d / "report" / "report.html").read_text(encoding="utf-8")
    svg = re.search(r'<svg class="thumb".*?</svg>', html, re.S).group(0)
    v = gpd.read_file(d / "out.gpkg", layer="violations")
    dots = svg.count("<circle")
    # one dot per 4-pixel cell: at least one, never more than the findings; the red line is outlined
    assert 0 < dots <= len(v) and "生态保护红线" in svg
