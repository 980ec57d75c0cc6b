"""Inputs that used to give silently wrong results or exit 3: each through the real CLI with exit code, message,
and the result compared with the clean input's."""
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine

from tests.conftest import SAMPLE, run_cli

COUNTIES = str(SAMPLE / "counties.gpkg")
LINES = ["--red-line", str(SAMPLE / "red_line.gpkg"), "--farmland", str(SAMPLE / "farmland.gpkg"),
         "--urban-boundary", str(SAMPLE / "urban_boundary.gpkg")]


def write_like(src_path, dst, data, nodata="same", transform=None, units=None):
    with rasterio.open(src_path) as src:
        profile = src.profile
    profile.update(dtype=data.dtype, nodata=profile["nodata"] if nodata == "same" else nodata)
    if transform is not None:
        profile["transform"] = transform
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data, 1)
        if units:
            out.units = (units,)
    return dst


def read(path):
    with rasterio.open(path) as src:
        return src.read(1)


def classify(tmp_path, lc=SAMPLE / "landcover.tif", dem=SAMPLE / "dem.tif", *extra, name="z.gpkg"):
    out = tmp_path / name
    r = run_cli("classify", COUNTIES, "--raster", f"landcover={lc}", "--raster", f"dem={dem}", "-o", str(out),
                *extra)
    return r, out


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    r, out = classify(tmp_path_factory.mktemp("base"))
    assert r.returncode == 0, r.stderr
    return gpd.read_file(out, layer="zones").set_index("county_id")


def failed(r, code, *msgs):
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and "Internal error" not in r.stderr
    for m in msgs:
        assert m in r.stderr, (m, r.stderr)


# -- rasters --------------------------------------------------------------------------------------------------
def test_another_legend_is_recognised_and_named(tmp_path, baseline):
    igbp = read(SAMPLE / "landcover.tif")
    to_esa = {13: 50, 12: 40, 14: 40, 16: 60, 0: 80, 17: 80, 255: 0}
    esa = np.vectorize(lambda v: to_esa.get(int(v), 10))(igbp).astype("uint8")
    lc = write_like(SAMPLE / "landcover.tif", tmp_path / "esa.tif", esa, nodata=0)
    r, out = classify(tmp_path, lc)
    failed(r, 1, "outside the igbp legend", "--legend esa_worldcover")
    assert not out.exists()
    r, out = classify(tmp_path, lc, SAMPLE / "dem.tif", "--legend", "esa_worldcover")
    assert r.returncode == 0, r.stderr
    z = gpd.read_file(out, layer="zones").set_index("county_id")
    assert np.allclose(z.built_up_share, baseline.built_up_share, equal_nan=True)


