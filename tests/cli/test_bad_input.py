"""Bad input never crashes the tool or loses data: each case through the real CLI, with its exit code, message,
and no output created (or an existing one left byte-identical)."""
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
import shapely

from tests.conftest import ROOT, SAMPLE, run_cli

LINES = ["--red-line", str(SAMPLE / "red_line.gpkg"), "--farmland", str(SAMPLE / "farmland.gpkg"),
         "--urban-boundary", str(SAMPLE / "urban_boundary.gpkg")]
RASTERS = ["--raster", f"landcover={SAMPLE / 'landcover.tif'}", "--raster", f"dem={SAMPLE / 'dem.tif'}"]


def classify(counties, out, *extra):
    return run_cli("classify", str(counties), *RASTERS, "-o", str(out), *extra)


def sample_counties(n=None):
    g = gpd.read_file(SAMPLE / "counties.gpkg")
    return g if n is None else g.head(n)


def assert_failed(r, code, *messages, out=None):
    assert r.returncode == code, (r.returncode, r.stderr)
    for m in messages:
        assert m in r.stderr, (m, r.stderr)
    assert "Traceback" not in r.stderr
    if out is not None:
        assert not out.exists()
        assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_no_crs(tmp_path):
    g = sample_counties(5)
    shp = tmp_path / "nocrs.shp"
    g.to_file(shp)
    shp.with_suffix(".prj").unlink()
    out = tmp_path / "z.gpkg"
    assert_failed(classify(shp, out), 1, "has no CRS", "--crs EPSG:4490", "nocrs.shp", out=out)
    r = classify(shp, out, "--crs", "EPSG:4490")
    assert r.returncode == 0, r.stderr


