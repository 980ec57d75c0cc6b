"""The Processing provider in real QGIS (Debian's python3-qgis 3.22, headless): the plugin loaded from
`zoning qgis path` with no interface, its algorithms run with processing.run and compared with the CLI."""
import json
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest

from tests.conftest import SAMPLE, run_cli

SYSTEM_PY = "/usr/bin/python3"
PROBE = Path(__file__).resolve().parent / "qgis_processing_probe.py"
ZONING = str(Path(sys.executable).with_name("zoning"))
pytestmark = pytest.mark.skipif(not (os.path.exists(SYSTEM_PY) and subprocess.run(
    [SYSTEM_PY, "-c", "import qgis.core"], capture_output=True).returncode == 0) and not os.environ.get("CI"),
    reason="Debian python3-qgis not installed (.ci/run installs it)")


def probe(tmp_path, *args, executable: str | None = ZONING) -> dict:
    plugins = run_cli("qgis", "path").stdout.strip()
    runtime = tmp_path.parent / f"{tmp_path.name}-qgis" / "xdg"  # beside the outputs, not among them
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "ZONING_EXECUTABLE"}
    env.update({"GDAL_PAM_ENABLED": "NO",  # QGIS would leave .aux.xml statistics beside the sample rasters
                "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(runtime), "QGIS_PLUGINPATH": plugins,
                "HOME": str(runtime.parent / "home")})  # a QGIS profile of its own
    if executable:
        env["ZONING_EXECUTABLE"] = executable
    else:  # not on QGIS's PATH either
        env["PATH"] = "/usr/bin:/bin"
    r = subprocess.run([SYSTEM_PY, str(PROBE), *args], capture_output=True, text=True, env=env, timeout=600)
    lines = [x for x in r.stdout.splitlines() if x.startswith("{")]
    assert lines, r.stderr[-3000:]
    return json.loads(lines[-1])


def test_the_plugin_and_its_algorithms_load_without_an_interface(tmp_path):
    meta = (Path(run_cli("qgis", "path").stdout.strip()) / "zoning_processing" / "metadata.txt").read_text("utf-8")
    assert "hasProcessingProvider=yes" in meta and "qgisMinimumVersion=3.22" in meta
    info = probe(tmp_path, "list")
    assert info["started"] and info["provider"] == "Zoning 主体功能区"
    algs = info["algorithms"]
    assert set(algs) == {"zoning:classify", "zoning:check", "zoning:compare", "zoning:map", "zoning:compensate"}
    assert algs["zoning:classify"] == ["COUNTIES", "LANDCOVER", "DEM", "ATTRIBUTES", "MODEL", "LEGEND", "OUTPUT"]
    assert algs["zoning:check"] == ["RED_LINE", "FARMLAND", "URBAN_BOUNDARY", "CONSTRUCTION", "COUNTIES", "BASELINE",
                                    "PREVIOUS", "REPORT", "OUTPUT"]
    assert info["optional"]["zoning:classify"] == ["DEM", "ATTRIBUTES", "MODEL"]
    # every option an algorithm passes is one the command has (the CLI is the contract)
    for command, options in info["options"].items():
        helptext = run_cli(command, "--help").stdout
        assert all(o in helptext for o in options), (command, options)


def test_classify_in_qgis_equals_the_cli_and_loads_styled_in_one_group(tmp_path):
    out = tmp_path / "q.gpkg"
    params = {"COUNTIES": str(SAMPLE / "counties.gpkg"), "LANDCOVER": str(SAMPLE / "landcover.tif"),
              "DEM": str(SAMPLE / "dem.tif"), "ATTRIBUTES": str(SAMPLE / "stats.csv"), "OUTPUT": str(out)}
    info = probe(tmp_path, "load", "zoning:classify", json.dumps(params))
    assert info["ok"], info
    cli = tmp_path / "cli.gpkg"
    r = run_cli("classify", str(SAMPLE / "counties.gpkg"), "--raster", f"landcover={SAMPLE / 'landcover.tif'}",
                "--raster", f"dem={SAMPLE / 'dem.tif'}", "--attributes", str(SAMPLE / "stats.csv"), "-o", str(cli))
    assert r.returncode == 0, r.stderr
    a = pyogrio.read_dataframe(out, layer="zones", read_geometry=False).set_index("county_id")
    b = pyogrio.read_dataframe(cli, layer="zones", read_geometry=False).set_index("county_id")
    assert len(a) == 183 and (a["zone"] == b.loc[a.index, "zone"]).all()
    # progress relayed, the command shown, the output loaded with its embedded style in a group of its own
    assert info["progress"][-1] == 100.0 and any("zoning classify" in x for x in info["log"])
    (group, members), = info["groups"].items()
    assert group.startswith("zoning classify ") and members == ["zones"]
    assert info["renderers"]["zones"] == "categorizedSymbol"