def test_undeclared_255_fill_is_nodata(tmp_path):
    data = read(SAMPLE / "landcover.tif").copy()
    data[:, : data.shape[1] // 2] = 255  # the western half is fill
    declared = write_like(SAMPLE / "landcover.tif", tmp_path / "declared.tif", data, nodata=255)
    bare = write_like(SAMPLE / "landcover.tif", tmp_path / "bare.tif", data, nodata=None)
    r1, out1 = classify(tmp_path, declared, name="a.gpkg")
    r2, out2 = classify(tmp_path, bare, name="b.gpkg")
    assert r1.returncode == 0 and r2.returncode == 0, r2.stderr
    assert "fill value" in r2.stderr
    a = gpd.read_file(out1, layer="zones").set_index("county_id")
    b = gpd.read_file(out2, layer="zones").set_index("county_id")
    assert np.allclose(a.built_up_share, b.built_up_share, equal_nan=True)
    assert a.built_up_share.notna().sum() > 20  # the eastern counties keep their shares


def test_float_landcover_is_refused(tmp_path):
    data = read(SAMPLE / "landcover.tif").astype("float32")
    data[data == 13] = 13.4
    lc = write_like(SAMPLE / "landcover.tif", tmp_path / "bilinear.tif", data)
    r, out = classify(tmp_path, lc)
    failed(r, 1, "non-integer classes", "13.4", "nearest neighbour")
    assert not out.exists()


def test_dem_voids_without_nodata(tmp_path, baseline):
    dem = read(SAMPLE / "dem.tif").astype("float32")
    with rasterio.open(SAMPLE / "dem.tif") as src:
        nd = src.nodata
    dem = np.where(dem == nd, -32768, dem) if nd is not None else dem
    dem[0, :] = -32768
    path = write_like(SAMPLE / "dem.tif", tmp_path / "voids.tif", dem, nodata=None)
    r, out = classify(tmp_path, SAMPLE / "landcover.tif", path)
    assert r.returncode == 0, r.stderr
    assert "-32768" in r.stderr
    z = gpd.read_file(out, layer="zones")
    assert z.elevation_mean.between(-500, 9000).all()


def test_dem_in_feet_is_converted(tmp_path, baseline):
    dem = read(SAMPLE / "dem.tif").astype("float64")
    with rasterio.open(SAMPLE / "dem.tif") as src:
        nd = src.nodata
    feet = np.where(dem == nd, nd, dem / 0.3048) if nd is not None else dem / 0.3048
    path = write_like(SAMPLE / "dem.tif", tmp_path / "feet.tif", feet, units="ft")
    r, out = classify(tmp_path, SAMPLE / "landcover.tif", path)
    assert r.returncode == 0, r.stderr
    z = gpd.read_file(out, layer="zones").set_index("county_id")
    assert np.allclose(z.elevation_mean, baseline.elevation_mean, rtol=1e-6, equal_nan=True)


def test_implausible_dem_is_refused(tmp_path):
    dem = read(SAMPLE / "dem.tif").astype("float32") * 100  # centimetres
    path = write_like(SAMPLE / "dem.tif", tmp_path / "cm.tif", dem, nodata=None)
    r, _ = classify(tmp_path, SAMPLE / "landcover.tif", path)
    failed(r, 1, "not plausible metres", "cm.tif")


def test_rotated_raster_is_refused_by_name(tmp_path):
    data = read(SAMPLE / "landcover.tif")
    with rasterio.open(SAMPLE / "landcover.tif") as src:
        t = src.transform
    rot = Affine(t.a, 0.001, t.c, 0.001, t.e, t.f)
    lc = write_like(SAMPLE / "landcover.tif", tmp_path / "rot.tif", data, transform=rot)
    r, _ = classify(tmp_path, lc)
    failed(r, 1, "rotated", "rot.tif", "gdalwarp")


def test_south_up_raster_gives_the_same_shares(tmp_path, baseline):
    data = read(SAMPLE / "landcover.tif")[::-1]
    with rasterio.open(SAMPLE / "landcover.tif") as src:
        t, h = src.transform, src.height
    south = Affine(t.a, 0, t.c, 0, -t.e, t.f + t.e * h)
    lc = write_like(SAMPLE / "landcover.tif", tmp_path / "south.tif", np.ascontiguousarray(data), transform=south)
    r, out = classify(tmp_path, lc)
    assert r.returncode == 0, r.stderr
    z = gpd.read_file(out, layer="zones").set_index("county_id")
    assert np.allclose(z.built_up_share, baseline.built_up_share, equal_nan=True)


# -- tables ---------------------------------------------------------------------------------------------------
def test_tables_as_excel_writes_them(tmp_path, counties):
    ids = counties.county_id.tolist()
    rows = [["四川省县级统计 2023", "", ""], ["county_id", "population", "urbanization_rate"]]
    rows += [[ids[0], "1,234,567", "45.5%"], ["", "", ""], [ids[1], "１２３４５", " 30 "], [ids[2], "n.a.", "12"],
             ["合计", "1,246,912", ""]]
    path = tmp_path / "stats.csv"
    pd.DataFrame(rows).to_csv(path, header=False, index=False, encoding="utf-16", sep="\t")
    r, out = classify(tmp_path, SAMPLE / "landcover.tif", SAMPLE / "dem.tif", "--attributes", str(path))
    assert r.returncode == 0, r.stderr
    assert "blank row(s) 4" in r.stderr and "total row(s) 7" in r.stderr and "row 6: n.a." in r.stderr
    z = gpd.read_file(out, layer="zones").set_index("county_id")
    assert z.loc[ids[0], "urbanization_rate"] == 45.5
    assert z.loc[ids[0], "pop_density"] == pytest.approx(1234567 / z.loc[ids[0], "area_km2"])
    assert z.loc[ids[1], "pop_density"] == pytest.approx(12345 / z.loc[ids[1], "area_km2"])
    assert z.loc[ids[2], "pop_density_source"] == "census 2020 (leiii)"  # no figure in the table: the census's
    # the header row named explicitly works the same
    r, _ = classify(tmp_path, SAMPLE / "landcover.tif", SAMPLE / "dem.tif", "--attributes", str(path),
                    "--header-row", "2", name="z2.gpkg")
    assert r.returncode == 0, r.stderr


def test_a_table_given_as_counties(tmp_path):
    path = tmp_path / "stats.csv"
    path.write_text("county_id,population\n510104,100\n", encoding="utf-8")
    r = run_cli("classify", str(path), "--raster", f"landcover={SAMPLE / 'landcover.tif'}", "-o",
                str(tmp_path / "z.gpkg"))
    failed(r, 1, "looks like a table", "--attributes")


# -- options and exit codes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("args, msg", [
    (["--encoding", "klingon"], "unknown text encoding 'klingon'"),
    (["--crs", "EPSG:999999"], "not a CRS PROJ knows"),
])
def test_bad_options_are_usage_errors(tmp_path, args, msg):
    r = run_cli("check", *LINES, "-o", str(tmp_path / "c.gpkg"), *args)
    failed(r, 2, msg)
    assert not (tmp_path / "c.gpkg").exists()