def test_other_crs_is_reprojected_and_results_agree(tmp_path, expected):
    far = tmp_path / "farm_gk.gpkg"
    gpd.read_file(SAMPLE / "farmland.gpkg").to_crs(4544).to_file(far)
    out = tmp_path / "c.gpkg"
    r = run_cli("-v", "check", "--red-line", str(SAMPLE / "red_line.gpkg"), "--farmland", str(far),
                "--urban-boundary", str(SAMPLE / "urban_boundary.gpkg"), "--construction",
                str(SAMPLE / "construction.gpkg"), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "farmland is in EPSG:4544" in r.stderr and "reprojecting" in r.stderr
    v = gpd.read_file(out, layer="violations")
    got = v[v.check_id == "construction_on_farmland"].area_m2.sum()
    want = sum(x["area_m2"] for x in expected["construction_on_farmland"])
    assert got == pytest.approx(want, rel=1e-3)


def test_swapped_lat_lon(tmp_path):
    g = sample_counties(3)
    g["geometry"] = shapely.transform(g.geometry.values, lambda c: c[:, ::-1])
    path = tmp_path / "swapped.gpkg"
    g.to_file(path)
    out = tmp_path / "z.gpkg"
    assert_failed(classify(path, out), 1, "latitude and longitude swapped", "swapped.gpkg", out=out)


def test_counties_not_overlapping_the_raster(tmp_path):
    g = sample_counties(3)
    g["geometry"] = g.geometry.translate(30, 0)  # somewhere in the Pacific
    path = tmp_path / "shifted.gpkg"
    g.to_file(path)
    out = tmp_path / "z.gpkg"
    assert_failed(classify(path, out), 1, "do not overlap", "wrong CRS", "landcover", out=out)


def test_bowtie_is_repaired_and_results_stay_correct(tmp_path):
    x0, y0 = 104.0, 30.5
    d = 0.01
    bowtie = shapely.Polygon([(x0, y0), (x0 + d, y0 + d), (x0 + d, y0), (x0, y0 + d), (x0, y0)])
    red = gpd.GeoDataFrame({"id": ["BOW"]}, geometry=[bowtie], crs=4490)
    farm = gpd.GeoDataFrame({"id": ["F"]}, geometry=[shapely.box(x0 + 0.1, y0, x0 + 0.11, y0 + 0.01)], crs=4490)
    urb = gpd.GeoDataFrame({"id": ["U"]}, geometry=[shapely.box(x0 - 0.1, y0, x0 - 0.09, y0 + 0.01)], crs=4490)
    parcel = gpd.GeoDataFrame({"id": ["P1"]}, geometry=[shapely.box(x0, y0, x0 + d, y0 + d)], crs=4490)
    for name, g in (("red", red), ("farm", farm), ("urb", urb), ("parcel", parcel)):
        g.to_file(tmp_path / f"{name}.gpkg")
    out = tmp_path / "o.gpkg"
    r = run_cli("-v", "check", "--red-line", str(tmp_path / "red.gpkg"), "--farmland", str(tmp_path / "farm.gpkg"),
                "--urban-boundary", str(tmp_path / "urb.gpkg"), "--construction", str(tmp_path / "parcel.gpkg"),
                "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "repaired 1 invalid geometries (ids BOW)" in r.stderr
    v = gpd.read_file(out, layer="violations")
    red_area = v[v.check_id == "construction_in_red_line"].area_m2.sum()
    from pyproj import Geod

    half = abs(Geod(ellps="GRS80").geometry_area_perimeter(shapely.box(x0, y0, x0 + d, y0 + d))[0]) / 2
    assert red_area == pytest.approx(half, rel=2e-3)  # the two triangles of the bow-tie: half the square


def test_empty_geometries_are_dropped_with_a_warning(tmp_path):
    g = sample_counties(4)
    g.loc[1, "geometry"] = shapely.Polygon()
    path = tmp_path / "c.gpkg"
    g.to_file(path)
    r = classify(path, tmp_path / "z.gpkg")
    assert r.returncode == 0, r.stderr
    assert "dropped 1 empty geometries" in r.stderr
    assert len(gpd.read_file(tmp_path / "z.gpkg", layer="zones")) == 3


def test_point_counties_are_refused(tmp_path):
    g = sample_counties(3)
    g["geometry"] = g.representative_point()
    path = tmp_path / "pts.gpkg"
    g.to_file(path)
    out = tmp_path / "z.gpkg"
    assert_failed(classify(path, out), 1, "are Point, not polygons", out=out)


def test_empty_counties_layer(tmp_path):
    path = tmp_path / "empty.gpkg"
    sample_counties(0).to_file(path)
    out = tmp_path / "z.gpkg"
    assert_failed(classify(path, out), 1, "has no features", out=out)


def test_duplicate_and_missing_ids(tmp_path):
    g = sample_counties(4)
    g.loc[1, "county_id"] = g.loc[0, "county_id"]
    path = tmp_path / "dup.gpkg"
    g.to_file(path)
    out = tmp_path / "z.gpkg"
    assert_failed(classify(path, out), 1, "duplicate ids", "510104", out=out)
    g = sample_counties(4)
    g.loc[2, "county_id"] = None
    g.to_file(tmp_path / "miss.gpkg")
    assert_failed(classify(tmp_path / "miss.gpkg", out), 1, "is empty in 1 feature", "rows 3", out=out)


def test_missing_field_lists_fields_and_suggests(tmp_path):
    out = tmp_path / "z.gpkg"
    assert_failed(classify(SAMPLE / "counties.gpkg", out, "--id-field", "county_code"), 1,
                  "no field 'county_code'", "Fields present: county_id, name, city", "Did you mean 'county_id'?",
                  out=out)


def test_gbk_shapefile_without_cpg(tmp_path):
    g = sample_counties(5)
    shp = tmp_path / "gbk.shp"
    g.to_file(shp, encoding="GBK")
    shp.with_suffix(".cpg").unlink()
    out = tmp_path / "z.gpkg"
    r = classify(shp, out)
    assert r.returncode == 0, r.stderr
    assert list(gpd.read_file(out, layer="zones").name) == list(g.name)


def test_truncated_geopackage(tmp_path):
    bad = tmp_path / "bad.gpkg"
    data = (SAMPLE / "counties.gpkg").read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    out = tmp_path / "z.gpkg"
    assert_failed(classify(bad, out), 1, "bad.gpkg", out=out)


def test_path_that_does_not_exist(tmp_path):
    out = tmp_path / "z.gpkg"
    assert_failed(classify(tmp_path / "nope.gpkg", out), 1, "counties file not found", "nope.gpkg", out=out)


def test_raster_that_covers_only_part_of_the_counties(tmp_path):
    with rasterio.open(SAMPLE / "landcover.tif") as src:
        prof = src.profile
        data = src.read(1)
        cut = data[:, : data.shape[1] // 3]  # the western third only
        prof.update(width=cut.shape[1])
        with rasterio.open(tmp_path / "west.tif", "w", **prof) as dst:
            dst.write(cut, 1)
    out = tmp_path / "z.gpkg"
    r = run_cli("classify", str(SAMPLE / "counties.gpkg"), "--raster", f"landcover={tmp_path / 'west.tif'}",
                "--raster", f"dem={SAMPLE / 'dem.tif'}", "-o", str(out))
    assert r.returncode == 0, r.stderr
    z = gpd.read_file(out, layer="zones").set_index("county_id")
    assert np.isnan(z.loc["510104", "built_up_share"])  # Chengdu lies east of the cut
    assert z.loc["510104", "review"]
    assert "landcover raster has no data" in z.loc["510104", "review_reasons"]
    assert not np.isnan(z.loc["513332", "built_up_share"])  # Shiqu, far west, is covered
    assert z.zone.notna().all()


def test_raster_with_nodata_everywhere(tmp_path):
    with rasterio.open(SAMPLE / "landcover.tif") as src:
        prof = src.profile
        data = np.full((src.height, src.width), 255, dtype="uint8")
    with rasterio.open(tmp_path / "nodata.tif", "w", **prof) as dst:
        dst.write(data, 1)
    out = tmp_path / "z.gpkg"
    r = run_cli("classify", str(SAMPLE / "counties.gpkg"), "--raster", f"landcover={tmp_path / 'nodata.tif'}",
                "-o", str(out))
    assert_failed(r, 1, "no valid cells", "nodata.tif", out=out)


def test_bad_model_file(tmp_path):
    from zoning.model import default_text

    m = tmp_path / "m.toml"
    m.write_text(default_text().replace("review_margin = 0.25", 'review_margin = "small"\nextra = 1'),
                 encoding="utf-8")
    out = tmp_path / "z.gpkg"
    assert_failed(classify(SAMPLE / "counties.gpkg", out, "--model", str(m)), 2,
                  "model.review_margin: expected number, got str", "model.extra: unknown key", out=out)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to drop privileges")
def test_output_directory_not_writable():
    import tempfile

    # pytest's tmp_path lies under a 0700 directory the unprivileged user cannot enter, so use /tmp directly
    base = Path(tempfile.mkdtemp(prefix="zoning-locked-", dir="/tmp"))
    try:
        os.chmod(base, 0o755)  # root-owned: readable, not writable, for 'nobody'
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                            "cli", "classify", str(SAMPLE / "counties.gpkg"), *RASTERS, "-o", str(base / "z.gpkg")],
                           capture_output=True, text=True, cwd=str(ROOT), env={**os.environ, "HOME": str(base)})
        assert_failed(r, 4, "is not writable", out=base / "z.gpkg")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_existing_output_without_overwrite(tmp_path):
    out = tmp_path / "z.gpkg"
    out.write_bytes(b"keep me")
    assert_failed(classify(SAMPLE / "counties.gpkg", out), 4, "already exists")
    assert out.read_bytes() == b"keep me"


def test_ctrl_c_during_run_keeps_the_previous_output(tmp_path):
    r = run_cli("run", "-o", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    before = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    # Ctrl-C reaches a program in the foreground; one started from a background job (as CI may run the tests)
    # inherits SIGINT ignored, so the child gets the foreground's default back
    proc = subprocess.Popen([sys.executable, "-m", "cli", "run", "-o", "out", "--overwrite"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    for line in proc.stderr:  # mid-run: classification done, the check's inputs being read
        seen.append(line)  # (the check's own progress may print only at 100 %, too late to interrupt it)
        if "red_line.gpkg" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    err = "".join(seen) + err
    assert proc.returncode == 130, err
    assert "Interrupted" in err
    after = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert after == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_html_in_attributes_is_escaped_in_the_report(tmp_path):
    g = sample_counties()
    g.loc[g.county_id == "510104", "name"] = "<script>alert(1)</script>"
    g.to_file(tmp_path / "evil.gpkg")
    out = tmp_path / "o.gpkg"
    r = run_cli("check", *LINES, "--construction", str(SAMPLE / "construction.gpkg"), "--counties",
                str(tmp_path / "evil.gpkg"), "-o", str(out), "--report", str(tmp_path / "rep"))
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html
    s = pyogrio.read_dataframe(out, layer="county_summary", read_geometry=False)
    if (s.county_id == "510104").any():
        assert "&lt;script&gt;" in html


def test_nan_coordinates(tmp_path):
    g = sample_counties(2)
    g.loc[0, "geometry"] = shapely.Polygon([(104, 30), (np.nan, 30.1), (104.1, 30.1), (104, 30)])
    g.to_file(tmp_path / "nan.gpkg")
    out = tmp_path / "z.gpkg"
    assert_failed(classify(tmp_path / "nan.gpkg", out), 1, "NaN or infinite coordinates", out=out)


def test_huge_coordinates_in_degrees(tmp_path):
    g = sample_counties(2).to_crs(4544)
    g = g.set_crs(4490, allow_override=True)  # metres labelled as degrees
    g.to_file(tmp_path / "huge.gpkg")
    out = tmp_path / "z.gpkg"
    assert_failed(classify(tmp_path / "huge.gpkg", out), 1, "out of range", "--crs", out=out)


def test_debug_shows_traceback(tmp_path):
    r = run_cli("--debug", "classify", str(tmp_path / "nope.gpkg"), *RASTERS, "-o", str(tmp_path / "z.gpkg"))
    assert r.returncode == 1 and "Traceback" in r.stderr


def _project(tmp_path, text: str, bom: bool = False):
    import shutil

    from tests.conftest import SAMPLE

    for f in SAMPLE.iterdir():
        if f.suffix in (".gpkg", ".tif", ".csv"):
            shutil.copy(f, tmp_path / f.name)
    p = tmp_path / "project.toml"
    p.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return p


def test_a_project_file_with_a_byte_order_mark_is_read(tmp_path):
    from tests.conftest import SAMPLE

    text = (SAMPLE / "project.toml").read_text(encoding="utf-8").replace("sensitivity = 20", "sensitivity = 0")
    p = _project(tmp_path, text, bom=True)
    r = run_cli("-q", "run", str(p), "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr


def test_project_sections_of_the_wrong_type_are_named(tmp_path):
    p = _project(tmp_path, 'inputs = "counties.gpkg"\noptions = 3\n[project]\nname = "x"\n')
    r = run_cli("run", str(p), "-o", str(tmp_path / "out"))
    assert r.returncode == 2, r.stderr
    assert "inputs: expected a table" in r.stderr and "options: expected a table" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out").exists()


def test_windows_paths_in_a_project_get_a_hint(tmp_path):
    p = _project(tmp_path, '[inputs]\ncounties = "D:\\zoning\\counties.gpkg"\n')
    r = run_cli("run", str(p), "-o", str(tmp_path / "out"))
    assert r.returncode == 2, r.stderr
    assert "not valid TOML" in r.stderr and "backslashes doubled" in r.stderr and "forward slashes" in r.stderr


@pytest.mark.parametrize("exc", [RuntimeError("can't start new thread"),
                                 __import__("shapely").errors.GEOSException("std::bad_alloc"),
                                 OSError(12, "Cannot allocate memory")])
def test_a_memory_limit_met_inside_a_library_is_exit_1(exc):
    """ulimit -v below what a run needs: a thread that cannot start, GEOS's bad_alloc, a refused allocation are
    said as what they are (exit 1), not as a bug."""
    import click
    from click.testing import CliRunner

    from cli.main import handle_errors

    @click.command()
    @handle_errors
    def boom():
        raise exc

    r = CliRunner().invoke(boom, [])
    assert r.exit_code == 1, r.output
    assert "out of memory" in r.output and "ulimit -v" in r.output and "bug" not in r.output


def test_every_out_of_range_project_option_is_named(tmp_path):
    from tests.conftest import SAMPLE

    text = (SAMPLE / "project.toml").read_text(encoding="utf-8").replace(
        "sensitivity = 20\nseed = 0", "sensitivity = -1\nseed = -5\nspread = 1.5\nmemory_mb = 8\nheader_row = 0")
    p = _project(tmp_path, text)
    r = run_cli("run", str(p), "-o", str(tmp_path / "out"))
    assert r.returncode == 2, r.stderr
    for k in ("sensitivity", "seed", "spread", "memory_mb", "header_row"):
        assert f"options.{k}: must be" in r.stderr, k
    assert "spread: must be ≥ 0 and ≤ 1, got 1.5" in r.stderr and not (tmp_path / "out").exists()


def test_a_sensitivity_count_or_memory_beyond_any_machine_is_refused(tmp_path):
    """2**63 perturbed runs passed the old check (≥ 0) and ran until CI's time limit, and 2**63 MB of memory
    overflowed the raster reader (exit 3); both caps are named on the command line and in a project file."""
    from tests.conftest import SAMPLE

    text = (SAMPLE / "project.toml").read_text(encoding="utf-8").replace(
        "sensitivity = 20", f"sensitivity = {2**63 - 1}\nmemory_mb = {2**63 - 1}")
    r = run_cli("run", str(_project(tmp_path, text)), "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and "options.sensitivity: must be ≥ 0 and ≤ 10000, got 9223372036854775807" in r.stderr
    assert "options.memory_mb: must be ≥ 64 and ≤ 1048576, got 9223372036854775807" in r.stderr
    r = run_cli("classify", str(SAMPLE / "counties.gpkg"), "--raster", f"landcover={SAMPLE / 'landcover.tif'}",
                "--sensitivity", "10001", "-o", str(tmp_path / "z.gpkg"))
    assert r.returncode == 2 and "10001 is not in the range 0<=x<=10000" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "z.gpkg").exists()


def test_compare_takes_the_zones_of_the_tools_geopackage_and_a_renamed_id_field(tmp_path):
    """`zoning compare OUT.gpkg` uses its zones layer (not the first layer); a zones layer whose id field was
    renamed is compared once the field is named with --county-id, as the message says."""
    from tests.conftest import SAMPLE

    out = tmp_path / "z.gpkg"
    r = run_cli("-q", "classify", str(SAMPLE / "counties.gpkg"), "--raster", f"landcover={SAMPLE / 'landcover.tif'}",
                "-o", str(out))
    assert r.returncode == 0, r.stderr
    pyogrio.write_dataframe(gpd.read_file(out, layer="zones").iloc[:3], out, layer="aaa_first")  # listed first
    r = run_cli("compare", str(out), "--reference", str(SAMPLE / "designations.csv"), "-o", str(tmp_path / "c.gpkg"))
    assert r.returncode == 0, r.stderr
    assert "183 counties" in r.stdout
    renamed = tmp_path / "renamed.gpkg"
    gpd.read_file(out, layer="zones").rename(columns={"county_id": "xzqdm"}).to_file(renamed, layer="zones")
    r = run_cli("compare", str(renamed), "--reference", str(SAMPLE / "designations.csv"), "-o",
                str(tmp_path / "d.gpkg"))
    assert r.returncode == 1 and "--county-id" in r.stderr and "xzqdm" in r.stderr, r.stderr
    r = run_cli("compare", str(renamed), "--reference", str(SAMPLE / "designations.csv"), "-o",
                str(tmp_path / "d.gpkg"), "--county-id", "xzqdm")
    assert r.returncode == 0, r.stderr
    a = gpd.read_file(tmp_path / "c.gpkg", layer="comparison")
    b = gpd.read_file(tmp_path / "d.gpkg", layer="comparison")
    assert a["agrees"].astype(str).tolist() == b["agrees"].astype(str).tolist()  # nulls: not in the reference