def test_check_in_qgis_equals_the_cli(tmp_path):
    out, report = tmp_path / "q.gpkg", tmp_path / "report"
    lines = {k: str(SAMPLE / f"{k.lower()}.gpkg") for k in ("RED_LINE", "FARMLAND", "URBAN_BOUNDARY")}
    params = {**lines, "CONSTRUCTION": str(SAMPLE / "construction.gpkg"), "COUNTIES": str(SAMPLE / "counties.gpkg"),
              "REPORT": str(report), "OUTPUT": str(out)}
    info = probe(tmp_path, "load", "zoning:check", json.dumps(params))
    assert info["ok"], info
    assert list(info["groups"].values())[0] == ["violations", "conflicts", "parcels", "county_summary"]
    assert info["renderers"]["violations"] == "categorizedSymbol" and (report / "report.xlsx").exists()
    cli = tmp_path / "cli.gpkg"
    r = run_cli("check", "--red-line", lines["RED_LINE"], "--farmland", lines["FARMLAND"], "--urban-boundary",
                lines["URBAN_BOUNDARY"], "--construction", str(SAMPLE / "construction.gpkg"), "--counties",
                str(SAMPLE / "counties.gpkg"), "-o", str(cli))
    assert r.returncode == 0, r.stderr
    a = pyogrio.read_dataframe(out, layer="violations", read_geometry=False).set_index("violation_id").sort_index()
    b = pyogrio.read_dataframe(cli, layer="violations", read_geometry=False).set_index("violation_id").sort_index()
    assert list(a.index) == list(b.index) and len(a) > 1000
    assert (a["area_m2"] - b["area_m2"]).abs().max() < 1e-6


def test_a_memory_layer_is_exported_first(tmp_path):
    out = tmp_path / "q.gpkg"
    params = {"COUNTIES": str(SAMPLE / "counties.gpkg"), "LANDCOVER": str(SAMPLE / "landcover.tif"),
              "OUTPUT": str(out)}
    info = probe(tmp_path, "memory", "zoning:classify", json.dumps(params))
    assert info["ok"] and info["memory_provider"] == "memory", info
    assert any("counties (memory): exported to" in x for x in info["log"])
    assert len(gpd.read_file(out, layer="zones")) == 183


def test_cancel_stops_the_run_and_leaves_no_output(tmp_path):
    out = tmp_path / "q.gpkg"
    params = {"COUNTIES": str(SAMPLE / "counties.gpkg"), "LANDCOVER": str(SAMPLE / "landcover.tif"),
              "DEM": str(SAMPLE / "dem.tif"), "OUTPUT": str(out)}
    info = probe(tmp_path, "cancel", "zoning:classify", json.dumps(params), "land cover (counties): 1 of")
    assert not info["ok"] and info["error"] == "Canceled: the zoning run was stopped and wrote nothing.", info
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_tools_error_reaches_the_feedback_and_a_missing_executable_is_named(tmp_path):
    params = {"COUNTIES": str(SAMPLE / "red_line.gpkg"), "LANDCOVER": str(SAMPLE / "landcover.tif"),
              "OUTPUT": str(tmp_path / "q.gpkg")}
    info = probe(tmp_path, "run", "zoning:classify", json.dumps(params))
    assert not info["ok"] and "field 'county_id' is empty" in info["error"]
    assert any(e.startswith("Error: counties layer") for e in info["errors"])
    assert not (tmp_path / "q.gpkg").exists()
    info = probe(tmp_path, "run", "zoning:classify", json.dumps(params), executable=None)
    assert not info["ok"] and "zoning executable was not found on PATH" in info["error"]


def test_the_readmes_screenshots_render_headless(tmp_path):
    """docs/qgis_screenshots.py (the README's "In QGIS" pictures) still runs: a dialog and the toolbox's tree."""
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(runtime),
           "QGIS_PLUGINPATH": run_cli("qgis", "path").stdout.strip(), "HOME": str(tmp_path)}
    shots = [tmp_path / "dialog.png", tmp_path / "toolbox.png"]
    r = subprocess.run([SYSTEM_PY, str(Path(__file__).resolve().parents[2] / "docs" / "qgis_screenshots.py"),
                        *map(str, shots)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    import struct

    sizes = [struct.unpack(">II", p.read_bytes()[16:24]) for p in shots]  # the PNG header's IHDR width, height
    assert sizes == [(900, 640), (520, 150)]