def test_output_under_a_regular_file_fails_before_work(tmp_path):
    (tmp_path / "f").write_text("x")
    r = run_cli("check", *LINES, "-o", str(tmp_path / "f" / "c.gpkg"))
    failed(r, 4, "is a file, not a directory")
    assert "read " not in r.stderr  # nothing was read or computed


def test_output_that_is_a_directory(tmp_path):
    (tmp_path / "c.gpkg").mkdir()
    (tmp_path / "c.gpkg" / "x").write_text("x")
    r = run_cli("check", *LINES, "-o", str(tmp_path / "c.gpkg"), "--overwrite")
    failed(r, 4, "zoning did not write")


@pytest.mark.parametrize("value", ["0.01", "1e12"])
def test_subdivide_out_of_range(tmp_path, value):
    rules = tmp_path / "r.toml"
    rules.write_text(f"[rules]\nsubdivide_m = {value}\n")
    failed(run_cli("rules", "check", str(rules)), 2, "rules.subdivide_m: must be between 100 and")
    failed(run_cli("check", *LINES, "--rules", str(rules), "-o", str(tmp_path / "c.gpkg")), 2, "subdivide_m")


def test_deeply_nested_model_rule(tmp_path):
    from zoning.model import default_text

    text = default_text()
    deep = "(" * 3000 + "built_up_share" + ")" * 3000
    text += f'\n[[rules]]\nid = "deep"\nwhen = "{deep} > 0.5"\nzone = "urbanization"\n'
    path = tmp_path / "m.toml"
    path.write_text(text, encoding="utf-8")
    r = run_cli("model", "check", str(path))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "too many nested parentheses" in r.stderr and "((((…" in r.stderr
    nots = "not " * 2000 + "built_up_share > 0.5"
    path.write_text(default_text() + f'\n[[rules]]\nid = "deep"\nwhen = "{nots}"\nzone = "urbanization"\n',
                    encoding="utf-8")
    r = run_cli("model", "check", str(path))
    assert r.returncode == 2 and "levels deep; at most 50" in r.stderr and "memory" not in r.stderr, r.stderr


