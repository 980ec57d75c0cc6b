"""A generator of hostile construction layers — odd field names, ids, text, geometries and formats — fed to
`zoning check` through the real command: never an internal error (exit 3) or a traceback; a refusal leaves the
target byte-identical; an accepted run writes only valid geometry and keeps every parcel's own fields."""
import hashlib
import string
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from cli.main import cli
from tests.conftest import SAMPLE

BASE = gpd.read_file(SAMPLE / "construction.gpkg").iloc[:40].reset_index(drop=True)
LINES = ["--red-line", str(SAMPLE / "red_line.gpkg"), "--farmland", str(SAMPLE / "farmland.gpkg"),
         "--urban-boundary", str(SAMPLE / "urban_boundary.gpkg")]
TRICKY_NAMES = ["fid", "FID", "geom", "geometry", "verdict", "input_verdict", "id", "ID", "parcel_id", "violation_ids",
                "名称", "备 注", "a" * 70, "select", "x;y", "1st"]
TRICKY_TEXT = ["", " ", "=SUM(A1)", "</script>", "图斑\u0000x", "\ufeffbom", "a" * 300, "😀", "NULL", "None", "\t-1"]

field_names = st.lists(st.one_of(st.sampled_from(TRICKY_NAMES),
                                 st.text(string.ascii_letters + "_中文", min_size=1, max_size=12)),
                       min_size=0, max_size=4)
cells = st.one_of(st.sampled_from(TRICKY_TEXT), st.integers(-2**40, 2**40), st.floats(allow_nan=True),
                  st.none())


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(names=field_names, values=st.lists(cells, min_size=1, max_size=4),
       ids=st.sampled_from(["plain", "unicode", "duplicate", "missing", "long"]),
       geometry=st.sampled_from(["as_is", "bow_tie", "empty", "null", "tiny"]),
       fmt=st.sampled_from([".gpkg", ".shp", ".geojson"]))
def test_hostile_construction_layers_never_end_in_an_internal_error(tmp_path_factory, names, values, ids, geometry,
                                                                     fmt):
    d = tmp_path_factory.mktemp("hostile")
    gdf = BASE.copy()
    for i, name in enumerate(dict.fromkeys(names)):
        if name in gdf.columns or name.lower() in ("geometry", "fid") and fmt != ".gpkg":
            continue
        v = values[i % len(values)]
        gdf[name] = [v] * len(gdf) if not isinstance(v, str) else [f"{v}{k}" for k in range(len(gdf))]
    if ids == "unicode":
        gdf["id"] = [f"图斑/{k}\\x" for k in range(len(gdf))]
    elif ids == "duplicate":
        gdf.loc[5, "id"] = gdf.loc[4, "id"]
    elif ids == "missing":
        gdf.loc[3, "id"] = None
    elif ids == "long":
        gdf["id"] = ["WP" + "9" * 60 + str(k) for k in range(len(gdf))]
    if geometry == "bow_tie":
        x0, y0, x1, y1 = gdf.geometry.iloc[2].bounds
        gdf.loc[2, "geometry"] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    elif geometry == "empty":
        gdf.loc[2, "geometry"] = shapely.Polygon()
    elif geometry == "null":
        gdf.loc[2, "geometry"] = None
    elif geometry == "tiny":
        gdf.loc[2, "geometry"] = shapely.box(104.0, 30.0, 104.0 + 1e-9, 30.0 + 1e-9)
    src = d / f"parcels{fmt}"
    try:
        pyogrio.write_dataframe(gdf, src, encoding="utf-8" if fmt == ".shp" else None)
    except Exception:  # noqa: BLE001 - a layer GDAL itself cannot write is not one a user can bring
        return
    out = d / "out.gpkg"
    out.write_bytes(b"placeholder")  # a target that is not the tool's: must survive any refusal
    before = _digest(out)
    res = CliRunner().invoke(cli, ["check", *LINES, "--construction", str(src), "-o", str(out), "--overwrite"])
    text = res.output
    assert res.exit_code in (0, 1, 2, 4), (res.exit_code, text)
    assert "Traceback" not in text and "Internal error" not in text, text
    assert _digest(out) == before  # never replaced: it is not a zoning output
    out.unlink()
    res = CliRunner().invoke(cli, ["-q", "check", *LINES, "--construction", str(src), "-o", str(out)])
    assert res.exit_code in (0, 1, 2, 4), (res.exit_code, res.output)
    assert "Traceback" not in res.output and "Internal error" not in res.output, res.output
    if res.exit_code:
        assert not out.exists() and not [p for p in d.iterdir() if p.name.startswith(".")]
        return
    for layer, gtype in pyogrio.list_layers(out):
        if gtype:
            g = pyogrio.read_dataframe(out, layer=layer).geometry.values
            assert shapely.is_valid(g[~shapely.is_missing(g)]).all(), layer
    led = pyogrio.read_dataframe(out, layer="parcels", read_geometry=False)
    assert len(led) >= len(gdf) - 2 and np.isin(["verdict", "status"], led.columns).all()
