"""``zoning run`` on the bundled sample project, opened in real QGIS and checked by GDAL's validate_gpkg.py."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pyogrio
import pytest

HERE = Path(__file__).resolve().parent
SYSTEM_PY = "/usr/bin/python3"
VALIDATE = "/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_gpkg.py"
LAYERS = ["zones", "red_line", "farmland", "urban_boundary", "conflicts", "violations", "county_summary", "parcels",
          "comparison", "compensation"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from tests.conftest import run_cli

    d = tmp_path_factory.mktemp("run")
    os.umask(0o022)
    r = run_cli("run", "-o", "out", cwd=d)  # no project: the bundled sample
    assert r.returncode == 0, r.stderr
    return d / "out"


def test_outputs(run_dir):
    for name in ["zoning.gpkg", "map.html", "report/violations.csv", "report/report.xlsx", "report/report.html",
                 "run.json", "zoning.log", "styles/zones.qml"]:
        assert (run_dir / name).exists(), name
    assert set(LAYERS) <= {n for n, _ in pyogrio.list_layers(run_dir / "zoning.gpkg")}
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert len(run["inputs"]["counties"]["sha256"]) == 64 and run["inputs"]["counties"]["modified"][:2] == "20"
    assert run["run_date"][:2] == "20" and run["run_date"] in (run_dir / "report" / "report.html").read_text(
        encoding="utf-8")
    assert "Sichuan sample 四川示例" in (run_dir / "map.html").read_text(encoding="utf-8")
    assert {"GDAL", "PROJ", "GEOS"} <= set(run["libraries"])
    assert run["model"]["model"]["id"] == "zoning-default"
    assert run["rules"]["rules"]["sliver_m2"] == 1.0
    assert run["counts"]["counties"] == 183
    assert "classify" in run["timings_s"]
    assert "classifying with model" in (run_dir / "zoning.log").read_text(encoding="utf-8")
    assert not [p for p in run_dir.parent.iterdir() if p.name.startswith(".")]


def test_every_spatial_layer_is_valid_and_multipolygon(run_dir):
    import geopandas as gpd
    import shapely

    for name in ["zones", "red_line", "farmland", "urban_boundary", "conflicts", "violations", "parcels",
                 "comparison"]:
        g = gpd.read_file(run_dir / "zoning.gpkg", layer=name)
        assert shapely.is_valid(g.geometry.values).all(), name
        assert set(g.geom_type) <= {"MultiPolygon"}, name
        assert not g.geometry.is_empty.any(), name


def test_county_summary_lists_every_county_and_union_totals(run_dir, counties):
    import geopandas as gpd

    s = gpd.read_file(run_dir / "zoning.gpkg", layer="county_summary")
    red = s[s.check_id == "construction_in_red_line"]
    assert set(counties.county_id) <= set(red.county_id)  # zeros included
    assert (red[red.county_id != "TOTAL"]["count"] == 0).sum() > 100
    # the parcels' area inside the red line, each parcel counted once (issue 9: 6,718.58 亩, not 6,942.22)
    assert red[red.county_id == "TOTAL"].area_mu.iloc[0] == pytest.approx(6718.58, abs=0.01)


def test_sample_run_is_year_on_year(run_dir):
    """The sample ships a synthetic earlier survey: the run shows new, expanded and existing findings, with new
    areas in the county summary and the report opening on them."""
    import geopandas as gpd

    v = gpd.read_file(run_dir / "zoning.gpkg", layer="violations")
    assert set(v["change"]) == {"new", "expanded", "existing"}
    assert (v.loc[v["change"] == "new", "new_area_m2"] == v.loc[v["change"] == "new", "area_m2"]).all()
    assert (v.loc[v["change"] == "existing", "new_area_m2"] <= 1.0).all()
    s = pyogrio.read_dataframe(run_dir / "zoning.gpkg", layer="county_summary", read_geometry=False)
    tot = s[(s.county_id == "TOTAL") & (s.check_id == "construction_in_red_line")].iloc[0]
    assert 0 < tot["new_count"] < tot["count"] and 0 < tot["new_area_m2"] < tot["area_m2"]
    import openpyxl

    assert openpyxl.load_workbook(run_dir / "report" / "report.xlsx", read_only=True).sheetnames[2] == "新增 new"


def test_outputs_are_readable_by_colleagues(run_dir):
    # built under the test process's umask (022 in CI): group and others may read and enter
    for p in [run_dir, run_dir / "zoning.gpkg", run_dir / "report", run_dir / "report" / "report.xlsx",
              run_dir / "map.html"]:
        assert p.stat().st_mode & 0o044 == 0o044, p


def test_quiet_run_still_logs_info(tmp_path):
    from tests.conftest import run_cli

    r = run_cli("-q", "run", "-o", "q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "checking construction" not in r.stderr
    text = (tmp_path / "q" / "zoning.log").read_text(encoding="utf-8")
    assert "INFO classifying with model" in text and "INFO checking construction parcels" in text


def test_second_run_needs_overwrite(run_dir):
    from tests.conftest import run_cli

    before = (run_dir / "run.json").read_bytes()
    r = run_cli("run", "-o", "out", cwd=run_dir.parent)
    assert r.returncode == 4 and "already exists; pass --overwrite" in r.stderr
    assert (run_dir / "run.json").read_bytes() == before
    r = run_cli("run", "-o", "out", "--overwrite", cwd=run_dir.parent)
    assert r.returncode == 0, r.stderr
    assert (run_dir / "run.json").read_bytes() != before


def test_project_problems_are_all_reported(tmp_path):
    from tests.conftest import run_cli

    p = tmp_path / "p.toml"
    p.write_text('[inputs]\ncounties = "nope.gpkg"\nlandcover = "lc.tif"\nroads = "r.gpkg"\n[options]\nseed = "x"\n')
    r = run_cli("run", str(p), "-o", str(tmp_path / "o"))
    assert r.returncode == 2
    for msg in ["inputs.counties: file not found", "inputs.roads: unknown input", "inputs.red_line: missing",
                "options.seed: expected int"]:
        assert msg in r.stderr
    assert not (tmp_path / "o").exists()


needs_qgis = pytest.mark.skipif(not (os.path.exists(SYSTEM_PY) and subprocess.run(
    [SYSTEM_PY, "-c", "import qgis.core"], capture_output=True).returncode == 0) and not os.environ.get("CI"),
    reason="Debian python3-qgis not installed (.ci/run installs it)")


@needs_qgis
def test_geopackage_opens_styled_in_real_qgis(run_dir, tmp_path):
    spatial = ["zones", "red_line", "farmland", "urban_boundary", "conflicts", "violations", "parcels", "comparison",
               "compensation"]
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(runtime)}
    r = subprocess.run([SYSTEM_PY, str(HERE.parent / "layers" / "qgis_probe.py"), str(run_dir / "zoning.gpkg"),
                        *spatial], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout.strip().splitlines()[-1])
    counts = {n: len(pyogrio.read_dataframe(run_dir / "zoning.gpkg", layer=n, read_geometry=False))
              for n in spatial}
    for n in spatial:
        assert info[n]["valid"], n
        assert info[n]["count"] == counts[n], n
        assert info[n]["crs"] == "EPSG:4490", n
    assert info["zones"]["renderer"] == "categorizedSymbol" and info["zones"]["attr"] == "zone"
    assert info["zones"]["categories"] == ["urbanization", "grain_production", "ecological"]
    assert info["zones"]["aliases"]["zone_zh"] == "主体功能区类型"
    assert info["violations"]["attr"] == "severity" and "critical" in info["violations"]["categories"]
    assert info["conflicts"]["attr"] == "check_id"
    assert info["red_line"]["renderer"] == "singleSymbol"
    assert info["violations"]["aliases"]["area_mu"] == "面积(亩)"
    assert info["violations"]["aliases"]["parcel_id"] == "建设图斑编号"
    # severity on top: symbol levels draw critical above high above medium
    assert info["violations"]["symbol_levels"]
    lv = info["violations"]["levels"]
    assert lv["critical"] > lv["high"] > lv["medium"]
    # coded values shown in Chinese through value maps
    assert {"check_id", "severity"} <= set(info["violations"]["value_maps"])
    assert "zone" in info["zones"]["value_maps"]
    assert {"verdict", "status", "worst_severity"} <= set(info["parcels"]["value_maps"])
    assert info["comparison"]["attr"] == "agrees"
    assert info["compensation"]["attr"] == "priority_class" and info["compensation"]["categories"][:3] == \
        ["first", "second", "third"]
    assert info["compensation"]["aliases"]["esv_hydrological_regulation_yuan"] == "水文调节价值(元/年)"
    # the ledger: only the follow-up is editable, its date through a calendar; empty codes show empty
    follow_up = {"verdict", "status", "checked_by", "checked_on", "remark"}
    assert set(info["parcels"]["read_only"]) == set(info["parcels"]["widgets"]) - follow_up - {"fid"}
    assert info["parcels"]["widgets"]["checked_on"] == "DateTime"
    assert all(info["parcels"]["blank_shown"].values())


@needs_qgis
def test_rectified_and_the_summary_table_open_styled_in_real_qgis(run_dir, tmp_path):
    """A second check with the first as --previous: its rectified layer has a default style, and county_summary
    (a table) its Chinese aliases."""
    from tests.conftest import SAMPLE, run_cli

    lines = ["--red-line", str(SAMPLE / "red_line.gpkg"), "--farmland", str(SAMPLE / "farmland.gpkg"),
             "--urban-boundary", str(SAMPLE / "urban_boundary.gpkg"), "--counties", str(SAMPLE / "counties.gpkg")]
    r = run_cli("-q", "check", *lines, "--construction", str(SAMPLE / "baseline.gpkg"), "--previous",
                str(run_dir / "zoning.gpkg"), "-o", str(tmp_path / "b.gpkg"))
    assert r.returncode == 0, r.stderr
    assert len(pyogrio.read_dataframe(tmp_path / "b.gpkg", layer="rectified", read_geometry=False)) > 0
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(runtime)}
    r = subprocess.run([SYSTEM_PY, str(HERE.parent / "layers" / "qgis_probe.py"), str(tmp_path / "b.gpkg"),
                        "rectified", "county_summary"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["rectified"]["renderer"] == "singleSymbol"
    assert info["rectified"]["aliases"]["violation_id"] == "问题图斑编号"
    assert info["county_summary"]["valid"] and info["county_summary"]["aliases"]["area_mu"] == "面积(亩)"
    assert info["county_summary"]["widgets"]["check_id"] == "ValueMap"


@needs_qgis
def test_validate_gpkg_reports_no_error(run_dir):
    r = subprocess.run([SYSTEM_PY, VALIDATE, str(run_dir / "zoning.gpkg")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_map_command(run_dir, tmp_path):
    from tests.conftest import run_cli

    r = run_cli("map", str(run_dir / "zoning.gpkg"), "-o", str(tmp_path / "m.html"), "--simplify", "500")
    assert r.returncode == 0, r.stderr
    assert "MB" in r.stdout
    text = (tmp_path / "m.html").read_text(encoding="utf-8")
    assert "建设占用问题图斑 Construction findings" in text and "cdn." not in text
    r = run_cli("map", str(run_dir / "zoning.gpkg"), "-o", str(tmp_path / "m.html"))
    assert r.returncode == 4
    r = run_cli("map", str(run_dir / "zoning.gpkg"), "-o", str(tmp_path / "t.html"), "--basemap", "tianditu")
    assert r.returncode == 2 and "--tianditu-key" in r.stderr


def test_project_with_layers_inside_one_geopackage(tmp_path):
    """Inputs given as PATH:LAYER are run and recorded with the container file's size and SHA-256."""
    import hashlib

    import geopandas as gpd

    from tests.conftest import SAMPLE, run_cli

    lines = tmp_path / "lines.gpkg"
    for k in ("red_line", "farmland", "urban_boundary"):
        gpd.read_file(SAMPLE / f"{k}.gpkg").to_file(lines, layer=k)
    for f in ("counties.gpkg", "landcover.tif", "dem.tif"):
        shutil.copy(SAMPLE / f, tmp_path / f)
    (tmp_path / "p.toml").write_text(
        '[inputs]\ncounties = "counties.gpkg"\nlandcover = "landcover.tif"\ndem = "dem.tif"\n'
        'red_line = "lines.gpkg:red_line"\nfarmland = "lines.gpkg:farmland"\n'
        'urban_boundary = "lines.gpkg:urban_boundary"\n', encoding="utf-8")
    r = run_cli("run", str(tmp_path / "p.toml"), "-o", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    run = json.loads((tmp_path / "o" / "run.json").read_text(encoding="utf-8"))
    rec = run["inputs"]["farmland"]
    assert rec["path"].endswith("lines.gpkg:farmland")
    assert rec["bytes"] == lines.stat().st_size
    assert rec["sha256"] == hashlib.sha256(lines.read_bytes()).hexdigest()
    assert run["counts"]["conflicts"] == 17


def test_the_terminal_names_each_output_once_and_zoning_log_holds_its_tables(tmp_path):
    from tests.conftest import run_cli

    r = run_cli("run", "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    text = r.stdout + r.stderr
    assert text.count("wrote ") == 1 and text.count("map.html") == 1, text
    out = r.stdout.splitlines()
    start = next(i for i, line in enumerate(out) if line.startswith("zone "))
    table = out[start:start + 4]
    from zoning.report import display_width

    assert len({display_width(line) for line in table}) == 1, table  # aligned, Chinese counted double
    log = (tmp_path / "out" / "zoning.log").read_text(encoding="utf-8")
    for line in table + [line for line in r.stdout.splitlines() if line.startswith("construction_in_red_line")]:
        assert line in log, line


@needs_qgis
def test_the_qgis_project_opens_every_layer_styled_in_order_wherever_the_folder_goes(run_dir, tmp_path):
    import shutil

    moved = tmp_path / "elsewhere"
    shutil.copytree(run_dir, moved)  # paths in the project are relative: the folder can be moved or sent
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(runtime)}
    r = subprocess.run([SYSTEM_PY, str(HERE.parent / "layers" / "qgz_probe.py"), str(moved / "zoning.qgz")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["read"]
    order = [i.rsplit("_", 1)[0] for i in info["order"]]
    assert order[:2] == ["violations", "conflicts"] and order.index("zones") > order.index("red_line")
    held = {n for n, _ in pyogrio.list_layers(run_dir / "zoning.gpkg")} - {"layer_styles", "zoning_run"}
    assert set(order) == held
    layers = {k.rsplit("_", 1)[0]: v for k, v in info["layers"].items()}
    for name, lyr in layers.items():
        assert lyr["valid"] and lyr["count"] == len(pyogrio.read_dataframe(run_dir / "zoning.gpkg", layer=name,
                                                                          read_geometry=False)), name
    assert layers["zones"]["renderer"] == "categorizedSymbol" and layers["zones"]["visible"]
    assert layers["violations"]["alias"] == "面积(亩)" and not layers["comparison"]["visible"]


def test_compensation_in_the_run_its_reports_and_its_record(run_dir):
    """`compensate = true` (the sample project): the layer beside the zones, a ranked sheet in report.xlsx and a
    section in report.html with the method stated, the facts in run.json."""
    import openpyxl

    comp = pyogrio.read_dataframe(run_dir / "zoning.gpkg", layer="compensation", read_geometry=False)
    zones = pyogrio.read_dataframe(run_dir / "zoning.gpkg", layer="zones", read_geometry=False)
    assert len(comp) == len(zones) and comp["zone"].tolist() == zones["zone"].tolist()
    assert comp["priority_basis"].eq("population").all()  # the sample gives no GDP: per resident
    assert comp["esv_per_capita_yuan"].notna().all()  # the census has every county's residents
    wb = openpyxl.load_workbook(run_dir / "report" / "report.xlsx", read_only=True)
    rows = list(wb["生态补偿 compensation"].iter_rows(values_only=True))
    assert rows[0][0] == "排序 rank" and rows[1][0] == 1 and len(rows) == len(comp) + 1
    first = comp.loc[comp["priority_rank"] == 1].iloc[0]
    assert rows[1][1] == first["county_id"] and rows[1][6] == round(first["esv_yuan"] / 1e4, 2)  # 万元, rounded
    prov = [r[0] for r in wb["来源 provenance"].iter_rows(values_only=True)]
    assert "标准当量价值 D" in prov and "生态系统服务价值 ESV method" in prov
    page = (run_dir / "report" / "report.html").read_text(encoding="utf-8")
    assert "生态补偿 Ecological compensation" in page and "3,406.50 元/公顷·年" in page and first["name"] in page
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert run["compensation"]["equivalent_value_yuan_per_ha"] == 3406.5 and run["options"]["compensate"] is True
    assert f"Ecosystem service value ({len(comp)})" in (run_dir / "map.html").read_text(encoding="utf-8")
