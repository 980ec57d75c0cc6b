"""`zoning compensate` end to end on real GeoTIFFs and GeoPackages: a class mosaic on cell-aligned counties, every
field against an independent computation (each cell's geodesic area on GRS80), and bad input refused by name."""
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from pyproj import Geod
from rasterio.transform import from_origin

from tests.conftest import SAMPLE, run_cli
from zoning import compensation as comp

W, N, RES = 103.0, 31.0, 0.05
GRID = np.array([[1, 1, 14, 14],
                 [1, 17, 14, 12],
                 [13, 17, 12, 12],
                 [255, 11, 12, 10]], dtype="uint8")
F = comp.load_factors()
TYPES = comp.load_types("igbp", F)


def _mosaic(d: Path, grid=GRID) -> tuple[Path, Path]:
    tif = d / "lc.tif"
    with rasterio.open(tif, "w", driver="GTiff", height=4, width=4, count=1, dtype="uint8", crs="EPSG:4326",
                       transform=from_origin(W, N, RES, RES), nodata=255) as dst:
        dst.write(grid, 1)
    counties = gpd.GeoDataFrame(
        {"county_id": ["990001", "990002"], "name": ["甲县", "乙县"]},
        geometry=[shapely.box(W, N - 4 * RES, W + 2 * RES, N), shapely.box(W + 2 * RES, N - 4 * RES, W + 4 * RES, N)],
        crs="EPSG:4326")
    gpkg = d / "counties.gpkg"
    counties.to_file(gpkg, layer="counties")
    return tif, gpkg


def _cell_ha(r: int, c: int) -> float:
    lon0, lat0 = W + c * RES, N - r * RES
    lons = [lon0, lon0 + RES, lon0 + RES, lon0]
    lats = [lat0, lat0, lat0 - RES, lat0 - RES]
    return abs(Geod(ellps="GRS80").polygon_area_perimeter(lons, lats)[0]) / 1e4


def _expected(cols, d: float, paddy: float = 0.0) -> dict:
    """Per service, yuan a year: each cell's geodesic area × its types' factors × D."""
    keys = F.type_keys()
    ha = np.zeros(len(keys))
    for r in range(4):
        for c in cols:
            code = int(GRID[r, c])
            for t, s in TYPES.shares.get(code, {}).items():
                ha[keys.index(t)] += _cell_ha(r, c) * s
    dry, pad = keys.index("dry_cropland"), keys.index("paddy")
    ha[pad], ha[dry] = ha[dry] * paddy, ha[dry] * (1 - paddy)
    v = ha @ F.matrix * d
    out = {f"esv_{s.key}_yuan": v[i] for i, s in enumerate(F.services)}
    out["esv_yuan"] = v.sum()
    out["esv_without_water_yuan"] = v.sum() - ha[keys.index("water")] * F.matrix[keys.index("water")].sum() * d
    out.update({f"{k}_ha": ha[i] for i, k in enumerate(keys)})
    return out


@pytest.fixture
def mosaic(tmp_path):
    return _mosaic(tmp_path)