def test_bad_basemap_fails_before_any_work(tmp_path):
    import re

    text = (SAMPLE / "project.toml").read_text(encoding="utf-8")
    text = re.sub(r'basemap = "[^"]*"', 'basemap = "googlesat"', text)
    assert "googlesat" in text
    p = tmp_path / "project.toml"
    p.write_text(text, encoding="utf-8")
    for f in SAMPLE.glob("*.gpkg"):
        (tmp_path / f.name).symlink_to(f)
    for f in SAMPLE.glob("*.tif"):
        (tmp_path / f.name).symlink_to(f)
    r = run_cli("run", str(p), "-o", str(tmp_path / "out"))
    failed(r, 2, "options.basemap: expected one of none, osm, tianditu")
    assert "computing indicators" not in r.stderr


# -- per-layer ids ----------------------------------------------------------------------------------------------
def test_parcels_by_bsm_and_counties_by_county_id(tmp_path):
    parcels = gpd.read_file(SAMPLE / "construction.gpkg").rename(columns={"id": "BSM"})
    parcels.to_file(tmp_path / "p.gpkg")
    out = tmp_path / "c.gpkg"
    r = run_cli("check", *LINES, "--construction", str(tmp_path / "p.gpkg"), "--counties", COUNTIES,
                "--id-field", "BSM", "--red-line-id", "id", "--farmland-id", "id", "--urban-boundary-id", "id",
                "--county-id", "county_id", "-o", str(out))
    assert r.returncode == 0, r.stderr
    v = gpd.read_file(out, layer="violations")
    assert v.parcel_id.isin(parcels.BSM).all() and v.county_id.str.match(r"^51\d{4}$").mean() > 0.95
    assert v.control_id.dropna().str.startswith(("ERL", "PBF")).all()
    r = run_cli("check", *LINES, "--construction", str(tmp_path / "p.gpkg"), "--construction-id", "NOPE",
                "-o", str(tmp_path / "d.gpkg"))
    failed(r, 1, "NOPE")


# -- rasters as people have them (third hostile pass) ------------------------------------------------------------
@pytest.mark.parametrize("scale", [2.0, 0.1])
def test_a_dems_scale_factor_is_honoured(tmp_path, baseline, scale):
    """An Int16 DEM in units of 2 m or of 0.1 m (GDAL scale): the same elevations as the metre DEM."""
    dem = read(SAMPLE / "dem.tif").astype("float64")
    with rasterio.open(SAMPLE / "dem.tif") as src:
        nd = src.nodata
    raw = np.where(dem == nd, -32768, np.round(dem / scale)).astype("int32" if scale < 1 else "int16")
    path = write_like(SAMPLE / "dem.tif", tmp_path / "scaled.tif", raw, nodata=-32768)
    with rasterio.open(path, "r+") as dst:
        dst.scales = (scale,)
    r, out = classify(tmp_path, SAMPLE / "landcover.tif", path)
    assert r.returncode == 0, r.stderr
    z = gpd.read_file(out, layer="zones").set_index("county_id")
    ok = baseline.elevation_mean.notna()
    np.testing.assert_allclose(z.elevation_mean[ok], baseline.elevation_mean[ok], atol=scale)
    np.testing.assert_allclose(z.relief[ok], baseline.relief[ok], atol=2 * scale)


def test_a_multi_band_land_cover_is_refused_by_name(tmp_path):
    data = read(SAMPLE / "landcover.tif")
    with rasterio.open(SAMPLE / "landcover.tif") as src:
        profile = src.profile
    profile.update(count=3, photometric="RGB")
    path = tmp_path / "rendering.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.stack([data, data, data]))
    r, _ = classify(tmp_path, path)
    failed(r, 1, "rendering.tif has 3 bands", "gdal_translate -b N")


def test_a_mosaic_with_a_missing_tile_is_refused_by_name(tmp_path):
    import shutil

    shutil.copy(SAMPLE / "landcover.tif", tmp_path / "tile.tif")
    vrt = tmp_path / "mosaic.vrt"
    with rasterio.open(tmp_path / "tile.tif") as src:
        w, h, dt = src.width, src.height, src.dtypes[0]
        gt = src.transform.to_gdal()
        crs = src.crs.to_wkt()
    vrt.write_text(f"""<VRTDataset rasterXSize="{w}" rasterYSize="{h}"><SRS>{crs.replace('"', '&quot;')}</SRS>
<GeoTransform>{', '.join(map(str, gt))}</GeoTransform><VRTRasterBand dataType="{_gdal_type(dt)}" band="1">
<SimpleSource><SourceFilename relativeToVRT="1">tile.tif</SourceFilename><SourceBand>1</SourceBand></SimpleSource>
</VRTRasterBand></VRTDataset>""")
    (tmp_path / "tile.tif").unlink()
    r, _ = classify(tmp_path, vrt)
    failed(r, 1, "mosaic.vrt", "tile.tif")


def _gdal_type(dtype: str) -> str:
    return {"uint8": "Byte", "int8": "Int8"}.get(dtype, dtype.capitalize().replace("Uint", "UInt"))


def test_a_raster_in_a_local_engineering_crs_is_refused_by_name(tmp_path):
    data = read(SAMPLE / "landcover.tif")
    path = write_like(SAMPLE / "landcover.tif", tmp_path / "local.tif", data)
    with rasterio.open(path, "r+") as dst:
        dst.crs = rasterio.crs.CRS.from_wkt('LOCAL_CS["site grid",LOCAL_DATUM["site",0],UNIT["metre",1],'
                                            'AXIS["X",EAST],AXIS["Y",NORTH]]')
    r, _ = classify(tmp_path, path)
    failed(r, 1, "local.tif", "engineering")


def test_parcel_fields_that_clash_with_the_ledger_or_the_geopackage(tmp_path):
    """A shapefile with FID and geom fields; a layer with both verdict and input_verdict: written beside the
    ledger's own fields under names of their own, nothing lost, no "disk full" after the work."""
    parcels = gpd.read_file(SAMPLE / "construction.gpkg").iloc[:300]
    parcels.assign(FID=np.arange(300), geom="x").to_file(tmp_path / "parcels.shp", encoding="utf-8")
    r = run_cli("check", *LINES, "--construction", str(tmp_path / "parcels.shp"), "-o", str(tmp_path / "a.gpkg"))
    assert r.returncode == 0, r.stderr
    led = gpd.read_file(tmp_path / "a.gpkg", layer="parcels")
    assert list(led["FID_2"].astype(int)) == list(range(300)) and (led["geom_2"] == "x").all()
    parcels.assign(verdict="旧结论", input_verdict="更旧").to_file(tmp_path / "parcels.gpkg")
    r = run_cli("check", *LINES, "--construction", str(tmp_path / "parcels.gpkg"), "-o", str(tmp_path / "b.gpkg"))
    assert r.returncode == 0, r.stderr
    led = gpd.read_file(tmp_path / "b.gpkg", layer="parcels")
    assert (led["verdict"] == "待核实").all()  # the ledger's own
    # the parcel's own input_verdict keeps its name; its verdict, which clashes, moves out of the way
    assert (led["input_verdict"] == "更旧").all() and (led["input_input_verdict"] == "旧结论").all()


def test_a_parcel_field_named_like_another_layers_field_keeps_its_values(tmp_path):
    """``stability`` is a field of the zones; a survey's own text field of that name is carried as text (it was
    cast to the zones' number type and ended the run: found by the hostile-property test)."""
    parcels = gpd.read_file(SAMPLE / "construction.gpkg").iloc[:300]
    parcels.assign(stability=[f" {k}" for k in range(300)]).to_file(tmp_path / "parcels.gpkg")
    r = run_cli("check", *LINES, "--construction", str(tmp_path / "parcels.gpkg"), "-o", str(tmp_path / "a.gpkg"))
    assert r.returncode == 0, r.stderr
    led = gpd.read_file(tmp_path / "a.gpkg", layer="parcels")
    assert list(led["stability"]) == [f" {k}" for k in range(300)]


@pytest.mark.parametrize("name", ["zones.shp", "out.geojson"])
def test_a_geopackage_is_not_written_under_a_foreign_extension(tmp_path, name):
    r = run_cli("classify", COUNTIES, "--raster", f"landcover={SAMPLE / 'landcover.tif'}", "-o", str(tmp_path / name))
    failed(r, 2, "the output is a GeoPackage", name.rsplit(".", 1)[0] + ".gpkg")
    assert list(tmp_path.iterdir()) == []