def test_every_field_matches_an_independent_computation(tmp_path, mosaic):
    tif, counties = mosaic
    (tmp_path / "stats.csv").write_text("county_id,population,gdp,paddy_share,fiscal_gap\n"
                                        "990001,,2e9,,1e8\n990002,20000,1e9,40,-5e7\n", encoding="utf-8")
    red = tmp_path / "red.gpkg"  # two overlapping features over county A's top-left cell: counted once
    gpd.GeoDataFrame({"id": [1, 2]}, geometry=[shapely.box(W, N - RES, W + RES, N),
                                               shapely.box(W, N - RES, W + RES / 2, N)], crs="EPSG:4326").to_file(red)
    out = tmp_path / "comp.gpkg"
    r = run_cli("compensate", str(counties), "--raster", f"landcover={tif}", "--attributes", str(tmp_path / "stats.csv"),
                "--equivalent-value", "3000", "--red-line", str(red), "--transfer-coefficient", "0.5", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout and "一级 first" in r.stdout
    got = gpd.read_file(out, layer="compensation").set_index("county_id")
    assert got.geometry.is_valid.all()
    for cid, cols, paddy in (("990001", (0, 1), 0.0), ("990002", (2, 3), 0.4)):
        want = _expected(cols, 3000.0, paddy)
        for k, v in want.items():
            assert got.loc[cid, k] == pytest.approx(v, rel=0.005, abs=1e-6), (cid, k)
    a, b = got.loc["990001"], got.loc["990002"]
    # 14 (mosaic) is half dry cropland, half shrub-grassland: B holds three cells of it
    assert b["shrub_grass_ha"] == pytest.approx(0.5 * (_cell_ha(0, 2) + _cell_ha(0, 3) + _cell_ha(1, 2)), rel=0.005)
    assert a["red_line_km2"] == pytest.approx(_cell_ha(0, 0) / 100, rel=0.005)  # overlap counted once
    assert a["red_line_share"] == pytest.approx(a["red_line_km2"] / a["area_km2"], rel=1e-9)
    assert a["area_km2"] == pytest.approx(sum(_cell_ha(r, c) for r in range(4) for c in (0, 1)) / 100, rel=1e-4)
    assert a["esv_per_km2_yuan"] == pytest.approx(a["esv_yuan"] / a["area_km2"])
    # no population for A (not in the census, none given): NULL with a reason, never 0
    assert np.isnan(a["esv_per_capita_yuan"]) and "no population figure" in a["reason"]
    assert b["esv_per_capita_yuan"] == pytest.approx(b["esv_yuan"] / 20000)
    # GDP given: the score is non-market value per yuan of GDP
    assert a["priority_basis"] == "gdp" and a["priority_score"] == pytest.approx(a["esv_nonmarket_yuan"] / 2e9)
    assert {a["priority_rank"], b["priority_rank"]} == {1, 2}
    assert b["transfer_estimate_yuan"] == pytest.approx(-2.5e7) and a["transfer_estimate_yuan"] == 5e7
    assert "水系" in a["reason"] and "value mostly from" in a["reason"]
    qml = gpd.read_file(out, layer="layer_styles")
    assert "priority_class" in qml.loc[qml["f_table_name"] == "compensation", "styleQML"].iloc[0]


def test_the_default_equivalent_value_and_igbp_wetland(tmp_path, mosaic):
    tif, counties = mosaic
    out = tmp_path / "c.gpkg"
    r = run_cli("compensate", str(counties), "--raster", f"landcover={tif}", "--no-census", "-o", str(out))
    assert r.returncode == 0, r.stderr
    got = gpd.read_file(out, layer="compensation").set_index("county_id")
    want = _expected((2, 3), 3406.50)
    assert got.loc["990002", "esv_yuan"] == pytest.approx(want["esv_yuan"], rel=0.005)
    assert got.loc["990001", "wetland_ha"] == pytest.approx(_cell_ha(3, 1), rel=0.005)
    assert got["priority_score"].isna().all() and (got["priority_class"].fillna("") == "").all()


def test_a_class_missing_from_the_mapping_is_named_unless_declared_valueless(tmp_path):
    grid = GRID.copy()
    grid[3, 3] = 99
    tif, counties = _mosaic(tmp_path, grid)
    out = tmp_path / "c.gpkg"
    r = run_cli("compensate", str(counties), "--raster", f"landcover={tif}", "-o", str(out))
    assert r.returncode == 1 and "code(s) 99" in r.stderr and "no ecosystem type" in r.stderr, r.stderr
    assert not out.exists()
    own = tmp_path / "types.toml"
    own.write_text((Path(comp.__file__).parent / "data" / "esv_legends.toml").read_text(encoding="utf-8")
                   .replace("valueless = [13]", "valueless = [13, 99]", 1), encoding="utf-8")
    r = run_cli("compensate", str(counties), "--raster", f"landcover={tif}", "--types", str(own), "-o", str(out))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("d", ["-100", "0", "1e9", "nan"])
def test_a_negative_or_absurd_equivalent_value_is_refused_and_nothing_written(tmp_path, d):
    out = tmp_path / "c.gpkg"
    r = run_cli("compensate", str(SAMPLE / "counties.gpkg"), "--raster", f"landcover={SAMPLE / 'landcover.tif'}",
                "--equivalent-value", d, "-o", str(out))
    assert r.returncode == 2 and "not a plausible value of one standard equivalent" in r.stderr, r.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


def test_show_prints_the_factor_table_and_a_legends_mapping():
    r = run_cli("compensate", "--show", "--legend", "clcd")
    assert r.returncode == 0, r.stderr
    assert "102.24" in r.stdout and "3,406.50" in r.stdout and "clcd" in r.stdout and "8 → no value" in r.stdout
    h = run_cli("compensate", "--help")
    assert "14 → ½ 旱地 + ½ 灌草丛" in h.stdout and "--equivalent-value" in h.stdout