def test_a_cpg_that_names_the_wrong_encoding_gets_an_encoding_hint(tmp_path):
    counties = gpd.read_file(COUNTIES).iloc[:20]
    counties.to_file(tmp_path / "c.shp", encoding="gbk")
    (tmp_path / "c.cpg").write_text("UTF-8")
    r = run_cli("classify", str(tmp_path / "c.shp"), "--raster", f"landcover={SAMPLE / 'landcover.tif'}", "-o",
                str(tmp_path / "z.gpkg"))
    failed(r, 1, "c.cpg says 'UTF-8'", "--encoding gbk")
    r = run_cli("-q", "classify", str(tmp_path / "c.shp"), "--raster", f"landcover={SAMPLE / 'landcover.tif'}",
                "-o", str(tmp_path / "z.gpkg"), "--encoding", "gbk")
    assert r.returncode == 0, r.stderr
    assert set(gpd.read_file(tmp_path / "z.gpkg")["name"]) == set(counties["name"])


def test_encoding_on_a_geopackage_is_not_applied(tmp_path):
    """GeoPackage text is UTF-8 by definition: --encoding gbk (meant for shapefiles) must not garble the names."""
    r, out = classify(tmp_path, SAMPLE / "landcover.tif", SAMPLE / "dem.tif", "--encoding", "gbk")
    assert r.returncode == 0, r.stderr
    assert "does not apply" in r.stderr
    assert set(gpd.read_file(out, layer="zones")["name"]) == set(gpd.read_file(COUNTIES)["name"])


def test_a_linked_shapefile_without_its_sidecars_is_named(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "work").mkdir()
    gpd.read_file(COUNTIES).iloc[:5].to_file(tmp_path / "data" / "c.shp")
    (tmp_path / "work" / "c.shp").symlink_to(tmp_path / "data" / "c.shp")
    r = run_cli("classify", str(tmp_path / "work" / "c.shp"), "--raster", f"landcover={SAMPLE / 'landcover.tif'}",
                "-o", str(tmp_path / "z.gpkg"))
    failed(r, 1, "lacks its .shx and .dbf", "is a link to", "ln -s")


def test_wal_geopackage_in_a_folder_the_user_cannot_write():
    """As a user without write access (a forked child that drops to `nobody`: root may write anywhere), the real
    command names the journal mode and the fix instead of printing SQLite's RuntimeWarning."""
    import os
    import shutil
    import sqlite3
    import tempfile
    from pathlib import Path

    from click.testing import CliRunner

    from cli.main import cli

    tmp_path = Path(tempfile.mkdtemp(prefix="zoning-wal-"))  # pytest's own folders are closed to other users
    folder = tmp_path / "shared"
    folder.mkdir()
    gpkg = folder / "counties.gpkg"
    shutil.copy(SAMPLE / "counties.gpkg", gpkg)
    con = sqlite3.connect(gpkg)
    assert con.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    con.close()
    gpkg.chmod(0o444)
    folder.chmod(0o555)
    tmp_path.chmod(0o777)  # the output goes beside the read-only folder
    out = tmp_path / "zones.gpkg"
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            os.close(read_end)
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            res = CliRunner().invoke(cli, ["classify", str(gpkg), "--raster",
                                           f"landcover={SAMPLE / 'landcover.tif'}", "-o", str(out)])
            os.write(write_end, f"{res.exit_code}\n{res.output}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    code, _, text = os.read(read_end, 100_000).decode().partition("\n")
    assert code == "1", text
    assert "WAL journal mode in a read-only folder" in text and "PRAGMA journal_mode=DELETE" in text, text
    assert "RuntimeWarning" not in text and "Traceback" not in text
    assert not out.exists() and sorted(p.name for p in folder.iterdir()) == ["counties.gpkg"]
    folder.chmod(0o755)
    shutil.rmtree(tmp_path)
